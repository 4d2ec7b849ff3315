// The console's API: the generated SDK, configured with relative /api URLs, auth and ApiError.
import { client } from './generated/client.gen'
import { createAuthFetch, type TokenSource } from './authFetch'
import { toApiError } from './errors'
import { i18n } from '@/i18n'

export * from './generated/sdk.gen'
export type * from './generated/types.gen'
export { ApiError } from './errors'

let installed = false

type FlagListener = (on: boolean) => void
const flagListeners = new Set<FlagListener>()

/** Called with each API answer's maintenance flag (X-Selfmart-Maintenance); returns an unsubscribe. */
export function onMaintenanceFlag(listener: FlagListener): () => void {
  flagListeners.add(listener)
  return () => flagListeners.delete(listener)
}

function maintenanceFlag(response: Response): Response {
  if (new URL(response.url || 'http://local/', 'http://local').pathname.startsWith('/api/')) {
    const on = response.headers.get('x-selfmart-maintenance') === 'on'
    flagListeners.forEach((listener) => listener(on))
  }
  return response
}

/** Every request says the console's language, so what the server writes for people (an export's
 *  headers and labels) is in the language the console is shown in, not the browser's. */
export function withConsoleLanguage(request: Request): Request {
  request.headers.set('Accept-Language', i18n.global.locale.value === 'en' ? 'en' : 'zh-CN')
  return request
}

/** `baseUrl` stays empty in the browser (same-origin /api); tests running in Node pass an origin. */
export function installApiClient(tokens: TokenSource, baseUrl = ''): void {
  client.setConfig({ baseUrl, throwOnError: true, fetch: createAuthFetch(tokens) })
  if (!installed) {
    client.interceptors.error.use((error, response) => toApiError(error, response))
    client.interceptors.response.use(maintenanceFlag)
    client.interceptors.request.use(withConsoleLanguage)
    installed = true
  }
}

export { client }

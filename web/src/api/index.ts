// The console's API: the generated SDK, configured with relative /api URLs, auth and ApiError.
import { client } from './generated/client.gen'
import { createAuthFetch, type TokenSource } from './authFetch'
import { toApiError } from './errors'

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

/** `baseUrl` stays empty in the browser (same-origin /api); tests running in Node pass an origin. */
export function installApiClient(tokens: TokenSource, baseUrl = ''): void {
  client.setConfig({ baseUrl, throwOnError: true, fetch: createAuthFetch(tokens) })
  if (!installed) {
    client.interceptors.error.use((error, response) => toApiError(error, response))
    client.interceptors.response.use(maintenanceFlag)
    installed = true
  }
}

export { client }

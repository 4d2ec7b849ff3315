// The console's API: the generated SDK, configured with relative /api URLs, auth and ApiError.
import { client } from './generated/client.gen'
import { createAuthFetch, type TokenSource } from './authFetch'
import { toApiError } from './errors'

export * from './generated/sdk.gen'
export type * from './generated/types.gen'
export { ApiError } from './errors'

let installed = false

/** `baseUrl` stays empty in the browser (same-origin /api); tests running in Node pass an origin. */
export function installApiClient(tokens: TokenSource, baseUrl = ''): void {
  client.setConfig({ baseUrl, throwOnError: true, fetch: createAuthFetch(tokens) })
  if (!installed) {
    client.interceptors.error.use((error, response) => toApiError(error, response))
    installed = true
  }
}

export { client }

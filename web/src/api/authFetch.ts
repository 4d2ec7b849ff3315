// A fetch that carries the access token and, on a 401, refreshes once (single-flight) and retries.

/** Where the token lives and how to get a new one; the auth store implements it. */
export interface TokenSource {
  accessToken(): string | null
  /** True when a refresh token is at hand. */
  canRefresh(): boolean
  /** Obtain a new access token; concurrent callers must share one attempt. Resolves false on failure. */
  refresh(): Promise<boolean>
  /** The session is gone (refresh failed): forget it and go to the login page. */
  onSessionLost(): void
}

const AUTH_FREE = ['/api/v1/auth/login', '/api/v1/auth/refresh']
/** The member page's routes take the member's own session, never the console's token. */
const AUTH_FREE_PREFIXES = ['/api/v1/public/members/']

function isAuthFree(url: string): boolean {
  const path = new URL(url, 'http://local').pathname
  return AUTH_FREE.includes(path) || AUTH_FREE_PREFIXES.some((prefix) => path.startsWith(prefix))
}

function withToken(request: Request, token: string | null): Request {
  const headers = new Headers(request.headers)
  if (token) headers.set('Authorization', `Bearer ${token}`)
  else headers.delete('Authorization')
  return new Request(request, { headers })
}

export function createAuthFetch(source: TokenSource, baseFetch: typeof fetch = (input, init) => fetch(input, init)) {
  return async function authFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const request = input instanceof Request && init === undefined ? input : new Request(input, init)
    if (isAuthFree(request.url)) return baseFetch(request)
    const sentWith = source.accessToken()
    const spare = request.clone() // the body can be read only once; keep a copy for the retry
    const response = await baseFetch(withToken(request, sentWith))
    if (response.status !== 401 || !source.canRefresh()) return response
    // Another caller may already have refreshed while this request was in flight.
    const current = source.accessToken()
    if (current === null || current === sentWith) {
      const ok = await source.refresh()
      if (!ok) {
        source.onSessionLost()
        return response
      }
    }
    return baseFetch(withToken(spare, source.accessToken()))
  }
}

/** Wraps an async function so that concurrent calls share one pending run. */
export function singleFlight<T>(fn: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | null = null
  return () => {
    if (pending === null) {
      pending = fn().finally(() => {
        pending = null
      })
    }
    return pending
  }
}

// The token refresh: one refresh for many concurrent 401s, the retried request keeps its body.
import { describe, expect, it, vi } from 'vitest'
import { createAuthFetch, singleFlight, type TokenSource } from '@/api/authFetch'

function deferred<T>() {
  let resolve!: (v: T) => void
  const promise = new Promise<T>((r) => (resolve = r))
  return { promise, resolve }
}

function fakeServer(valid: { token: string }) {
  const seen: Array<{ url: string; auth: string | null; body: string }> = []
  const fetchFn = vi.fn(async (input: RequestInfo | URL) => {
    const req = input as Request
    const body = req.method === 'GET' ? '' : await req.text()
    const auth = req.headers.get('Authorization')
    seen.push({ url: new URL(req.url).pathname, auth, body })
    if (auth !== `Bearer ${valid.token}`) return new Response('{"error":"unauthorized"}', { status: 401 })
    return new Response(JSON.stringify({ ok: true, body }), { status: 200 })
  })
  return { fetchFn: fetchFn as unknown as typeof fetch, seen }
}

function source(initial: string, doRefresh: () => Promise<string | null>) {
  let token: string | null = initial
  const lost = vi.fn()
  const refreshImpl = vi.fn(async () => {
    const next = await doRefresh()
    token = next
    return next !== null
  })
  const src: TokenSource = {
    accessToken: () => token,
    canRefresh: () => true,
    refresh: singleFlight(refreshImpl),
    onSessionLost: lost,
  }
  return { src, refreshImpl, lost }
}

describe('createAuthFetch', () => {
  it('sends the access token', async () => {
    const { fetchFn, seen } = fakeServer({ token: 'A' })
    const { src } = source('A', async () => 'B')
    const res = await createAuthFetch(src, fetchFn)(new Request('http://x/api/v1/users'))
    expect(res.status).toBe(200)
    expect(seen[0]!.auth).toBe('Bearer A')
  })

  it('refreshes once for many concurrent 401s and retries each request', async () => {
    const valid = { token: 'NEW' }
    const { fetchFn, seen } = fakeServer(valid)
    const gate = deferred<string>()
    const { src, refreshImpl } = source('OLD', () => gate.promise)
    const f = createAuthFetch(src, fetchFn)
    const calls = [
      f(new Request('http://x/api/v1/users')),
      f(new Request('http://x/api/v1/stores', { method: 'POST', body: '{"code":"SH9"}' })),
      f(new Request('http://x/api/v1/terminals')),
    ]
    await vi.waitFor(() => expect(refreshImpl).toHaveBeenCalledTimes(1))
    gate.resolve('NEW')
    const results = await Promise.all(calls)
    expect(results.map((r) => r.status)).toEqual([200, 200, 200])
    expect(refreshImpl).toHaveBeenCalledTimes(1)
    const retried = seen.filter((s) => s.auth === 'Bearer NEW')
    expect(retried.map((s) => s.url).sort()).toEqual(['/api/v1/stores', '/api/v1/terminals', '/api/v1/users'])
    expect(retried.find((s) => s.url === '/api/v1/stores')!.body).toBe('{"code":"SH9"}')
  })

  it('does not refresh again when another call already replaced the token', async () => {
    const { fetchFn } = fakeServer({ token: 'NEW' })
    let token = 'OLD'
    const refresh = vi.fn(async () => true)
    const slow: typeof fetch = async (input, init) => {
      const res = await fetchFn(input, init)
      token = 'NEW' // someone refreshed while this request was on the wire
      return res
    }
    const src: TokenSource = { accessToken: () => token, canRefresh: () => true, refresh, onSessionLost: vi.fn() }
    const res = await createAuthFetch(src, slow)(new Request('http://x/api/v1/users'))
    expect(res.status).toBe(200)
    expect(refresh).not.toHaveBeenCalled()
  })

  it('gives up and reports the session lost when the refresh fails', async () => {
    const { fetchFn } = fakeServer({ token: 'NEVER' })
    const { src, lost } = source('OLD', async () => null)
    const res = await createAuthFetch(src, fetchFn)(new Request('http://x/api/v1/users'))
    expect(res.status).toBe(401)
    expect(lost).toHaveBeenCalledTimes(1)
  })

  it('never refreshes for the login and refresh calls themselves', async () => {
    const { fetchFn, seen } = fakeServer({ token: 'X' })
    const { src, refreshImpl } = source('OLD', async () => 'X')
    const res = await createAuthFetch(src, fetchFn)(new Request('http://x/api/v1/auth/login', { method: 'POST', body: '{}' }))
    expect(res.status).toBe(401)
    expect(refreshImpl).not.toHaveBeenCalled()
    expect(seen[0]!.auth).toBeNull()
  })
})

describe('singleFlight', () => {
  it('shares one run among concurrent callers, then allows a new one', async () => {
    let runs = 0
    const gate = deferred<number>()
    const f = singleFlight(async () => {
      runs++
      return gate.promise
    })
    const a = f()
    const b = f()
    gate.resolve(7)
    expect(await Promise.all([a, b])).toEqual([7, 7])
    expect(runs).toBe(1)
    void f()
    expect(runs).toBe(2)
  })
})

// The auth store against a fake server: rotation, single-flight refresh, retry after 401, logout.
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import * as api from '@/api'
import { installApiClient } from '@/api'
import { REFRESH_KEY, useAuthStore } from '@/stores/auth'
import { i18n, LOCALE_KEY } from '@/i18n'

const ME = {
  id: 1,
  username: 'superadmin',
  display_name: 'Super',
  email: null,
  phone: null,
  locale: 'zh-CN',
  roles: [{ id: 1, code: 'super_admin', name: 'Super admin' }],
  permissions: ['user:read', 'store:read'],
  store_ids: null,
  must_change_password: false,
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

/** A tiny server: refresh tokens rotate (R1 -> R2 -> ...), access tokens match the generation. */
function server() {
  let generation = 1
  const calls: string[] = []
  const fetchMock = vi.fn(async (input: RequestInfo | URL) => {
    const req = input as Request
    const path = new URL(req.url, 'http://local').pathname
    calls.push(path)
    if (path === '/api/v1/auth/login') {
      return json(200, { access_token: `A${generation}`, refresh_token: `R${generation}`, token_type: 'bearer', expires_in: 900, must_change_password: false })
    }
    if (path === '/api/v1/auth/refresh') {
      const { refresh_token } = (await req.json()) as { refresh_token: string }
      await new Promise((r) => setTimeout(r, 5))
      if (refresh_token !== `R${generation}`) return json(401, { error: 'refresh_token_reused', message: 'reuse', details: [] })
      generation++
      return json(200, { access_token: `A${generation}`, refresh_token: `R${generation}`, token_type: 'bearer', expires_in: 900, must_change_password: false })
    }
    if (req.headers.get('Authorization') !== `Bearer A${generation}`) return json(401, { error: 'invalid_token', message: 'x', details: [] })
    if (path === '/api/v1/auth/me') return json(200, ME)
    if (path === '/api/v1/auth/logout') return new Response(null, { status: 204 })
    if (path === '/api/v1/users') return json(200, { items: [], total: 0, page: 1, size: 20 })
    return json(404, { error: 'not_found', message: 'x', details: [] })
  })
  return { fetchMock, calls }
}

describe('auth store', () => {
  let srv: ReturnType<typeof server>
  let lost: ReturnType<typeof vi.fn<() => void>>

  beforeEach(() => {
    localStorage.clear()
    setActivePinia(createPinia())
    srv = server()
    vi.stubGlobal('fetch', srv.fetchMock)
    const auth = useAuthStore()
    lost = vi.fn<() => void>(() => auth.onSessionLost())
    installApiClient({
      accessToken: () => auth.accessToken,
      canRefresh: () => auth.canRefresh(),
      refresh: () => auth.refresh(),
      onSessionLost: lost,
    }, 'http://console.test')
  })

  it('logs in: access token in memory, refresh token in localStorage, profile loaded', async () => {
    const auth = useAuthStore()
    const me = await auth.login('superadmin', 'pw')
    expect(me.username).toBe('superadmin')
    expect(auth.accessToken).toBe('A1')
    expect(localStorage.getItem(REFRESH_KEY)).toBe('R1')
    expect(auth.permissions.has('user:read')).toBe(true)
  })

  it('spends the refresh token once for concurrent refreshes and stores the rotated one', async () => {
    localStorage.setItem(REFRESH_KEY, 'R1')
    const auth = useAuthStore()
    const results = await Promise.all([auth.refresh(), auth.refresh(), auth.refresh()])
    expect(results).toEqual([true, true, true])
    expect(srv.calls.filter((c) => c === '/api/v1/auth/refresh')).toHaveLength(1)
    expect(localStorage.getItem(REFRESH_KEY)).toBe('R2')
    expect(auth.accessToken).toBe('A2')
  })

  it('restores a session after a reload from the stored refresh token', async () => {
    localStorage.setItem(REFRESH_KEY, 'R1')
    const auth = useAuthStore()
    expect(await auth.restore()).toBe(true)
    expect(auth.me?.username).toBe('superadmin')
  })

  it('refreshes on 401 and retries: concurrent API calls cause one refresh', async () => {
    const auth = useAuthStore()
    await auth.login('superadmin', 'pw')
    auth.accessToken = 'stale'
    const pages = await Promise.all([api.listUsers(), api.listUsers(), api.getMe()])
    expect(pages[0].data.total).toBe(0)
    expect(srv.calls.filter((c) => c === '/api/v1/auth/refresh')).toHaveLength(1)
    expect(auth.accessToken).toBe('A2')
    expect(lost).not.toHaveBeenCalled()
  })

  it('ends the session when the refresh token is refused', async () => {
    localStorage.setItem(REFRESH_KEY, 'R-stolen')
    const auth = useAuthStore()
    auth.accessToken = 'stale'
    await expect(api.listUsers()).rejects.toMatchObject({ status: 401 })
    expect(lost).toHaveBeenCalled()
    expect(localStorage.getItem(REFRESH_KEY)).toBeNull()
    expect(auth.accessToken).toBeNull()
  })

  it('logs out: server told, tokens forgotten', async () => {
    const auth = useAuthStore()
    await auth.login('superadmin', 'pw')
    await auth.logout()
    expect(srv.calls).toContain('/api/v1/auth/logout')
    expect(auth.accessToken).toBeNull()
    expect(auth.me).toBeNull()
    expect(localStorage.getItem(REFRESH_KEY)).toBeNull()
  })
})

describe('language at sign-in', () => {
  beforeEach(() => {
    localStorage.clear()
    setActivePinia(createPinia())
    const srv = server()
    vi.stubGlobal('fetch', srv.fetchMock)
    const auth = useAuthStore()
    installApiClient(
      { accessToken: () => auth.accessToken, canRefresh: () => auth.canRefresh(), refresh: () => auth.refresh(), onSessionLost: () => auth.onSessionLost() },
      'http://console.test',
    )
  })

  it('takes the profile language when this browser never chose one', async () => {
    ME.locale = 'en'
    try {
      await useAuthStore().login('superadmin', 'pw')
      expect(i18n.global.locale.value).toBe('en')
      expect(localStorage.getItem(LOCALE_KEY)).toBe('en')
    } finally {
      ME.locale = 'zh-CN'
      i18n.global.locale.value = 'zh-CN'
    }
  })

  it("keeps this browser's own choice", async () => {
    localStorage.setItem(LOCALE_KEY, 'zh-CN')
    ME.locale = 'en'
    try {
      await useAuthStore().login('superadmin', 'pw')
      expect(i18n.global.locale.value).toBe('zh-CN')
    } finally {
      ME.locale = 'zh-CN'
    }
  })
})

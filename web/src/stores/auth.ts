// The signed-in session: access token in memory, refresh token in localStorage, the user's profile.
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import * as api from '@/api'
import type { Me, TokenPair } from '@/api/models'
import { singleFlight } from '@/api/authFetch'
import { adoptProfileLocale } from '@/i18n'

export const REFRESH_KEY = 'selfmart.refresh_token'
const LOCK_NAME = 'selfmart-token-refresh'

function readRefresh(): string | null {
  return localStorage.getItem(REFRESH_KEY)
}

/**
 * Runs `fn` under a lock shared by every tab of this origin, so two tabs never spend the same
 * refresh token (the server treats reuse of a rotated token as theft and ends the session).
 */
async function withTabLock<T>(fn: () => Promise<T>): Promise<T> {
  const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined
  if (!locks) return fn()
  return locks.request(LOCK_NAME, fn) as Promise<T>
}

export const useAuthStore = defineStore('auth', () => {
  const accessToken = ref<string | null>(null)
  const me = ref<Me | null>(null)
  const sessionLost = ref(false)

  const permissions = computed<ReadonlySet<string>>(() => new Set(me.value?.permissions ?? []))
  const isAuthenticated = computed(() => me.value !== null && accessToken.value !== null)
  const mustChangePassword = computed(() => me.value?.must_change_password === true)

  function setTokens(pair: TokenPair): void {
    accessToken.value = pair.access_token
    localStorage.setItem(REFRESH_KEY, pair.refresh_token)
    sessionLost.value = false
  }

  function clear(): void {
    accessToken.value = null
    me.value = null
    localStorage.removeItem(REFRESH_KEY)
  }

  async function loadMe(): Promise<Me> {
    const { data } = await api.getMe()
    me.value = data
    return data
  }

  async function login(username: string, password: string): Promise<Me> {
    const { data } = await api.login({ body: { username, password } })
    setTokens(data)
    const profile = await loadMe()
    adoptProfileLocale(profile.locale)
    return profile
  }

  const refresh = singleFlight(() =>
    withTabLock(async () => {
      const token = readRefresh() // re-read: another tab may have rotated it meanwhile
      if (!token) return false
      try {
        const { data } = await api.refresh({ body: { refresh_token: token } })
        setTokens(data)
        return true
      } catch {
        // Only forget the token if no other tab replaced it while we were trying.
        if (readRefresh() === token) localStorage.removeItem(REFRESH_KEY)
        accessToken.value = null
        return false
      }
    }),
  )

  /** On page load: turn a stored refresh token back into a session. */
  async function restore(): Promise<boolean> {
    if (isAuthenticated.value) return true
    if (!readRefresh()) return false
    if (!(await refresh())) return false
    try {
      await loadMe()
      return true
    } catch {
      return false
    }
  }

  async function logout(): Promise<void> {
    try {
      if (accessToken.value) await api.logout()
    } catch {
      // The session may already be gone server-side; forgetting it locally is what matters.
    } finally {
      clear()
    }
  }

  function onSessionLost(): void {
    clear()
    sessionLost.value = true
  }

  return {
    accessToken,
    me,
    sessionLost,
    permissions,
    isAuthenticated,
    mustChangePassword,
    setTokens,
    clear,
    loadMe,
    login,
    refresh,
    restore,
    logout,
    onSessionLost,
    canRefresh: () => readRefresh() !== null,
  }
})

// The router and its guard: signed in, password changed when required, permission held.
import { createRouter, createWebHistory } from 'vue-router'
import { useAuthStore } from '@/stores/auth'
import { allows, type PermRequirement } from '@/permissions/codes'
import { i18n } from '@/i18n'
import type { MenuMeta } from './menu'
import { routes } from './routes'

declare module 'vue-router' {
  interface RouteMeta {
    titleKey?: string
    perm?: PermRequirement
    menu?: MenuMeta
    public?: boolean
    bare?: boolean
  }
}

export const router = createRouter({ history: createWebHistory('/'), routes })

router.beforeEach(async (to) => {
  const auth = useAuthStore()
  if (to.meta.public) {
    if (to.name === 'login' && (await auth.restore())) {
      const redirect = typeof to.query.redirect === 'string' ? to.query.redirect : '/'
      return redirect.startsWith('/') && !redirect.startsWith('//') ? redirect : '/'
    }
    return true
  }
  if (!(await auth.restore())) {
    return { name: 'login', query: to.fullPath !== '/' ? { redirect: to.fullPath } : {} }
  }
  if (auth.mustChangePassword) {
    return to.name === 'force-password' ? true : { name: 'force-password' }
  }
  if (to.name === 'force-password') return { name: 'dashboard' }
  if (!allows(auth.permissions, to.meta.perm)) return { name: 'forbidden' }
  return true
})

router.afterEach((to) => {
  const t = i18n.global.t
  document.title = to.meta.titleKey ? `${t(to.meta.titleKey)} · selfmart` : 'selfmart'
})

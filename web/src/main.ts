// Console entry: Pinia, router, i18n, Element Plus, and the API client wired to the auth store.
import { createApp } from 'vue'
import { createPinia } from 'pinia'
import ElementPlus from 'element-plus'
import 'element-plus/dist/index.css'
import './styles.css'
import App from './App.vue'
import { i18n } from './i18n'
import { router } from './router'
import { installApiClient } from './api'
import { useAuthStore } from './stores/auth'
import { vPerm } from './permissions'

const app = createApp(App)
const pinia = createPinia()
app.use(pinia)
app.use(i18n)
app.use(ElementPlus)
app.directive('perm', vPerm)

const auth = useAuthStore(pinia)
installApiClient({
  accessToken: () => auth.accessToken,
  canRefresh: () => auth.canRefresh(),
  refresh: () => auth.refresh(),
  onSessionLost: () => {
    auth.onSessionLost()
    const here = router.currentRoute.value
    if (!here.meta.public) void router.push({ name: 'login', query: { expired: '1', redirect: here.fullPath } })
  },
})

app.use(router)
document.documentElement.lang = i18n.global.locale.value
app.mount('#app')

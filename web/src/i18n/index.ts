// vue-i18n set-up: zh-CN by default, English on request, the choice kept in localStorage.
import { createI18n } from 'vue-i18n'
import zhCN from './locales/zh-CN'
import en from './locales/en'
import { LOCALES, type Locale, type LocaleMessages } from './types'

export { LOCALES, type Locale }
export const LOCALE_KEY = 'selfmart.locale'
export const DEFAULT_LOCALE: Locale = 'zh-CN'

export function isLocale(value: unknown): value is Locale {
  return typeof value === 'string' && (LOCALES as readonly string[]).includes(value)
}

export function storedLocale(): Locale {
  const saved = typeof localStorage !== 'undefined' ? localStorage.getItem(LOCALE_KEY) : null
  return isLocale(saved) ? saved : DEFAULT_LOCALE
}

export const i18n = createI18n<[LocaleMessages], Locale, false>({
  legacy: false,
  locale: storedLocale(),
  fallbackLocale: DEFAULT_LOCALE,
  messages: { 'zh-CN': zhCN as unknown as LocaleMessages, en },
  missingWarn: import.meta.env.DEV,
  fallbackWarn: false,
})

/** At sign-in, a browser that never chose a language takes the one saved in the user's profile. */
export function adoptProfileLocale(profileLocale: string | null | undefined): void {
  if (localStorage.getItem(LOCALE_KEY) === null && isLocale(profileLocale)) setLocale(profileLocale)
}

export function setLocale(locale: Locale): void {
  i18n.global.locale.value = locale
  localStorage.setItem(LOCALE_KEY, locale)
  document.documentElement.lang = locale
}

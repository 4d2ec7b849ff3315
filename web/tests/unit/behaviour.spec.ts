// The business log page names every event kind and payment method the server accepts, in both
// languages, and the operation log's security actions read as words.
import { describe, expect, it } from 'vitest'
import zhCN from '@/i18n/locales/zh-CN'
import en from '@/i18n/locales/en'
import { createI18n } from 'vue-i18n'
import { actionLabel, type Translator } from '@/views/audit/actions'

const KINDS = ['session_start', 'scan', 'removal', 'checkout', 'abandonment', 'payment_attempt', 'payment_failure']
const METHODS = ['wechat', 'alipay', 'unionpay', 'card', 'other']

describe('business log words', () => {
  it('has every event kind and method in both languages', () => {
    for (const locale of [zhCN, en]) {
      expect(Object.keys(locale.businessLog.kinds).sort()).toEqual([...KINDS].sort())
      expect(Object.keys(locale.businessLog.methods).sort()).toEqual([...METHODS].sort())
    }
  })

  it('reads security actions as words', () => {
    const i18n = createI18n({ legacy: false, locale: 'en', messages: { 'zh-CN': zhCN, en } })
    const { t, te } = i18n.global
    const tr: Translator = { t: (k, v) => (v ? t(k, v) : t(k)), te: (k) => te(k, 'en') }
    expect(actionLabel('security.denied', tr)).toContain('permission denied')
    expect(actionLabel('security.lockout', tr)).toContain('account locked')
    expect(actionLabel('payment_account.rotate_keys', tr)).toContain('keys rotated')
    expect(actionLabel('log.prune', tr)).toContain('pruned')
  })
})

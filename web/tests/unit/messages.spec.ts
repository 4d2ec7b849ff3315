// Message-centre messages in the reader's language, from the keys and parameters the server stores.
import { describe, expect, it } from 'vitest'
import { createI18n } from 'vue-i18n'
import zhCN from '@/i18n/locales/zh-CN'
import en from '@/i18n/locales/en'
import type { Translator } from '@/views/audit/actions'
import { messageBody, messageTitle, type MessageLike } from '@/views/messages/texts'

function translator(locale: 'zh-CN' | 'en'): Translator {
  const i18n = createI18n({ legacy: false, locale, messages: { 'zh-CN': zhCN, en } })
  const { t, te } = i18n.global
  return { t: (k, v) => (v ? t(k, v) : t(k)), te: (k) => te(k, locale) }
}

const alert: MessageLike = {
  title: '【静安店】库存预警（2 项）',
  body: '雪碧 500ml：已售罄（库存 0）\n可乐：库存 1，预警值 3',
  text: {
    title: { key: 'stock.alertTitleMany', params: { store: '静安店', count: 2 } },
    lines: [
      { key: 'stock.lineSoldOut', params: { product: '雪碧 500ml', quantity: 0 } },
      { key: 'stock.lineLow', params: { product: '可乐', quantity: 1, threshold: 3 } },
    ],
    more: 3,
  },
}

// the keys src/selfmart/inventory/notifications.py stores (Phrase("stock...."))
const SERVER_KEYS = [
  'stock.alertTitle', 'stock.alertTitleMany', 'stock.expiryTitle', 'stock.expiryTitleMany',
  'stock.digestTitle', 'stock.testTitle', 'stock.testTitleAll', 'stock.testBody',
  'stock.lineLow', 'stock.lineSoldOut', 'stock.lineExpiry', 'stock.lineExpiryLot',
]

describe('message-centre texts', () => {
  it('reads a stock alert in English in the English console', () => {
    const tr = translator('en')
    expect(messageTitle(alert, tr)).toBe('[静安店] Low stock (2 items)')
    expect(messageBody(alert, tr)).toBe('雪碧 500ml: sold out (stock 0)\n可乐: 1 in stock, threshold 3\n… and 3 more')
  })

  it('reads the same message in Chinese in the Chinese console', () => {
    const tr = translator('zh-CN')
    expect(messageTitle(alert, tr)).toBe('【静安店】库存预警（2 项）')
    expect(messageBody(alert, tr)).toBe('雪碧 500ml：已售罄（库存 0）\n可乐：库存 1，预警值 3\n……另有 3 项')
  })

  it('shows a message stored without keys as it was sent', () => {
    const old = { title: '旧消息', body: '正文', text: null }
    expect(messageTitle(old, translator('en'))).toBe('旧消息')
    expect(messageBody(old, translator('en'))).toBe('正文')
  })

  it.each(['zh-CN', 'en'] as const)('words every key the server stores (%s)', (locale) => {
    const tr = translator(locale)
    expect(SERVER_KEYS.filter((k) => !tr.te(`messages.texts.${k}`))).toEqual([])
  })

  it('names an alert\'s metric and severity in the reader\'s words, not by code', () => {
    const params = {
      rule: '终端离线', subject: 'T-SH001-01', metric: 'terminal_offline_minutes', value: 12,
      threshold: 10, op: '>', unit: '', severity: 'critical',
    }
    const fired: MessageLike = {
      title: 'x', body: 'y',
      text: { title: { key: 'alerts.fired', params }, lines: [{ key: 'alerts.line', params }] },
    }
    expect(messageTitle(fired, translator('en'))).toBe('[Critical] 终端离线: T-SH001-01')
    expect(messageBody(fired, translator('en'))).toBe(
      'Terminal offline (minutes) reads 12; the rule says > 10',
    )
    expect(messageBody(fired, translator('zh-CN'))).not.toContain('terminal_offline_minutes')
    // a code the console has no words for is shown as it is
    const unknown = { ...fired, text: { ...fired.text!, lines: [{ key: 'alerts.line', params: { ...params, metric: 'new_metric' } }] } }
    expect(messageBody(unknown, translator('en'))).toContain('new_metric reads 12')
  })
})

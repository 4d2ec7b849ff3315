// Every API request says the console's language (exports are written in it), not the browser's.
import { afterEach, describe, expect, it } from 'vitest'
import { withConsoleLanguage } from '@/api'
import { i18n } from '@/i18n'

describe('withConsoleLanguage', () => {
  afterEach(() => {
    i18n.global.locale.value = 'zh-CN'
  })

  it('sends Chinese by default and English once the console is switched', () => {
    const zh = withConsoleLanguage(new Request('http://local/api/v1/settlement/stores/export', { headers: { 'Accept-Language': 'en-US' } }))
    expect(zh.headers.get('Accept-Language')).toBe('zh-CN')
    i18n.global.locale.value = 'en'
    const en = withConsoleLanguage(new Request('http://local/api/v1/settlement/fees/export'))
    expect(en.headers.get('Accept-Language')).toBe('en')
  })
})

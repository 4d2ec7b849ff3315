// The pager under every list: an exact total as Element Plus shows it, or, for a log that
// counted up to its cap, "more than N" in the console's language.
import { mount } from '@vue/test-utils'
import ElementPlus from 'element-plus'
import { describe, expect, it } from 'vitest'
import { createI18n } from 'vue-i18n'
import ListPager from '@/components/ListPager.vue'
import zhCN from '@/i18n/locales/zh-CN'
import en from '@/i18n/locales/en'

function pager(locale: 'zh-CN' | 'en', props: { total: number; capped?: boolean }) {
  const i18n = createI18n({ legacy: false, locale, messages: { 'zh-CN': zhCN, en } })
  return mount(ListPager, { props: { page: 1, size: 20, ...props }, global: { plugins: [ElementPlus, i18n] } })
}

describe('ListPager', () => {
  it('says "more than" the cap when the count was capped', () => {
    const zh = pager('zh-CN', { total: 10000, capped: true })
    expect(zh.find('[data-test=pager-capped]').text()).toBe('超过 10000 条')
    expect(zh.find('.el-pagination__total').exists()).toBe(false)
    const english = pager('en', { total: 10000, capped: true })
    expect(english.find('[data-test=pager-capped]').text()).toBe('More than 10000')
    // the pages still go as far as the cap
    expect(english.findAll('.el-pager li').at(-1)?.text()).toBe('500')
  })

  it('shows the exact total otherwise', () => {
    const exact = pager('en', { total: 35 })
    expect(exact.find('[data-test=pager-capped]').exists()).toBe(false)
    expect(exact.find('.el-pagination__total').text()).toContain('35')
  })
})

// Audit actions in words, in both languages; a part with no translation shows as it is.
import { describe, expect, it } from 'vitest'
import { createI18n } from 'vue-i18n'
import zhCN from '@/i18n/locales/zh-CN'
import en from '@/i18n/locales/en'
import { actionLabel, ENTITY_TYPES, entityLabel, type Translator } from '@/views/audit/actions'
import { changeRows, codeLabel, fieldLabel } from '@/views/audit/changes'

function translator(locale: 'zh-CN' | 'en'): Translator {
  const i18n = createI18n({ legacy: false, locale, messages: { 'zh-CN': zhCN, en } })
  const { t, te } = i18n.global
  return { t: (k, v) => (v ? t(k, v) : t(k)), te: (k) => te(k, locale) }
}

// What the server writes (grep `audit.record` and the state machines' f"order.{status}",
// f"purchase_order.{target}", f"transfer.{target}", f"order.issue.{action}",
// f"product.bulk_{op}"): each must read as words, not codes.
const KNOWN = [
  'category.create', 'category.delete', 'category.move', 'category.reorder', 'category.update',
  'order.batch_upload', 'order.cancel', 'order.close_unpaid', 'order.complete', 'order.create',
  'order.export', 'order.pay', 'order.payment_attempt_failed', 'order.payment_failed',
  'order.payment_failure_resent', 'order.rebook', 'order.refund', 'order.refund_failed',
  'order.refund_request', 'order.refund_settle', 'order.resent', 'order.retry_payment',
  'order.paid', 'order.completed', 'order.cancelled', 'order.closed', 'order.out_of_stock',
  'order.issue.requery_payment', 'order.issue.retry_payment', 'order.issue.remind',
  'order.issue.substitute_lines', 'order.issue.cancel_lines', 'order.issue.write_off',
  'order.issue.refund_difference', 'order.issue.close',
  'payment.record', 'payment_account.create', 'payment_account.update', 'payment_account.test',
  'order.payment_start', 'order.payment_resent',
  'product.create', 'product.delete', 'product.image_add', 'product.image_delete',
  'product.import', 'product.import_start', 'product.list', 'product.listing_update',
  'product.unlist', 'product.update', 'product.bulk_set_price', 'product.bulk_adjust_price',
  'product.bulk_set_status', 'product.bulk_set_threshold', 'product.bulk_move_category',
  'purchase_order.create', 'purchase_order.receive', 'purchase_order.update',
  'purchase_order.submitted', 'purchase_order.closed', 'purchase_order.cancelled',
  'role.create', 'role.delete', 'role.update', 'stock.adjust', 'stock.bulk_adjust',
  'stock.receive', 'stock.write_off', 'stock_alert.resolve', 'stock_alert_route.create',
  'stock_alert_route.delete', 'stock_alert_route.test', 'stock_alert_route.update',
  'stock_discrepancy.resolve', 'stocktake.cancel', 'stocktake.count', 'stocktake.create',
  'stocktake.post', 'store.create', 'store.update', 'supplier.create', 'supplier.product_remove',
  'supplier.product_set', 'supplier.update', 'supplier.return', 'supplier_statement.generate',
  'supplier_statement.reviewed', 'supplier_statement.approved', 'supplier_statement.paid',
  'supplier_statement.regenerate', 'supplier_statement.delete', 'tag.create', 'tag.delete', 'tag.update',
  'terminal.activate', 'terminal.activation_failed', 'terminal.create', 'terminal.disable',
  'terminal.enable', 'terminal.heartbeat', 'terminal.issue_activation_code', 'terminal.rotate_key',
  'terminal.update', 'transfer.create', 'transfer.in_transit', 'transfer.received',
  'transfer.partially_received', 'transfer.cancelled', 'user.change_password', 'user.create',
  'user.disable', 'user.enable', 'user.reset_password', 'user.unlock', 'user.update',
  'user.update_profile',
]

describe('actionLabel', () => {
  it('reads an action as the entity and what happened', () => {
    expect(actionLabel('purchase_order.submitted', translator('zh-CN'))).toBe('采购单：已提交')
    expect(actionLabel('purchase_order.submitted', translator('en'))).toBe('Purchase order: submitted')
    expect(actionLabel('order.issue.remind', translator('zh-CN'))).toBe('订单：异常处理 · 发送付款提醒')
  })

  it('shows a part it cannot translate as it is', () => {
    expect(actionLabel('gizmo.frobnicated', translator('zh-CN'))).toBe('gizmo：frobnicated')
    expect(actionLabel('user', translator('en'))).toBe('User')
  })

  it.each(['zh-CN', 'en'] as const)('translates every action the server writes (%s)', (locale) => {
    const tr = translator(locale)
    const untranslated = KNOWN.filter((code) => {
      const [entity = '', ...verbs] = code.split('.')
      return !tr.te(`audit.entityTypes.${entity}`) || verbs.some((v) => !tr.te(`audit.verbs.${v}`))
    })
    expect(untranslated).toEqual([])
  })
})

describe('the audit trail in words', () => {
  it('names fields, shows money in yuan and codes in words (%s)', () => {
    const zh = translator('zh-CN')
    expect(
      changeRows({ price_fen: { before: 590, after: 649 }, status: { before: 'awaiting_payment', after: 'paid' } }, zh),
    ).toEqual([
      { code: 'price_fen', field: '售价', before: '¥5.90', after: '¥6.49' },
      { code: 'status', field: '状态', before: '待支付', after: '已支付' },
    ])
    const en = translator('en')
    expect(changeRows({ channel: 'manual', is_active: { before: true, after: false } }, en)).toEqual([
      { code: 'channel', field: 'Payment channel', before: '', after: 'Manual entry' },
      { code: 'is_active', field: 'Active', before: 'Yes', after: 'No' },
    ])
    expect(codeLabel('manual_payment', zh)).toBe('手工记录付款')
    expect(codeLabel('manual_payment', en)).toBe('Payment recorded by hand')
    // free text and what the locale does not know stay as they are
    expect(changeRows({ gizmo_count: { before: null, after: ['x', 'y'] } }, en)).toEqual([
      { code: 'gizmo_count', field: 'gizmo_count', before: '', after: 'x, y' },
    ])
    expect(codeLabel('顾客要求 refund', zh)).toBe('顾客要求 refund')
  })

  it.each(['zh-CN', 'en'] as const)('offers each entity type once, each with its own name (%s)', (locale) => {
    const tr = translator(locale)
    const names = ENTITY_TYPES.map((e) => entityLabel(e, tr))
    expect(ENTITY_TYPES.filter((e) => !tr.te(`audit.entityTypes.${e}`))).toEqual([])
    expect(new Set(names).size).toBe(names.length)
  })

  it('names the same fields, values and reasons in both languages', () => {
    for (const group of ['fields', 'values', 'reasons'] as const) {
      const zhKeys = Object.keys((zhCN.audit as unknown as Record<string, object>)[group]).sort()
      const enKeys = Object.keys((en.audit as unknown as Record<string, object>)[group]).sort()
      expect(zhKeys).toEqual(enKeys)
    }
  })

  it('names every field of the snapshots the server audits', () => {
    // the fields the services' snapshots and change sets carry (grep `snapshot(` and `before=`)
    const FIELDS = [
      'name', 'price_fen', 'member_price_fen', 'store_price_fen', 'cost_fen', 'total_fen', 'paid_fen',
      'amount_fen', 'refund_limit_fen', 'status', 'order_no', 'client_order_id', 'source', 'channel',
      'payment_id', 'reference', 'quantity', 'number', 'code', 'display_name', 'username', 'email',
      'phone', 'address', 'is_active', 'is_listed', 'brand', 'spec', 'unit', 'category_id',
      'supplier_id', 'store_id', 'low_stock_threshold', 'app_version', 'last_ip', 'note', 'reason',
    ]
    for (const locale of ['zh-CN', 'en'] as const) {
      const tr = translator(locale)
      expect(FIELDS.filter((f) => fieldLabel(f, tr) === f)).toEqual([])
    }
  })
})

describe('the action filter', () => {
  it.each(['zh-CN', 'en'] as const)('never offers two actions under one name (%s)', (locale) => {
    const tr = translator(locale)
    const byLabel = new Map<string, string[]>()
    for (const code of KNOWN) byLabel.set(actionLabel(code, tr), [...(byLabel.get(actionLabel(code, tr)) ?? []), code])
    expect([...byLabel.values()].filter((codes) => codes.length > 1)).toEqual([])
  })
})

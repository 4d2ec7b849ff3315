// Orders console logic kept out of the components: filters to the API's query, status colours,
// which actions an order offers, refund sums, waiting times and merging live events into the list.
import type { OrderDetail, OrderLineRead, OrderListItem, OrderStatus, OrdersSearchData } from '@/api'
import { ApiError } from '@/api/errors'
import { Perm, allows } from '@/permissions/codes'
import { DEFAULT_TZ, zonedToUtcIso } from '@/utils/time'
import { fenToYuan, yuanToFen } from '@/utils/money'

export const ORDER_STATUSES: readonly OrderStatus[] = [
  'awaiting_payment',
  'paid',
  'completed',
  'payment_failed',
  'out_of_stock',
  'refund_requested',
  'partially_refunded',
  'refunded',
  'cancelled',
  'closed',
  'created',
]

export const ISSUE_KINDS = ['payment_failed', 'stock_short', 'price_mismatch', 'amount_mismatch', 'refund_failed'] as const

export const PAYMENT_METHODS = ['manual', 'wechat', 'alipay', 'card'] as const

export type SortKey = NonNullable<NonNullable<OrdersSearchData['query']>['sort']>
export type OrdersQuery = NonNullable<OrdersSearchData['query']>

type TagType = 'success' | 'warning' | 'danger' | 'info' | 'primary'

/** The colour of a status badge. */
export function statusTag(status: string): TagType {
  switch (status) {
    case 'completed':
      return 'success'
    case 'paid':
      return 'primary'
    case 'awaiting_payment':
    case 'created':
    case 'refund_requested':
    case 'partially_refunded':
      return 'warning'
    case 'payment_failed':
    case 'out_of_stock':
      return 'danger'
    default:
      return 'info'
  }
}

/** What the search form holds: text as typed, money in yuan, times as UTC instants. */
export interface OrderFilters {
  q: string
  order_no: string
  client_order_id: string
  customer: string
  member_no: string
  store_id: number[]
  terminal_id: number[]
  status: OrderStatus[]
  payment_method: string[]
  product_id: number | null
  amount_min: string
  amount_max: string
  time_field: 'created' | 'purchased' | 'paid'
  /** UTC ISO instants (the time-range picker reads them in the store's zone) */
  time_from: string | null
  time_to: string | null
  abnormal: boolean
  sort: SortKey
}

export function emptyFilters(): OrderFilters {
  return {
    q: '',
    order_no: '',
    client_order_id: '',
    customer: '',
    member_no: '',
    store_id: [],
    terminal_id: [],
    status: [],
    payment_method: [],
    product_id: null,
    amount_min: '',
    amount_max: '',
    time_field: 'created',
    time_from: null,
    time_to: null,
    abnormal: false,
    sort: '-created_at',
  }
}

export class FilterError extends Error {
  constructor(readonly field: 'amount_min' | 'amount_max' | 'amount_range') {
    super(field)
  }
}

/** The zone the time filter is read in: the one store picked, else the chain's default. */
export function filterZone(storeIds: readonly number[], zoneOf: (id: number) => string): string {
  if (storeIds.length === 0) return DEFAULT_TZ
  const zones = new Set(storeIds.map(zoneOf))
  return zones.size === 1 ? [...zones][0]! : DEFAULT_TZ
}

/**
 * The form as the API's query: blanks dropped, text trimmed, yuan to fen.
 * Throws FilterError for an amount that is not money or a range that is upside down.
 */
export function filtersToQuery(f: OrderFilters): OrdersQuery {
  const q: OrdersQuery = {}
  const text = (v: string) => v.trim()
  if (text(f.q)) q.q = text(f.q)
  if (text(f.order_no)) q.order_no = text(f.order_no)
  if (text(f.client_order_id)) q.client_order_id = text(f.client_order_id)
  if (text(f.customer)) q.customer = text(f.customer)
  if (text(f.member_no)) q.member_no = text(f.member_no)
  if (f.store_id.length) q.store_id = [...f.store_id]
  if (f.terminal_id.length) q.terminal_id = [...f.terminal_id]
  if (f.status.length) q.status = [...f.status]
  if (f.payment_method.length) q.payment_method = [...f.payment_method]
  if (f.product_id !== null) q.product_id = f.product_id
  for (const [key, field] of [
    ['amount_min', 'amount_min_fen'],
    ['amount_max', 'amount_max_fen'],
  ] as const) {
    const raw = text(f[key])
    if (!raw) continue
    const fen = yuanToFen(raw)
    if (fen === null || fen < 0) throw new FilterError(key)
    q[field] = fen
  }
  if (q.amount_min_fen !== undefined && q.amount_max_fen !== undefined && q.amount_min_fen! > q.amount_max_fen!) {
    throw new FilterError('amount_range')
  }
  if (f.time_from || f.time_to) q.time_field = f.time_field
  if (f.time_from) q.time_from = f.time_from
  if (f.time_to) q.time_to = f.time_to
  if (f.abnormal) q.abnormal = true
  if (f.sort !== '-created_at') q.sort = f.sort
  return q
}

/** Element Plus's table sort event as our sort key (and back). */
export function sortFromTable(prop: string | null, order: 'ascending' | 'descending' | null): SortKey {
  const columns: Record<string, string> = {
    created_at: 'created_at',
    purchased_at: 'purchased_at',
    paid_at: 'paid_at',
    total_fen: 'total_fen',
    order_no: 'order_no',
  }
  const col = prop ? columns[prop] : undefined
  if (!col || !order) return '-created_at'
  return (order === 'descending' ? `-${col}` : col) as SortKey
}

export function tableSort(sort: SortKey): { prop: string; order: 'ascending' | 'descending' } {
  return sort.startsWith('-') ? { prop: sort.slice(1), order: 'descending' } : { prop: sort, order: 'ascending' }
}

// ------------------------------------------------------------------ the order page

export type OrderAction = 'complete' | 'cancel' | 'pay' | 'refund'

const UNPAID = new Set(['awaiting_payment', 'payment_failed'])
const REFUNDABLE = new Set(['paid', 'completed', 'partially_refunded'])

/** The actions an order offers, by its state and the user's permissions. */
export function orderActions(
  order: Pick<OrderDetail, 'status' | 'next_statuses' | 'lines'>,
  granted: ReadonlySet<string>,
): OrderAction[] {
  const out: OrderAction[] = []
  const next = new Set<string>(order.next_statuses)
  if (UNPAID.has(order.status) && allows(granted, Perm.PAYMENT_WRITE)) out.push('pay')
  if (next.has('completed') && allows(granted, Perm.ORDER_WRITE)) out.push('complete')
  if (REFUNDABLE.has(order.status) && allows(granted, Perm.ORDER_REFUND) && order.lines.some((l) => refundableUnits(l) > 0)) {
    out.push('refund')
  }
  if (next.has('cancelled') && allows(granted, Perm.ORDER_WRITE)) out.push('cancel')
  return out
}

type LineMoney = Pick<OrderLineRead, 'quantity' | 'cancelled_qty' | 'refunded_qty' | 'amount_fen' | 'cancelled_fen' | 'refunded_fen'>

export function refundableUnits(line: LineMoney): number {
  return Math.max(0, line.quantity - line.cancelled_qty - line.refunded_qty)
}

/**
 * What refunding `qty` units of a line gives back, as the server works it out: pro rata of what
 * was charged, the last unit taking the remainder so parts add up to exactly the charge.
 */
export function lineRefundFen(line: LineMoney, qty: number): number {
  if (qty <= 0) return 0
  const units = line.quantity - line.cancelled_qty
  const charged = line.amount_fen - line.cancelled_fen
  if (line.refunded_qty + qty === units) return charged - line.refunded_fen
  return Math.floor((charged * qty) / units)
}

// ------------------------------------------------------------------ the abnormal-order queue

/** How long an issue has waited, in the largest unit that fits: {unit, n}. */
export function waited(seconds: number): { unit: 'seconds' | 'minutes' | 'hours' | 'days'; n: number } {
  const s = Math.max(0, Math.floor(seconds))
  if (s < 60) return { unit: 'seconds', n: s }
  if (s < 3600) return { unit: 'minutes', n: Math.floor(s / 60) }
  if (s < 86_400) return { unit: 'hours', n: Math.floor(s / 3600) }
  return { unit: 'days', n: Math.floor(s / 86_400) }
}

/** Waiting this long is worth a warning colour (over an hour) or an alarm (over a day). */
export function waitLevel(seconds: number): 'ok' | 'warn' | 'late' {
  if (seconds >= 86_400) return 'late'
  if (seconds >= 3600) return 'warn'
  return 'ok'
}

/** Actions that must say why (the API refuses them without a note). */
export const NOTE_REQUIRED = new Set(['close', 'write_off'])

/**
 * Why the server refused an action on an abnormal order, as its stable reason code
 * (no_payment, no_customer_phone, ...) from the 409's details; null for any other error.
 */
export function refusalReason(err: unknown): string | null {
  if (!(err instanceof ApiError) || err.code !== 'action_not_allowed') return null
  return err.details.find((d) => d.reason && d.reason !== 'action_not_allowed')?.reason ?? null
}

// ------------------------------------------------------------------ live

/** One `order` event of the live stream (a timeline entry with the order's list fields). */
export interface LiveEvent {
  id: number
  kind: string
  from_status: string | null
  to_status: string | null
  reason: string
  occurred_at: string
  order_id: number
  order_no: string
  store_id: number
  terminal_id: number | null
  status: OrderStatus
  total_fen: number
  item_count: number
  open_issues: number
  created_at: string
}

export function isLiveEvent(value: unknown): value is LiveEvent {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return typeof v.id === 'number' && typeof v.order_id === 'number' && typeof v.order_no === 'string' && typeof v.status === 'string'
}

/** A new order: the event of its first transition (received, or received offline). */
export function isNewOrder(e: LiveEvent): boolean {
  return e.kind === 'transition' && e.from_status === null && e.to_status === 'created'
}

/** The list with what the events say about rows it shows; returns the ids that changed. */
export function applyLive(items: readonly OrderListItem[], events: readonly LiveEvent[]): { items: OrderListItem[]; changed: number[] } {
  const latest = new Map<number, LiveEvent>()
  for (const e of events) {
    const seen = latest.get(e.order_id)
    if (!seen || seen.id < e.id) latest.set(e.order_id, e)
  }
  const changed: number[] = []
  const out = items.map((row) => {
    const e = latest.get(row.id)
    if (!e) return row
    if (e.status === row.status && e.open_issues === row.open_issues && e.total_fen === row.total_fen) return row
    changed.push(row.id)
    return { ...row, status: e.status, open_issues: e.open_issues, total_fen: e.total_fen }
  })
  return { items: out, changed }
}

/** The first moment of today in `tz`, as UTC ISO (for "today's" counts). */
export function startOfToday(tz: string, now: Date = new Date()): string {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(now)
  return zonedToUtcIso(`${parts} 00:00:00`, tz)
}

/** A line saying what went wrong, as an i18n key under orders.issues.detailText and its values. */
export function issueSummary(kind: string, detail: Record<string, unknown>): { key: string; named: Record<string, string | number> } | null {
  const fen = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) ? fenToYuan(v) : '?')
  if (kind === 'price_mismatch' && detail.terminal_total_fen !== undefined && detail.terminal_total_fen !== null) {
    return { key: 'terminal_total', named: { shown: fen(detail.terminal_total_fen), total: fen(detail.total_fen) } }
  }
  if (kind === 'amount_mismatch') return { key: 'paid_total', named: { total: fen(detail.total_fen), paid: fen(detail.paid_fen) } }
  if (kind === 'stock_short' && Array.isArray(detail.lines)) return { key: 'short', named: { n: detail.lines.length } }
  if (typeof detail.reason === 'string') return { key: 'reason', named: { reason: detail.reason } }
  return null
}

// Orders console logic: the search form to the API's query (yuan to fen, blanks dropped, bad
// amounts refused), the zone times are read in, sorting, actions by state and permission, refund
// sums as the server computes them, waiting times, issue summaries and merging live events.
import { describe, expect, it } from 'vitest'
import type { OrderDetail, OrderLineRead, OrderListItem } from '@/api'
import { ApiError } from '@/api/errors'
import {
  FilterError,
  applyLive,
  emptyFilters,
  filterZone,
  filtersToQuery,
  isLiveEvent,
  isNewOrder,
  issueSummary,
  lineRefundFen,
  orderActions,
  refundableUnits,
  refusalReason,
  sortFromTable,
  startOfToday,
  statusTag,
  tableSort,
  waitLevel,
  waited,
  type LiveEvent,
} from '@/views/orders/logic'
import { Perm } from '@/permissions/codes'

describe('filters to query', () => {
  it('sends nothing for an empty form (the default sort is the server default)', () => {
    expect(filtersToQuery(emptyFilters())).toEqual({})
  })

  it('trims text, keeps lists and turns yuan into fen', () => {
    const f = {
      ...emptyFilters(),
      q: '  2612050000000001 ',
      customer: '张',
      store_id: [1, 3],
      status: ['paid' as const, 'completed' as const],
      amount_min: '12.5',
      amount_max: '100',
      product_id: 42,
      abnormal: true,
      sort: 'total_fen' as const,
    }
    expect(filtersToQuery(f)).toEqual({
      q: '2612050000000001',
      customer: '张',
      store_id: [1, 3],
      status: ['paid', 'completed'],
      amount_min_fen: 1250,
      amount_max_fen: 10000,
      product_id: 42,
      abnormal: true,
      sort: 'total_fen',
    })
  })

  it('sends the time field only with a time range', () => {
    const f = { ...emptyFilters(), time_field: 'paid' as const }
    expect(filtersToQuery(f)).toEqual({})
    f.time_from = '2026-12-04T16:00:00.000Z'
    expect(filtersToQuery(f)).toEqual({ time_field: 'paid', time_from: '2026-12-04T16:00:00.000Z' })
  })

  it('refuses amounts that are not money, negative, or an upside-down range', () => {
    expect(() => filtersToQuery({ ...emptyFilters(), amount_min: '1.234' })).toThrow(FilterError)
    expect(() => filtersToQuery({ ...emptyFilters(), amount_max: 'abc' })).toThrow(FilterError)
    expect(() => filtersToQuery({ ...emptyFilters(), amount_min: '-1' })).toThrow(FilterError)
    try {
      filtersToQuery({ ...emptyFilters(), amount_min: '10', amount_max: '9.99' })
      expect.unreachable()
    } catch (err) {
      expect((err as FilterError).field).toBe('amount_range')
    }
  })
})

describe('time zones', () => {
  const zones: Record<number, string> = { 1: 'Asia/Shanghai', 2: 'Asia/Shanghai', 3: 'Asia/Tokyo' }
  it('reads the time filter in the one zone of the stores picked, else the default', () => {
    expect(filterZone([], (id) => zones[id]!)).toBe('Asia/Shanghai')
    expect(filterZone([3], (id) => zones[id]!)).toBe('Asia/Tokyo')
    expect(filterZone([1, 2], (id) => zones[id]!)).toBe('Asia/Shanghai')
    expect(filterZone([1, 3], (id) => zones[id]!)).toBe('Asia/Shanghai')
  })

  it('starts "today" at midnight in the store zone', () => {
    // 2026-12-05 01:30 in Shanghai is 2026-12-04 17:30 UTC: today began at 16:00 UTC the day before
    expect(startOfToday('Asia/Shanghai', new Date('2026-12-04T17:30:00Z'))).toBe('2026-12-04T16:00:00.000Z')
    expect(startOfToday('UTC', new Date('2026-12-04T17:30:00Z'))).toBe('2026-12-04T00:00:00.000Z')
  })
})

describe('sorting', () => {
  it('maps the table sort to the API key and back', () => {
    expect(sortFromTable('total_fen', 'descending')).toBe('-total_fen')
    expect(sortFromTable('order_no', 'ascending')).toBe('order_no')
    expect(sortFromTable('total_fen', null)).toBe('-created_at')
    expect(sortFromTable('store_name', 'ascending')).toBe('-created_at')
    expect(tableSort('-paid_at')).toEqual({ prop: 'paid_at', order: 'descending' })
    expect(tableSort('total_fen')).toEqual({ prop: 'total_fen', order: 'ascending' })
  })

  it('colours statuses', () => {
    expect(statusTag('completed')).toBe('success')
    expect(statusTag('payment_failed')).toBe('danger')
    expect(statusTag('awaiting_payment')).toBe('warning')
    expect(statusTag('cancelled')).toBe('info')
  })
})

function line(over: Partial<OrderLineRead> = {}): OrderLineRead {
  return {
    id: 1,
    line_no: 1,
    product_id: 9,
    barcode: null,
    name: 'x',
    spec: '',
    list_price_fen: 350,
    unit_price_fen: 350,
    quantity: 3,
    discount_fen: 50,
    amount_fen: 1000,
    price_source: 'retail',
    terminal_unit_price_fen: null,
    refunded_qty: 0,
    refunded_fen: 0,
    cancelled_qty: 0,
    cancelled_fen: 0,
    ...over,
  }
}

describe('order actions', () => {
  const all = new Set(Object.values(Perm))
  const order = (status: OrderDetail['status'], next: OrderDetail['next_statuses'], lines = [line()]) => ({ status, next_statuses: next, lines })

  it('offers payment and cancel while unpaid, complete and refund once paid', () => {
    expect(orderActions(order('awaiting_payment', ['paid', 'payment_failed', 'closed', 'cancelled']), all)).toEqual(['pay', 'cancel'])
    expect(orderActions(order('paid', ['completed', 'refund_requested']), all)).toEqual(['complete', 'refund'])
    expect(orderActions(order('completed', ['refund_requested']), all)).toEqual(['refund'])
    expect(orderActions(order('refunded', []), all)).toEqual([])
  })

  it('hides what the user may not do', () => {
    const cashier = new Set<string>([Perm.ORDER_READ, Perm.ORDER_REFUND])
    expect(orderActions(order('paid', ['completed', 'refund_requested']), cashier)).toEqual(['refund'])
    expect(orderActions(order('awaiting_payment', ['cancelled']), new Set([Perm.ORDER_READ]))).toEqual([])
  })

  it('offers no refund when every unit is back', () => {
    expect(orderActions(order('partially_refunded', ['refund_requested'], [line({ refunded_qty: 3, refunded_fen: 1000 })]), all)).toEqual([])
  })
})

describe('refund sums', () => {
  it('shares what was charged pro rata, the last unit taking the remainder', () => {
    const l = line() // 3 units, 1000 fen charged
    expect(refundableUnits(l)).toBe(3)
    expect(lineRefundFen(l, 1)).toBe(333)
    expect(lineRefundFen(l, 2)).toBe(666)
    expect(lineRefundFen(l, 3)).toBe(1000)
    expect(lineRefundFen(l, 0)).toBe(0)
    const after = line({ refunded_qty: 2, refunded_fen: 666 })
    expect(refundableUnits(after)).toBe(1)
    expect(lineRefundFen(after, 1)).toBe(334)
  })

  it('leaves cancelled units out', () => {
    const l = line({ cancelled_qty: 1, cancelled_fen: 333 })
    expect(refundableUnits(l)).toBe(2)
    expect(lineRefundFen(l, 2)).toBe(667)
  })
})

describe('the abnormal-order queue', () => {
  it('says how long an issue waited in the largest unit', () => {
    expect(waited(42)).toEqual({ unit: 'seconds', n: 42 })
    expect(waited(125)).toEqual({ unit: 'minutes', n: 2 })
    expect(waited(3 * 3600 + 5)).toEqual({ unit: 'hours', n: 3 })
    expect(waited(3 * 86_400)).toEqual({ unit: 'days', n: 3 })
    expect(waited(-5)).toEqual({ unit: 'seconds', n: 0 })
    expect(waitLevel(60)).toBe('ok')
    expect(waitLevel(7200)).toBe('warn')
    expect(waitLevel(90_000)).toBe('late')
  })

  it('summarises each kind from its detail', () => {
    expect(issueSummary('price_mismatch', { terminal_total_fen: 250, total_fen: 350 })).toEqual({ key: 'terminal_total', named: { shown: '2.50', total: '3.50' } })
    expect(issueSummary('amount_mismatch', { total_fen: 1000, paid_fen: 1200 })).toEqual({ key: 'paid_total', named: { total: '10.00', paid: '12.00' } })
    expect(issueSummary('stock_short', { lines: [{}, {}] })).toEqual({ key: 'short', named: { n: 2 } })
    expect(issueSummary('payment_failed', { reason: 'declined' })).toEqual({ key: 'reason', named: { reason: 'declined' } })
    expect(issueSummary('refund_failed', {})).toBeNull()
  })
})

describe('live events', () => {
  const base: LiveEvent = {
    id: 10,
    kind: 'transition',
    from_status: null,
    to_status: 'created',
    reason: 'received',
    occurred_at: '2026-12-05T01:00:00Z',
    order_id: 7,
    order_no: '2612050000000007',
    store_id: 1,
    terminal_id: 2,
    status: 'awaiting_payment',
    total_fen: 500,
    item_count: 1,
    open_issues: 0,
    created_at: '2026-12-05T01:00:00Z',
  }

  it('recognises events and new orders', () => {
    expect(isLiveEvent(base)).toBe(true)
    expect(isLiveEvent({ last_event_id: 3 })).toBe(false)
    expect(isLiveEvent(null)).toBe(false)
    expect(isNewOrder(base)).toBe(true)
    expect(isNewOrder({ ...base, from_status: 'created', to_status: 'awaiting_payment' })).toBe(false)
  })

  it('updates rows it shows with the latest event of each order', () => {
    const row = { id: 7, status: 'awaiting_payment', open_issues: 0, total_fen: 500 } as OrderListItem
    const other = { id: 8, status: 'paid', open_issues: 0, total_fen: 100 } as OrderListItem
    const events = [
      { ...base, id: 12, status: 'completed' as const },
      { ...base, id: 11, status: 'paid' as const },
      { ...base, id: 13, order_id: 99, status: 'paid' as const },
    ]
    const { items, changed } = applyLive([row, other], events)
    expect(changed).toEqual([7])
    expect(items[0]!.status).toBe('completed')
    expect(items[1]).toBe(other)
  })
})

describe('refused abnormal-order actions', () => {
  it('takes the reason code from the 409 details, not the English message', () => {
    const refused = new ApiError(409, 'action_not_allowed', 'This order has no customer phone to text', [
      { field: 'via', reason: 'no_customer_phone', message: 'This order has no customer phone to text' },
    ])
    expect(refusalReason(refused)).toBe('no_customer_phone')
    const bare = new ApiError(409, 'action_not_allowed', 'x', [{ field: 'action', reason: 'action_not_allowed', message: 'x' }])
    expect(refusalReason(bare)).toBeNull()
    expect(refusalReason(new ApiError(409, 'conflict', 'x', [{ field: 'a', reason: 'no_payment' }]))).toBeNull()
    expect(refusalReason(new Error('boom'))).toBeNull()
  })
})

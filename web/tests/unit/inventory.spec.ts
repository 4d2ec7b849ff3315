// Inventory and purchasing console logic: stock badges, whole-unit input, the balance chart,
// which purchase order / transfer / stocktake actions each state shows, receiving, reorder picks.
import { describe, expect, it } from 'vitest'
import { balanceSeries, inOut, wallClockLabel, parseWhole, signed, stateBadge, stockState } from '@/views/inventory/logic'
import { yuanToFen } from '@/utils/money'
import {
  PO_STATUSES,
  draftLines,
  outstanding,
  poActions,
  poAllows,
  poEditLines,
  receiveAll,
  receiveLines,
  reorderPlan,
  stocktakeOpen,
  transferActions,
  transferInTransit,
  transferReceipt,
  transferReceiveAll,
  changedCounts,
  savedCounts,
} from '@/views/purchasing/logic'

describe('stock state', () => {
  it('is out at zero or below, low at or under the threshold, ok above', () => {
    expect(stockState(0, 5)).toBe('out')
    expect(stockState(-2, 5)).toBe('out')
    expect(stockState(5, 5)).toBe('low')
    expect(stockState(1, 5)).toBe('low')
    expect(stockState(6, 5)).toBe('ok')
    expect(stockState(1, 0)).toBe('ok')
  })

  it('maps each state to a colour and a key, unknown states to a neutral badge', () => {
    expect(stateBadge('ok')).toEqual({ type: 'success', key: 'inventory.states.ok' })
    expect(stateBadge('low')).toEqual({ type: 'warning', key: 'inventory.states.low' })
    expect(stateBadge('out')).toEqual({ type: 'danger', key: 'inventory.states.out' })
    expect(stateBadge('weird')).toEqual({ type: 'info', key: 'inventory.states.unknown' })
  })
})

describe('whole units', () => {
  it('accepts integers in range and refuses fractions, exponents, text and out-of-range', () => {
    expect(parseWhole('12', 1)).toBe(12)
    expect(parseWhole(' -3 ', -10)).toBe(-3)
    expect(parseWhole(7, 0)).toBe(7)
    expect(parseWhole('1.5', 0)).toBeNull()
    expect(parseWhole('1e3', 0)).toBeNull()
    expect(parseWhole('abc', 0)).toBeNull()
    expect(parseWhole('', 0)).toBeNull()
    expect(parseWhole('0', 1)).toBeNull()
    expect(parseWhole('1000001', 0)).toBeNull()
    expect(parseWhole(null, 0)).toBeNull()
  })

  it('shows signed changes', () => {
    expect(signed(3)).toBe('+3')
    expect(signed(-2)).toBe('-2')
    expect(signed(0)).toBe('0')
  })
})

describe('balance series', () => {
  const points = [
    { at: '2026-03-02T04:00:00Z', balance: 7, change: -3, in_qty: 0, out_qty: 3 },
    { at: '2026-03-01T02:00:00Z', balance: 10, change: 10, in_qty: 10, out_qty: 0 },
  ]

  it('starts at the opening balance, follows the points in time order in the store zone, ends at until', () => {
    const out = balanceSeries(0, points, 'Asia/Shanghai', '2026-03-01T00:00:00Z', '2026-03-03T00:00:00Z')
    expect(out.map(([ms, b]) => [wallClockLabel(ms), b])).toEqual([
      ['2026-03-01 08:00:00', 0],
      ['2026-03-01 10:00:00', 10],
      ['2026-03-02 12:00:00', 7],
      ['2026-03-03 08:00:00', 7],
    ])
  })

  it('draws a flat line at the opening balance when nothing moved', () => {
    expect(balanceSeries(4, [], 'UTC', '2026-03-01T00:00:00Z', '2026-03-02T00:00:00Z')).toEqual([
      [Date.UTC(2026, 2, 1), 4],
      [Date.UTC(2026, 2, 2), 4],
    ])
  })

  it('adds no edge points without a range', () => {
    expect(balanceSeries(0, points, 'UTC')).toHaveLength(2)
  })

  it('totals what came in and went out', () => {
    expect(inOut(points)).toEqual({ inQty: 10, outQty: 3 })
  })

  it('totals movements, not the net change of a bucket (+30 then -26 in one hour)', () => {
    const hour = [{ at: '2026-03-01T02:00:00Z', balance: 4, change: 4, in_qty: 30, out_qty: 26 }]
    expect(inOut(hour)).toEqual({ inQty: 30, outQty: 26 })
  })
})

describe('purchase order actions', () => {
  it('follow the state machine: draft edits, submits, cancels; receiving only once submitted', () => {
    expect(poActions('draft')).toEqual(['edit', 'submit', 'cancel'])
    expect(poActions('submitted')).toEqual(['receive', 'cancel'])
    expect(poActions('partially_received')).toEqual(['receive', 'close'])
    expect(poActions('received')).toEqual(['close'])
    expect(poActions('closed')).toEqual([])
    expect(poActions('cancelled')).toEqual([])
    expect(poActions('unheard_of')).toEqual([])
  })

  it('never offers cancel after goods arrived, nor receive on a draft', () => {
    for (const s of PO_STATUSES) {
      if (s === 'partially_received' || s === 'received') expect(poAllows(s, 'cancel')).toBe(false)
    }
    expect(poAllows('draft', 'receive')).toBe(false)
    expect(poAllows('submitted', 'close')).toBe(false)
  })
})

describe('receiving', () => {
  const lines = [
    { product_id: 1, quantity_ordered: 10, quantity_received: 4 },
    { product_id: 2, quantity_ordered: 5, quantity_received: 5 },
    { product_id: 3, quantity_ordered: 3, quantity_received: 0 },
  ]

  it('knows what is outstanding', () => {
    expect(lines.map(outstanding)).toEqual([6, 0, 3])
    expect(outstanding({ product_id: 9, quantity_ordered: 1, quantity_received: 2 })).toBe(0)
    expect(receiveAll(lines)).toEqual({ 1: 6, 2: 0, 3: 3 })
  })

  it('sends positive quantities only and names lines that would receive more than outstanding', () => {
    expect(receiveLines(lines, { 1: 2, 2: 0, 3: null })).toEqual({ lines: [{ product_id: 1, quantity: 2 }], tooMany: [] })
    expect(receiveLines(lines, { 1: 7, 3: 3 })).toEqual({ lines: [{ product_id: 3, quantity: 3 }], tooMany: [1] })
  })
})

describe('transfers and stocktakes', () => {
  it('ship or cancel a draft, receive in transit, nothing after', () => {
    expect(transferActions('draft')).toEqual(['ship', 'cancel'])
    expect(transferActions('in_transit')).toEqual(['receive'])
    expect(transferActions('partially_received')).toEqual(['receive'])
    expect(transferActions('received')).toEqual([])
    expect(transferActions('cancelled')).toEqual([])
  })

  it('receive a transfer in parts or finish it', () => {
    const lines = [
      { product_id: 1, quantity: 6, quantity_received: 2 },
      { product_id: 2, quantity: 4, quantity_received: null },
      { product_id: 3, quantity: 5, quantity_received: 5 },
    ]
    expect(lines.map(transferInTransit)).toEqual([4, 4, 0])
    expect(transferReceiveAll(lines)).toEqual({ 1: 4, 2: 4, 3: 0 })
    // partial: only what arrives now
    expect(transferReceipt(lines, { 1: 3, 2: 0 }, true)).toEqual({ lines: [{ product_id: 1, quantity: 3 }], tooMany: [], units: 3 })
    // final: every line still in transit, zeros included (the rest was lost)
    expect(transferReceipt(lines, { 1: 3 }, false)).toEqual({
      lines: [
        { product_id: 1, quantity: 3 },
        { product_id: 2, quantity: 0 },
      ],
      tooMany: [],
      units: 3,
    })
    expect(transferReceipt(lines, { 1: 5, 2: 4 }, true).tooMany).toEqual([1])
  })

  it('take counts only while counting', () => {
    expect(stocktakeOpen('counting')).toBe(true)
    expect(stocktakeOpen('posted')).toBe(false)
  })
})

describe('reorder plan', () => {
  const chosen = [
    { product_id: 1, supplier_id: 7, suggested_qty: 12, cost_fen: 250 },
    { product_id: 2, supplier_id: 7, suggested_qty: 6, cost_fen: 199 },
    { product_id: 3, supplier_id: 8, suggested_qty: 4, cost_fen: 1000 },
  ]

  it('sends the chosen products, overrides only changed quantities, totals in fen per supplier', () => {
    const plan = reorderPlan(chosen, { 2: 10, 3: 4 })
    expect(plan.product_ids).toEqual([1, 2, 3])
    expect(plan.quantities).toEqual({ '2': 10 })
    expect(plan.totals).toEqual({ 7: 12 * 250 + 10 * 199, 8: 4000 })
    expect(Number.isInteger(plan.totals[7])).toBe(true)
  })

  it('leaves out a product set to zero', () => {
    expect(reorderPlan(chosen, { 1: 0 }).product_ids).toEqual([2, 3])
  })
})

describe('editing a draft purchase order', () => {
  it('turns saved lines into form lines that parse back to the same body', () => {
    const saved = [
      { product_id: 4, product_name: '可口可乐', quantity_ordered: 24, cost_fen: 195 },
      { product_id: 9, product_name: '芬达', quantity_ordered: 6, cost_fen: 1800 },
    ]
    const form = poEditLines(saved)
    expect(form).toEqual([
      { product_id: 4, quantity: '24', cost: '1.95', label: '可口可乐' },
      { product_id: 9, quantity: '6', cost: '18.00', label: '芬达' },
    ])
    expect(draftLines(form, (s) => parseWhole(s, 1), yuanToFen).lines).toEqual([
      { product_id: 4, quantity: 24, cost_fen: 195 },
      { product_id: 9, quantity: 6, cost_fen: 1800 },
    ])
  })
})

describe('draft lines', () => {
  const qty = (s: string) => parseWhole(s, 1)
  const cost = (s: string) => yuanToFen(s)

  it('turns typed lines into API lines with cost in fen, or names the bad ones', () => {
    const out = draftLines(
      [
        { product_id: 1, quantity: '3', cost: '2.50' },
        { product_id: 2, quantity: '4', cost: '' },
        { product_id: null, quantity: '1', cost: '' },
        { product_id: 3, quantity: '1.5', cost: '' },
        { product_id: 4, quantity: '1', cost: '0.001' },
        { product_id: 1, quantity: '2', cost: '' },
      ],
      qty,
      cost,
    )
    expect(out.lines).toEqual([
      { product_id: 1, quantity: 3, cost_fen: 250 },
      { product_id: 2, quantity: 4 },
    ])
    expect(out.errors).toEqual([2, 3, 4, 5])
  })
})

describe('stocktake counts', () => {
  const lines = [
    { product_id: 1, counted_qty: 12 },
    { product_id: 2, counted_qty: null },
    { product_id: 3, counted_qty: 0 },
  ]

  it('fill the inputs with the counts already saved (not placeholders)', () => {
    expect(savedCounts(lines)).toEqual({ 1: 12, 3: 0 })
  })

  it('send only what was typed and differs from the saved count', () => {
    expect(changedCounts(lines, { ...savedCounts(lines) })).toEqual([])
    expect(changedCounts(lines, { 1: 12, 2: 5, 3: 1 })).toEqual([
      { product_id: 2, counted_qty: 5 },
      { product_id: 3, counted_qty: 1 },
    ])
    expect(changedCounts(lines, { 2: -1, 3: 1.5 })).toEqual([])
  })
})

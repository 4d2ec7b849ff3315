// Pure helpers for purchasing documents: which actions each state allows, receiving, reorder picks.
import { fenToYuan } from '@/utils/money'

export const PO_STATUSES = ['draft', 'submitted', 'partially_received', 'received', 'closed', 'cancelled'] as const
export type PoStatus = (typeof PO_STATUSES)[number]
export type PoAction = 'edit' | 'submit' | 'receive' | 'close' | 'cancel'

/** The backend's table (purchase_orders.TRANSITIONS), seen as the buttons a person may press. */
const PO_ACTIONS: Record<PoStatus, PoAction[]> = {
  draft: ['edit', 'submit', 'cancel'],
  submitted: ['receive', 'cancel'],
  partially_received: ['receive', 'close'],
  received: ['close'],
  closed: [],
  cancelled: [],
}

export function poActions(status: string): PoAction[] {
  return (PO_ACTIONS as Record<string, PoAction[]>)[status] ?? []
}

export function poAllows(status: string, action: PoAction): boolean {
  return poActions(status).includes(action)
}

type TagType = 'success' | 'warning' | 'danger' | 'info' | 'primary'

const PO_TAG: Record<PoStatus, TagType> = {
  draft: 'info',
  submitted: 'primary',
  partially_received: 'warning',
  received: 'success',
  closed: 'info',
  cancelled: 'danger',
}

export function poTag(status: string): TagType {
  return (PO_TAG as Record<string, TagType>)[status] ?? 'info'
}

export interface PoLine {
  product_id: number
  quantity_ordered: number
  quantity_received: number
}

/** What is still expected of a line (never negative). */
export function outstanding(line: PoLine): number {
  return Math.max(0, line.quantity_ordered - line.quantity_received)
}

/** Receive lines with a positive quantity, each no more than is outstanding; a problem names the product. */
export function receiveLines(
  lines: readonly PoLine[],
  entered: Readonly<Record<number, number | null | undefined>>,
): { lines: Array<{ product_id: number; quantity: number }>; tooMany: number[] } {
  const out: Array<{ product_id: number; quantity: number }> = []
  const tooMany: number[] = []
  for (const line of lines) {
    const q = entered[line.product_id]
    if (q === null || q === undefined || q <= 0) continue
    if (q > outstanding(line)) tooMany.push(line.product_id)
    else out.push({ product_id: line.product_id, quantity: q })
  }
  return { lines: out, tooMany }
}

/** Everything outstanding, to prefill "receive all". */
export function receiveAll(lines: readonly PoLine[]): Record<number, number> {
  const out: Record<number, number> = {}
  for (const line of lines) out[line.product_id] = outstanding(line)
  return out
}

export const TRANSFER_STATUSES = ['draft', 'in_transit', 'partially_received', 'received', 'cancelled'] as const
export type TransferAction = 'ship' | 'receive' | 'cancel'

export function transferActions(status: string): TransferAction[] {
  if (status === 'draft') return ['ship', 'cancel']
  if (status === 'in_transit' || status === 'partially_received') return ['receive']
  return []
}

export function transferTag(status: string): TagType {
  return ({ draft: 'info', in_transit: 'warning', partially_received: 'warning', received: 'success', cancelled: 'danger' } as Record<string, TagType>)[status] ?? 'info'
}

export interface TransferLineLike {
  product_id: number
  quantity: number
  quantity_received: number | null
}

/** Units of a shipped line still on the way (never negative). */
export function transferInTransit(line: TransferLineLike): number {
  return Math.max(0, line.quantity - (line.quantity_received ?? 0))
}

/** Everything still in transit, to prefill the receipt form. */
export function transferReceiveAll(lines: readonly TransferLineLike[]): Record<number, number> {
  const out: Record<number, number> = {}
  for (const line of lines) out[line.product_id] = transferInTransit(line)
  return out
}

/**
 * The body lines of a transfer receipt. A partial receipt sends the lines with something arriving;
 * a final one sends every line still in transit with what arrived (0 included: the rest was
 * lost), so nothing left out is taken as "arrived in full". `tooMany` names lines over what is in transit.
 */
export function transferReceipt(
  lines: readonly TransferLineLike[],
  entered: Readonly<Record<number, number | null | undefined>>,
  partial: boolean,
): { lines: Array<{ product_id: number; quantity: number }>; tooMany: number[]; units: number } {
  const out: Array<{ product_id: number; quantity: number }> = []
  const tooMany: number[] = []
  let units = 0
  for (const line of lines) {
    const left = transferInTransit(line)
    if (left === 0) continue
    const q = entered[line.product_id] ?? 0
    if (q > left) tooMany.push(line.product_id)
    else if (q > 0 || !partial) {
      out.push({ product_id: line.product_id, quantity: q })
      units += q
    }
  }
  return { lines: out, tooMany, units }
}

export const STOCKTAKE_STATUSES = ['counting', 'posted', 'cancelled'] as const

export function stocktakeOpen(status: string): boolean {
  return status === 'counting'
}

export function stocktakeTag(status: string): TagType {
  return ({ counting: 'warning', posted: 'success', cancelled: 'info' } as Record<string, TagType>)[status] ?? 'info'
}

export interface Suggestion {
  product_id: number
  supplier_id: number
  suggested_qty: number
  cost_fen: number
}

/**
 * The body for "suggestions → draft orders": the chosen products with the quantities the person
 * kept or changed (only the changed ones are sent as overrides), and the total in fen per supplier.
 */
export function reorderPlan(
  chosen: readonly Suggestion[],
  quantities: Readonly<Record<number, number>>,
): { product_ids: number[]; quantities: Record<string, number>; totals: Record<number, number> } {
  const product_ids: number[] = []
  const overrides: Record<string, number> = {}
  const totals: Record<number, number> = {}
  for (const s of chosen) {
    const q = quantities[s.product_id] ?? s.suggested_qty
    if (q <= 0) continue
    product_ids.push(s.product_id)
    if (q !== s.suggested_qty) overrides[String(s.product_id)] = q
    totals[s.supplier_id] = (totals[s.supplier_id] ?? 0) + q * s.cost_fen
  }
  return { product_ids, quantities: overrides, totals }
}

/** Lines typed in a form turned into API lines; `errors` holds the index of each bad line. */
export function draftLines(
  lines: ReadonlyArray<{ product_id: number | null; quantity: string; cost?: string }>,
  parseQty: (s: string) => number | null,
  parseCost?: (s: string) => number | null,
): { lines: Array<{ product_id: number; quantity: number; cost_fen?: number }>; errors: number[] } {
  const out: Array<{ product_id: number; quantity: number; cost_fen?: number }> = []
  const errors: number[] = []
  const seen = new Set<number>()
  lines.forEach((l, i) => {
    const q = parseQty(l.quantity)
    const costText = (l.cost ?? '').trim()
    const cost = costText && parseCost ? parseCost(costText) : undefined
    if (l.product_id === null || q === null || cost === null || (cost !== undefined && cost < 0) || seen.has(l.product_id)) {
      errors.push(i)
      return
    }
    seen.add(l.product_id)
    out.push(cost === undefined ? { product_id: l.product_id, quantity: q } : { product_id: l.product_id, quantity: q, cost_fen: cost })
  })
  return { lines: out, errors }
}

export interface PoLineLike {
  product_id: number
  product_name: string
  spec?: string
  quantity_ordered: number
  cost_fen: number
}

/** A saved draft's lines as form lines to edit: whole quantity and cost in yuan as typed text. */
export function poEditLines(lines: readonly PoLineLike[]): Array<{ product_id: number; quantity: string; cost: string; label: string }> {
  return lines.map((l) => ({ product_id: l.product_id, quantity: String(l.quantity_ordered), cost: fenToYuan(l.cost_fen), label: l.spec ? `${l.product_name} ${l.spec}` : l.product_name }))
}

/**
 * The counts a stocktake already holds, to fill the count inputs with (a saved count shows as
 * the value it is, never as a grey placeholder that looks empty).
 */
export function savedCounts(lines: ReadonlyArray<{ product_id: number; counted_qty: number | null }>): Record<number, number> {
  const out: Record<number, number> = {}
  for (const l of lines) if (l.counted_qty !== null) out[l.product_id] = l.counted_qty
  return out
}

/** The counts typed that differ from what is saved (whole numbers, 0 or more), to send. */
export function changedCounts(
  lines: ReadonlyArray<{ product_id: number; counted_qty: number | null }>,
  entered: Readonly<Record<number, number | null | undefined>>,
): Array<{ product_id: number; counted_qty: number }> {
  const out: Array<{ product_id: number; counted_qty: number }> = []
  for (const l of lines) {
    const q = entered[l.product_id]
    if (q === null || q === undefined || !Number.isInteger(q) || q < 0) continue
    if (q !== l.counted_qty) out.push({ product_id: l.product_id, counted_qty: q })
  }
  return out
}

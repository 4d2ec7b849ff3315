// Pure helpers for the stock pages: state badges, movement kinds, whole-unit input, chart series.
import { formatTime, zoneOffsetMinutes } from '@/utils/time'

export type StockState = 'ok' | 'low' | 'out'
export type TagType = 'success' | 'warning' | 'danger' | 'info' | 'primary'

export const STOCK_STATES: StockState[] = ['ok', 'low', 'out']

/** The state of a balance against its threshold, as the backend decides it (low means <= threshold). */
export function stockState(quantity: number, threshold: number): StockState {
  if (quantity <= 0) return 'out'
  if (quantity <= threshold) return 'low'
  return 'ok'
}

const STATE_TAG: Record<StockState, TagType> = { ok: 'success', low: 'warning', out: 'danger' }

/** The badge for a state: its colour and its translation key. */
export function stateBadge(state: string): { type: TagType; key: string } {
  const known = (STOCK_STATES as string[]).includes(state)
  return { type: known ? STATE_TAG[state as StockState] : 'info', key: known ? `inventory.states.${state}` : 'inventory.states.unknown' }
}

export const MOVEMENT_KINDS = [
  'purchase_receipt',
  'sale',
  'customer_return',
  'transfer_out',
  'transfer_in',
  'stocktake_gain',
  'stocktake_loss',
  'write_off',
  'supplier_return',
  'adjustment',
] as const

/** "+12" / "-3" / "0": a signed quantity as the ledger shows it. */
export function signed(n: number): string {
  return n > 0 ? `+${n}` : String(n)
}

/** A whole number typed by a person, within [min, max]; null when it is not one (no floats, no "1e3"). */
export function parseWhole(text: string | number | null | undefined, min: number, max = 1_000_000): number | null {
  if (text === null || text === undefined) return null
  const s = String(text).trim()
  if (!/^[+-]?\d+$/.test(s)) return null
  const n = Number(s)
  if (!Number.isSafeInteger(n) || n < min || n > max) return null
  return n
}

export interface SeriesPoint {
  at: string
  balance: number
  /** net change within the point's bucket */
  change: number
  /** units in and out within the bucket (sums of movements; out is positive) */
  in_qty: number
  out_qty: number
}

/**
 * An instant as the store's wall clock, in milliseconds read as UTC: ECharts draws a time axis
 * with `useUTC: true`, so the axis shows the store's local time whatever the browser's zone.
 */
export function wallClockMs(iso: string, tz: string): number {
  const d = new Date(iso)
  return d.getTime() + zoneOffsetMinutes(d, tz) * 60_000
}

/** The label of a wall-clock millisecond value ("2026-03-01 08:00:00"). */
export function wallClockLabel(ms: number): string {
  return formatTime(new Date(ms), 'UTC')
}

/**
 * The balance over time for ECharts: a step line that starts at the opening balance at `since`
 * and ends at `until` with the last balance, as [store wall-clock ms, balance] pairs.
 */
export function balanceSeries(
  opening: number,
  points: readonly SeriesPoint[],
  tz: string,
  since?: string | null,
  until?: string | null,
): Array<[number, number]> {
  const out: Array<[number, number]> = []
  const sorted = [...points].sort((a, b) => Date.parse(a.at) - Date.parse(b.at))
  if (since && (sorted.length === 0 || Date.parse(since) < Date.parse(sorted[0]!.at))) out.push([wallClockMs(since, tz), opening])
  for (const p of sorted) out.push([wallClockMs(p.at, tz), p.balance])
  const last = out.length ? out[out.length - 1]![1] : opening
  if (until && (sorted.length === 0 || Date.parse(until) > Date.parse(sorted[sorted.length - 1]!.at))) out.push([wallClockMs(until, tz), last])
  return out
}

/**
 * Sums of what came in and went out in a set of points (for the chart's legend): the sums of
 * the movements, never of the net change per bucket (+30 then -26 in one hour is 30 in, 26 out).
 */
export function inOut(points: readonly SeriesPoint[]): { inQty: number; outQty: number } {
  let inQty = 0
  let outQty = 0
  for (const p of points) {
    inQty += p.in_qty
    outQty += p.out_qty
  }
  return { inQty, outQty }
}

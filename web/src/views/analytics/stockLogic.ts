// Pure helpers of the stock analysis page: basis points as a percentage, and the chart's bars.
import type { StockAnalysis } from '@/api'

/** Basis points as a percentage with two decimals ("26.67%"); "—" when undefined. */
export function bpPercent(bp: number | null | undefined): string {
  if (bp === null || bp === undefined) return '—'
  return `${Math.floor(bp / 100)}.${String(bp % 100).padStart(2, '0')}%`
}

export interface StockChart {
  labels: string[]
  turnover: Array<number | null>
  sellThrough: Array<number | null>
}

/** One bar pair per store: turnover days and sell-through (percent, for plotting only). */
export function stockChart(a: StockAnalysis | null): StockChart {
  const rows = a?.by_store ?? []
  return {
    labels: rows.map((r) => r.name),
    turnover: rows.map((r) => (r.turnover_days === null ? null : Number(r.turnover_days))),
    sellThrough: rows.map((r) => (r.sell_through_bp === null ? null : r.sell_through_bp / 100)),
  }
}

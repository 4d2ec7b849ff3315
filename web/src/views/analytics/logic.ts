// Pure helpers of the statistics page: change against a base period, and the chart's series.
import type { Figures, PeriodFigures } from '@/api'

/** The change from `base` to `value` in percent with one decimal ("+12.5%"); "—" without a base. */
export function change(value: number | null, base: number | null): string {
  if (value === null || base === null || base === 0) return '—'
  const tenths = Math.round(((value - base) * 1000) / Math.abs(base))
  const sign = tenths > 0 ? '+' : tenths < 0 ? '-' : ''
  const abs = Math.abs(tenths)
  return `${sign}${Math.floor(abs / 10)}.${abs % 10}%`
}

/** Fen as yuan for plotting only (labels go through fenToYuan). */
export function plotYuan(fen: number): number {
  return fen / 100
}

export interface ChartData {
  labels: string[]
  net: number[]
  netLastYear: number[]
  orders: Array<number | null>
}

/** One point per period: net sales now and a year before (yuan), and orders. */
export function chartData(periods: readonly PeriodFigures[]): ChartData {
  return {
    labels: periods.map((p) => p.period),
    net: periods.map((p) => plotYuan(p.current.net_sales_fen)),
    netLastYear: periods.map((p) => plotYuan(p.last_year.net_sales_fen)),
    orders: periods.map((p) => p.current.orders),
  }
}

export type FigureKey = 'orders' | 'sales_fen' | 'refunds_fen' | 'net_sales_fen' | 'avg_order_value_fen' | 'items' | 'items_per_order' | 'paying_members'

/** A figure as a number for comparisons (items per order is a decimal string). */
export function numeric(f: Figures, key: FigureKey): number | null {
  const v = f[key]
  if (v === null || v === undefined) return null
  return typeof v === 'string' ? Number(v) : v
}

/** One series of a bar-and-line chart: on the left axis, or on the right one (`right`). */
export interface ComboSeries {
  name: string
  type: 'bar' | 'line'
  data: Array<number | null>
  right?: boolean
  stack?: string
}

/** The ECharts option every analytics page draws: periods along the bottom, bars and lines
 *  over a left axis and a right one (`rightAxis`: e.g. `{ max: 100 }` for percentages), the
 *  legend named after the series. */
export function comboOption(labels: string[], series: ComboSeries[], rightAxis: Record<string, number> = {}): Record<string, unknown> {
  return {
    grid: { left: 56, right: 56, top: 40, bottom: 32 },
    tooltip: { trigger: 'axis' },
    legend: { top: 4, data: series.map((s) => s.name) },
    xAxis: { type: 'category', data: labels },
    yAxis: [{ type: 'value' }, { type: 'value', ...rightAxis }],
    series: series.map((s) => ({
      name: s.name,
      type: s.type,
      data: s.data,
      ...(s.right ? { yAxisIndex: 1 } : {}),
      ...(s.stack ? { stack: s.stack } : {}),
    })),
  }
}

/** One cell of the hour × weekday heat map as the API gives it. */
export interface HeatInput {
  weekday: number
  hour: number
  orders: number
}

/** The heat map's option: hours 0-23 along the bottom, weekdays Monday first down the side
 *  (`weekdays`: their seven names), each cell's orders coloured on a scale from 0 to the
 *  busiest cell. */
export function heatmapOption(cells: readonly HeatInput[], weekdays: readonly string[], name: string): Record<string, unknown> {
  const max = cells.reduce((m, c) => Math.max(m, c.orders), 0)
  return {
    grid: { left: 72, right: 88, top: 16, bottom: 32 },
    tooltip: { position: 'top' },
    xAxis: { type: 'category', data: Array.from({ length: 24 }, (_, h) => String(h)), splitArea: { show: true } },
    yAxis: { type: 'category', data: [...weekdays], inverse: true, splitArea: { show: true } },
    // the scale stands at the right, clear of the hours along the bottom
    visualMap: { min: 0, max: Math.max(max, 1), calculable: true, orient: 'vertical', right: 8, top: 'middle' },
    series: [{ name, type: 'heatmap', data: cells.map((c) => [c.hour, c.weekday - 1, c.orders]) }],
  }
}

/** A pie of named amounts (fen, plotted in yuan), largest first; slices of nothing left out. */
export function pieOption(items: ReadonlyArray<{ name: string; fen: number }>): Record<string, unknown> {
  const data = items
    .filter((i) => i.fen > 0)
    .sort((a, b) => b.fen - a.fen)
    .map((i) => ({ name: i.name, value: plotYuan(i.fen) }))
  return {
    tooltip: { trigger: 'item', formatter: '{b}: ¥{c} ({d}%)' },
    legend: { type: 'scroll', orient: 'vertical', right: 0, top: 'middle' },
    series: [{ type: 'pie', radius: ['35%', '65%'], center: ['38%', '50%'], data }],
  }
}

// The statistics page's helpers: changes against a base period and the chart's series.
import { describe, expect, it } from 'vitest'
import type { Figures, PeriodFigures } from '@/api'
import { change, chartData, heatmapOption, numeric, pieOption } from '@/views/analytics/logic'
import { useAnalyticsFilters } from '@/views/analytics/filters'

function fig(net: number, orders = 1, ipo = '1.50'): Figures {
  return {
    orders,
    sales_fen: net,
    refunds: 0,
    refunds_fen: 0,
    net_sales_fen: net,
    avg_order_value_fen: orders ? Math.round(net / orders) : 0,
    items: 3,
    items_per_order: ipo,
    paying_members: 1,
    member_sales_fen: 0,
  }
}

describe('analytics', () => {
  it('says the change in percent with one decimal, and nothing without a base', () => {
    expect(change(1125, 1000)).toBe('+12.5%')
    expect(change(900, 1000)).toBe('-10.0%')
    expect(change(1000, 1000)).toBe('0.0%')
    expect(change(-350, 700)).toBe('-150.0%')
    expect(change(500, 0)).toBe('—')
    expect(change(null, 100)).toBe('—')
    expect(change(1, 3)).toBe('-66.7%')
  })

  it('plots net sales in yuan now and a year before, and orders', () => {
    const periods: PeriodFigures[] = [
      { period: '2025-W13', start: '2025-03-24', end: '2025-03-30', current: fig(35000), previous: fig(0, 0), last_year: fig(12345) },
      { period: '2025-W14', start: '2025-03-31', end: '2025-04-06', current: fig(-350, 0), previous: fig(35000), last_year: fig(0, 0) },
    ]
    expect(chartData(periods)).toEqual({
      labels: ['2025-W13', '2025-W14'],
      net: [350, -3.5],
      netLastYear: [123.45, 0],
      orders: [1, 0],
    })
  })

  it('reads decimal figures as numbers and keeps nulls', () => {
    expect(numeric(fig(100), 'items_per_order')).toBe(1.5)
    // every figure the chart reads is a number now; one missing reads as no value, not 0
    expect(numeric({ ...fig(100), orders: null } as unknown as Figures, 'orders')).toBeNull()
    expect(numeric(fig(100, 0, '0.00'), 'items_per_order')).toBe(0)
  })

  it('draws the heat map hours across and weekdays down, scaled to the busiest cell', () => {
    const days = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']
    const option = heatmapOption(
      [
        { weekday: 1, hour: 0, orders: 2 },
        { weekday: 7, hour: 23, orders: 5 },
        { weekday: 3, hour: 12, orders: 0 },
      ],
      days,
      'Orders',
    ) as { xAxis: { data: string[] }; yAxis: { data: string[] }; visualMap: { max: number }; series: Array<{ data: number[][] }> }
    expect(option.xAxis.data).toHaveLength(24)
    expect(option.xAxis.data[23]).toBe('23')
    expect(option.yAxis.data).toEqual(days)
    expect(option.visualMap.max).toBe(5)
    expect(option.series[0]?.data).toEqual([
      [0, 0, 2],
      [23, 6, 5],
      [12, 2, 0],
    ])
    // nothing sold: the scale still runs from 0 to 1
    expect((heatmapOption([], days, 'Orders') as { visualMap: { max: number } }).visualMap.max).toBe(1)
  })

  it('draws a pie of yuan, largest first, leaving out slices of nothing', () => {
    const option = pieOption([
      { name: 'Drinks', fen: 1050 },
      { name: 'Snacks', fen: 12345 },
      { name: 'Returned', fen: -200 },
      { name: 'None', fen: 0 },
    ]) as { series: Array<{ data: Array<{ name: string; value: number }> }> }
    expect(option.series[0]?.data).toEqual([
      { name: 'Snacks', value: 123.45 },
      { name: 'Drinks', value: 10.5 },
    ])
  })

  it('asks for the window, and the city and store only when chosen', () => {
    const f = useAnalyticsFilters(7)
    f.range.value = ['2026-11-01', '2026-11-07']
    expect(f.query()).toEqual({ start: '2026-11-01', end: '2026-11-07' })
    f.city.value = '杭州'
    expect(f.query()).toEqual({ start: '2026-11-01', end: '2026-11-07', city: '杭州' })
    f.storeId.value = 3
    expect(f.query()).toEqual({ start: '2026-11-01', end: '2026-11-07', city: '杭州', store_id: 3 })
  })
})

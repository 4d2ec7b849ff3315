// The statistics page's helpers: changes against a base period and the chart's series.
import { describe, expect, it } from 'vitest'
import type { Figures, PeriodFigures } from '@/api'
import { change, chartData, numeric } from '@/views/analytics/logic'

function fig(net: number, orders: number | null = 1, ipo: string | null = '1.50'): Figures {
  return {
    orders,
    sales_fen: net,
    refunds: 0,
    refunds_fen: 0,
    net_sales_fen: net,
    avg_order_value_fen: orders ? Math.round(net / orders) : null,
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
    expect(numeric(fig(100, null, null), 'orders')).toBeNull()
    expect(numeric(fig(100, null, null), 'items_per_order')).toBeNull()
  })
})

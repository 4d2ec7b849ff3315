// The members-versus-guests page's helpers: the repurchase rate as a percentage, and the chart.
import { describe, expect, it } from 'vitest'
import type { MemberFigures, MemberPeriod } from '@/api'
import { memberChart, ratePercent } from '@/views/analytics/memberLogic'

function figures(memberSales: number, guestSales: number, rate: string | null): MemberFigures {
  return {
    orders: 3,
    sales_fen: memberSales + guestSales,
    member_orders: 2,
    member_sales_fen: memberSales,
    guest_orders: 1,
    guest_sales_fen: guestSales,
    new_members: 1,
    paying_members: 3,
    repeat_members: 1,
    repurchase_rate: rate,
  }
}

describe('ratePercent', () => {
  it('shows four decimals as a percentage with two, exactly', () => {
    expect(ratePercent('0.3333')).toBe('33.33%')
    expect(ratePercent('1.0000')).toBe('100.00%')
    expect(ratePercent('0.0000')).toBe('0.00%')
    expect(ratePercent('0.0005')).toBe('0.05%')
    expect(ratePercent('0.5')).toBe('50.00%')
  })
  it('shows a dash when nobody paid', () => {
    expect(ratePercent(null)).toBe('—')
    expect(ratePercent(undefined)).toBe('—')
  })
})

describe('memberChart', () => {
  it('gives one point per period', () => {
    const periods: MemberPeriod[] = [
      { period: '2025-04-01', start: '2025-04-01', end: '2025-04-01', current: figures(1050, 800, '1.0000'), previous: figures(0, 0, null) },
      { period: '2025-04-02', start: '2025-04-02', end: '2025-04-02', current: figures(350, 0, null), previous: figures(0, 0, null) },
    ]
    expect(memberChart(periods)).toEqual({
      labels: ['2025-04-01', '2025-04-02'],
      memberSales: [10.5, 3.5],
      guestSales: [8, 0],
      newMembers: [1, 1],
      repurchasePct: [100, null],
    })
  })
})

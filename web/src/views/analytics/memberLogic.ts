// Pure helpers of the members-versus-guests page: the repurchase rate as a percentage, and
// the chart's series.
import type { MemberPeriod } from '@/api'
import { plotYuan } from './logic'

/** A rate with four decimals ("0.3333") as a percentage with two ("33.33%"); "—" for none. */
export function ratePercent(rate: string | null | undefined): string {
  if (rate === null || rate === undefined) return '—'
  const [whole = '0', frac = ''] = rate.split('.')
  const basis = Number(whole) * 10_000 + Number(frac.padEnd(4, '0').slice(0, 4))
  return `${Math.floor(basis / 100)}.${String(basis % 100).padStart(2, '0')}%`
}

export interface MemberChart {
  labels: string[]
  memberSales: number[]
  guestSales: number[]
  newMembers: number[]
  repurchasePct: Array<number | null>
}

/** One point per period: member and guest sales (yuan, plotting only), new members and the
 *  repurchase rate in percent. */
export function memberChart(periods: readonly MemberPeriod[]): MemberChart {
  return {
    labels: periods.map((p) => p.period),
    memberSales: periods.map((p) => plotYuan(p.current.member_sales_fen)),
    guestSales: periods.map((p) => plotYuan(p.current.guest_sales_fen)),
    newMembers: periods.map((p) => p.current.new_members),
    repurchasePct: periods.map((p) => (p.current.repurchase_rate === null ? null : Number(p.current.repurchase_rate) * 100)),
  }
}

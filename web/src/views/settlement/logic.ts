// Pure helpers of the settlement pages: date ranges, what a statement allows next.
import type { StatementRead } from '@/api'

const pad = (n: number) => String(n).padStart(2, '0')

/** "2026-11-05" for a local Date. */
export function isoDay(d: Date): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`
}

/** The first of `today`'s month to `today`: what a finance team looks at first. */
export function monthToDate(today: Date): [string, string] {
  return [isoDay(new Date(today.getFullYear(), today.getMonth(), 1)), isoDay(today)]
}

/** The whole month before `today`'s: the usual supplier settlement period. */
export function previousMonth(today: Date): [string, string] {
  const first = new Date(today.getFullYear(), today.getMonth() - 1, 1)
  const last = new Date(today.getFullYear(), today.getMonth(), 0)
  return [isoDay(first), isoDay(last)]
}

/** The day after an ISO date ("2026-11-30" -> "2026-12-01"). */
export function dayAfter(day: string): string {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number]
  return isoDay(new Date(y, m - 1, d + 1))
}

/** The period a new statement of a supplier should cover: from the day after its latest
 *  statement to the end of that month, or the previous month when it has none. */
export function nextPeriod(latestEnd: string | null, today: Date): [string, string] {
  if (!latestEnd) return previousMonth(today)
  const start = dayAfter(latestEnd)
  const [y, m] = start.split('-').map(Number) as [number, number]
  return [start, isoDay(new Date(y, m, 0))]
}

export type StatementAction = 'review' | 'approve' | 'pay' | 'regenerate' | 'delete'

/** The steps a statement in its status allows to someone with these permission flags. */
export function statementActions(
  status: StatementRead['status'],
  can: { write: boolean; approve: boolean },
): StatementAction[] {
  const out: StatementAction[] = []
  if (can.write && status === 'draft') out.push('review')
  if (can.approve && status === 'reviewed') out.push('approve')
  if (can.approve && status === 'approved') out.push('pay')
  if (can.write && (status === 'draft' || status === 'reviewed')) out.push('regenerate', 'delete')
  return out
}

export const STATUS_TAG: Record<string, 'info' | 'warning' | 'success' | 'primary'> = {
  draft: 'info',
  reviewed: 'warning',
  approved: 'primary',
  paid: 'success',
}

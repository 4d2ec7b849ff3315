// Shortcuts of the TimeRange picker: today, yesterday, the last 7 days, this month and last
// month, as wall-clock times in the store's zone (whatever zone the browser is in).
import { formatDate } from '@/utils/time'

export const RANGE_SHORTCUTS = ['today', 'yesterday', 'last7Days', 'thisMonth', 'lastMonth'] as const
export type RangeShortcut = (typeof RANGE_SHORTCUTS)[number]

/** A calendar day moved by `days` (pure date arithmetic, no zone involved). */
function addDays(ymd: string, days: number): string {
  const [y, m, d] = ymd.split('-').map(Number) as [number, number, number]
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10)
}

function monthStart(ymd: string, monthsBack = 0): string {
  const [y, m] = ymd.split('-').map(Number) as [number, number]
  return new Date(Date.UTC(y, m - 1 - monthsBack, 1)).toISOString().slice(0, 10)
}

/** The range a shortcut stands for, as wall-clock times in `tz`: [first second, last second]. */
export function shortcutRange(kind: RangeShortcut, tz: string, now: Date = new Date()): [string, string] {
  const today = formatDate(now, tz)
  const span = (from: string, to: string): [string, string] => [`${from} 00:00:00`, `${to} 23:59:59`]
  switch (kind) {
    case 'today':
      return span(today, today)
    case 'yesterday':
      return span(addDays(today, -1), addDays(today, -1))
    case 'last7Days':
      return span(addDays(today, -6), today)
    case 'thisMonth':
      return span(monthStart(today), addDays(monthStart(today, -1), -1))
    case 'lastMonth':
      return span(monthStart(today, 1), addDays(monthStart(today), -1))
  }
}

/**
 * The picker shows and returns Date objects in the browser's zone: a wall-clock time of `tz`
 * is handed to it as the browser-local Date with the same reading, so it shows (and, through
 * value-format, gives back) exactly that wall-clock time.
 */
export function wallClockDate(wallClock: string): Date {
  const [d, t = '00:00:00'] = wallClock.split(' ')
  const [y, mo, day] = d!.split('-').map(Number) as [number, number, number]
  const [h, mi, s] = t.split(':').map(Number) as [number, number, number]
  return new Date(y, mo - 1, day, h, mi, s)
}

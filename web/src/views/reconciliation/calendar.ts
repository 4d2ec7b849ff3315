// Day arithmetic for the reconciliation pages: bill days are Beijing calendar days.
export const BILL_ZONE = 'Asia/Shanghai'

/** Today in Beijing as YYYY-MM-DD. */
export function beijingToday(now: Date = new Date()): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: BILL_ZONE, year: 'numeric', month: '2-digit', day: '2-digit' }).format(now)
}

/** Every day (YYYY-MM-DD) of a month given as YYYY-MM; empty for anything else. */
export function monthDays(month: string): string[] {
  const m = /^(\d{4})-(\d{2})$/.exec(month)
  if (!m) return []
  const year = Number(m[1])
  const mon = Number(m[2])
  if (mon < 1 || mon > 12) return []
  const count = new Date(Date.UTC(year, mon, 0)).getUTCDate()
  return Array.from({ length: count }, (_, i) => `${m[1]}-${m[2]}-${String(i + 1).padStart(2, '0')}`)
}

/** The day before/after `day` (YYYY-MM-DD). */
export function shiftDay(day: string, by: number): string {
  const d = new Date(`${day}T00:00:00Z`)
  d.setUTCDate(d.getUTCDate() + by)
  return d.toISOString().slice(0, 10)
}

export type TagType = 'success' | 'warning' | 'danger' | 'info' | 'primary'

const STATUS_TAGS: Record<string, TagType> = {
  matched: 'success',
  open: 'danger',
  no_bill: 'info',
  refused: 'warning',
  not_run: 'info',
  reconciled: 'success',
}

export function statusTag(status: string): TagType {
  return STATUS_TAGS[status] ?? 'info'
}

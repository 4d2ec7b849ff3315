// Times travel as UTC ISO strings and are shown in the store's zone (Asia/Shanghai by default).
export const DEFAULT_TZ = 'Asia/Shanghai'

const formatters = new Map<string, Intl.DateTimeFormat>()

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz)
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', {
      timeZone: tz,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
    })
    formatters.set(tz, f)
  }
  return f
}

function parts(date: Date, tz: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const p of formatter(tz).formatToParts(date)) {
    if (p.type !== 'literal') out[p.type] = Number(p.value)
  }
  return out
}

const pad = (n: number | undefined, w = 2) => String(n ?? 0).padStart(w, '0')

/** "2026-11-25 21:05:09" in `tz`; "" for no value. */
export function formatTime(value: string | Date | null | undefined, tz: string = DEFAULT_TZ): string {
  if (value === null || value === undefined || value === '') return ''
  const date = typeof value === 'string' ? new Date(value) : value
  if (Number.isNaN(date.getTime())) return ''
  const p = parts(date, tz)
  return `${pad(p.year, 4)}-${pad(p.month)}-${pad(p.day)} ${pad(p.hour)}:${pad(p.minute)}:${pad(p.second)}`
}

/** "2026-11-25" in `tz`. */
export function formatDate(value: string | Date | null | undefined, tz: string = DEFAULT_TZ): string {
  return formatTime(value, tz).slice(0, 10)
}

/** Minutes east of UTC that `tz` is at the instant `date`. */
export function zoneOffsetMinutes(date: Date, tz: string): number {
  const p = parts(date, tz)
  const asUtc = Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!)
  return Math.round((asUtc - Math.floor(date.getTime() / 1000) * 1000) / 60000)
}

/**
 * A wall-clock time picked in the console ("2026-11-25 08:00:00") read as a time in `tz`,
 * returned as a UTC ISO string for the API.
 */
export function zonedToUtcIso(wallClock: string, tz: string = DEFAULT_TZ): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(wallClock.trim())
  if (!m) throw new Error(`not a wall-clock time: ${wallClock}`)
  const [, y, mo, d, h = '0', mi = '0', s = '0'] = m
  const naive = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s))
  // Two passes settle the offset even next to a daylight-saving change.
  let guess = naive - zoneOffsetMinutes(new Date(naive), tz) * 60000
  guess = naive - zoneOffsetMinutes(new Date(guess), tz) * 60000
  return new Date(guess).toISOString()
}

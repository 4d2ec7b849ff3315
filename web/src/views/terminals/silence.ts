// How long a terminal has been silent, in the largest two units ("2 h 5 min", "3 d 4 h").

export type Translate = (key: string, values?: Record<string, unknown>) => string

export function silenceParts(seconds: number): { days: number; hours: number; minutes: number } {
  const s = Math.max(0, Math.floor(seconds))
  return { days: Math.floor(s / 86400), hours: Math.floor((s % 86400) / 3600), minutes: Math.floor((s % 3600) / 60) }
}

export function formatSilence(seconds: number, t: Translate): string {
  const { days, hours, minutes } = silenceParts(seconds)
  if (days > 0) return t('terminals.fleet.daysHours', { d: days, h: hours })
  if (hours > 0) return t('terminals.fleet.hoursMinutes', { h: hours, m: minutes })
  if (minutes > 0) return t('terminals.fleet.minutes', { m: minutes })
  return t('terminals.fleet.justNow')
}

import { describe, expect, it } from 'vitest'
import { formatSilence, silenceParts } from '@/views/terminals/silence'

const t = (key: string, v: Record<string, unknown> = {}) => `${key.split('.').pop()}:${JSON.stringify(v)}`

describe('silence', () => {
  it('splits seconds into days, hours and minutes', () => {
    expect(silenceParts(0)).toEqual({ days: 0, hours: 0, minutes: 0 })
    expect(silenceParts(7500)).toEqual({ days: 0, hours: 2, minutes: 5 })
    expect(silenceParts(86400 * 3 + 3600 * 4 + 59)).toEqual({ days: 3, hours: 4, minutes: 0 })
    expect(silenceParts(-5)).toEqual({ days: 0, hours: 0, minutes: 0 })
  })
  it('words the two largest units', () => {
    expect(formatSilence(30, t)).toBe('justNow:{}')
    expect(formatSilence(125, t)).toBe('minutes:{"m":2}')
    expect(formatSilence(7500, t)).toBe('hoursMinutes:{"h":2,"m":5}')
    expect(formatSilence(90000, t)).toBe('daysHours:{"d":1,"h":1}')
  })
})

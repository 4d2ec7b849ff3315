// Day arithmetic behind the reconciliation calendar: bill days are Beijing days.
import { describe, expect, it } from 'vitest'
import { beijingToday, monthDays, shiftDay, statusTag } from '@/views/reconciliation/calendar'

describe('reconciliation calendar days', () => {
  it('lists every day of a month, leap years included', () => {
    expect(monthDays('2026-12')).toHaveLength(31)
    expect(monthDays('2028-02').at(-1)).toBe('2028-02-29')
    expect(monthDays('2026-02').at(-1)).toBe('2026-02-28')
    expect(monthDays('2026-04')[0]).toBe('2026-04-01')
    expect(monthDays('2026-13')).toEqual([])
    expect(monthDays('junk')).toEqual([])
  })

  it('steps across month and year ends', () => {
    expect(shiftDay('2026-12-31', 1)).toBe('2027-01-01')
    expect(shiftDay('2026-03-01', -1)).toBe('2026-02-28')
  })

  it('takes today in Beijing, not in UTC', () => {
    // 17:30 UTC on 31 Dec is already 1 Jan in Beijing
    expect(beijingToday(new Date('2026-12-31T17:30:00Z'))).toBe('2027-01-01')
    expect(beijingToday(new Date('2026-12-31T15:59:00Z'))).toBe('2026-12-31')
  })

  it('colours a day with open differences as danger', () => {
    expect(statusTag('open')).toBe('danger')
    expect(statusTag('matched')).toBe('success')
    expect(statusTag('whatever')).toBe('info')
  })
})

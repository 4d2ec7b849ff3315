// Time zones and money: shown in the store's zone, kept as UTC and whole fen.
import { describe, expect, it } from 'vitest'
import { formatTime, zonedToUtcIso } from '@/utils/time'
import { fenToYuan, yuanText, yuanToFen } from '@/utils/money'
import { filenameFrom } from '@/utils/download'
import { groupPermissions } from '@/views/iam/permissionCatalog'

describe('time', () => {
  it('shows UTC instants in Asia/Shanghai by default', () => {
    expect(formatTime('2026-11-25T16:30:05Z')).toBe('2026-11-26 00:30:05')
  })
  it('shows them in another store zone when asked', () => {
    expect(formatTime('2026-07-01T12:00:00Z', 'Asia/Urumqi')).toBe('2026-07-01 18:00:00')
    expect(formatTime('2026-07-01T12:00:00Z', 'UTC')).toBe('2026-07-01 12:00:00')
  })
  it('returns empty for no value', () => {
    expect(formatTime(null)).toBe('')
    expect(formatTime('nonsense')).toBe('')
  })
  it('reads a picked wall-clock time in the zone and returns UTC', () => {
    expect(zonedToUtcIso('2026-11-26 00:30:05')).toBe('2026-11-25T16:30:05.000Z')
    expect(zonedToUtcIso('2026-03-08', 'America/New_York')).toBe('2026-03-08T05:00:00.000Z')
    expect(zonedToUtcIso('2026-07-01 12:00:00', 'America/New_York')).toBe('2026-07-01T16:00:00.000Z')
  })
})

describe('money', () => {
  it('formats fen as yuan', () => {
    expect(fenToYuan(12345)).toBe('123.45')
    expect(fenToYuan(5)).toBe('0.05')
    expect(fenToYuan(-5)).toBe('-0.05')
    expect(() => fenToYuan(1.5)).toThrow()
  })
  it('shows money with the sign before the ¥', () => {
    expect(yuanText(12345)).toBe('¥123.45')
    expect(yuanText(0)).toBe('¥0.00')
    expect(yuanText(-3)).toBe('-¥0.03')
    expect(yuanText(-12345)).toBe('-¥123.45')
  })
  it('parses yuan to whole fen without floats', () => {
    expect(yuanToFen('0.29')).toBe(29)
    expect(yuanToFen('1.1')).toBe(110)
    expect(yuanToFen('7')).toBe(700)
    expect(yuanToFen('1.005')).toBeNull()
    expect(yuanToFen('abc')).toBeNull()
  })
})

describe('helpers', () => {
  it('takes the download name from Content-Disposition', () => {
    expect(filenameFrom(`attachment; filename="audit.xlsx"; filename*=UTF-8''%E5%AE%A1%E8%AE%A1.xlsx`, 'x')).toBe('审计.xlsx')
    expect(filenameFrom('attachment; filename="audit.csv"', 'x')).toBe('audit.csv')
    expect(filenameFrom(null, 'fallback.csv')).toBe('fallback.csv')
  })
  it('groups the permission catalogue in server order', () => {
    expect(
      groupPermissions([
        { code: 'user:read', group: 'system' },
        { code: 'order:read', group: 'orders' },
        { code: 'user:write', group: 'system' },
      ]),
    ).toEqual([
      { group: 'system', codes: ['user:read', 'user:write'] },
      { group: 'orders', codes: ['order:read'] },
    ])
  })
})

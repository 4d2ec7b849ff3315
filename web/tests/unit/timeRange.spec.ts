// The TimeRange shortcuts: ranges reckoned as calendar days in the store's zone, whatever the
// browser's zone, and handed to the picker as Dates that read the same wall-clock time.
import { describe, expect, it } from 'vitest'
import { RANGE_SHORTCUTS, shortcutRange, wallClockDate } from '@/components/timeRange'
import { zonedToUtcIso } from '@/utils/time'

// 2026-03-01 01:30 in Shanghai is still 2026-02-28 in UTC: the store's day decides.
const now = new Date('2026-02-28T17:30:00Z')
const tz = 'Asia/Shanghai'

describe('time range shortcuts', () => {
  it('covers whole days of the store, from the first second to the last', () => {
    expect(shortcutRange('today', tz, now)).toEqual(['2026-03-01 00:00:00', '2026-03-01 23:59:59'])
    expect(shortcutRange('yesterday', tz, now)).toEqual(['2026-02-28 00:00:00', '2026-02-28 23:59:59'])
    expect(shortcutRange('last7Days', tz, now)).toEqual(['2026-02-23 00:00:00', '2026-03-01 23:59:59'])
    expect(shortcutRange('thisMonth', tz, now)).toEqual(['2026-03-01 00:00:00', '2026-03-31 23:59:59'])
    expect(shortcutRange('lastMonth', tz, now)).toEqual(['2026-02-01 00:00:00', '2026-02-28 23:59:59'])
    expect(shortcutRange('today', 'UTC', now)).toEqual(['2026-02-28 00:00:00', '2026-02-28 23:59:59'])
  })

  it('crosses a year and a leap February', () => {
    const january = new Date('2028-01-15T04:00:00Z')
    expect(shortcutRange('lastMonth', tz, january)).toEqual(['2027-12-01 00:00:00', '2027-12-31 23:59:59'])
    const march = new Date('2028-03-10T04:00:00Z')
    expect(shortcutRange('lastMonth', tz, march)).toEqual(['2028-02-01 00:00:00', '2028-02-29 23:59:59'])
  })

  it('offers every shortcut, and the picker reads back the same wall-clock time', () => {
    expect(RANGE_SHORTCUTS).toEqual(['today', 'yesterday', 'last7Days', 'thisMonth', 'lastMonth'])
    const d = wallClockDate('2026-03-01 23:59:59')
    expect([d.getFullYear(), d.getMonth(), d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()]).toEqual([2026, 2, 1, 23, 59, 59])
    // What the filter then sends: the store's midnight in UTC.
    expect(zonedToUtcIso(shortcutRange('today', tz, now)[0], tz)).toBe('2026-02-28T16:00:00.000Z')
  })
})

// Settlement pages' pure logic: default ranges and the next step a statement allows.
import { describe, expect, it } from 'vitest'
import { dayAfter, monthToDate, nextPeriod, previousMonth, statementActions } from '@/views/settlement/logic'

describe('settlement ranges', () => {
  it('starts the month to date on the first', () => {
    expect(monthToDate(new Date(2026, 11, 6))).toEqual(['2026-12-01', '2026-12-06'])
  })

  it('takes the whole previous month, across a year and a leap February', () => {
    expect(previousMonth(new Date(2026, 11, 6))).toEqual(['2026-11-01', '2026-11-30'])
    expect(previousMonth(new Date(2027, 0, 15))).toEqual(['2026-12-01', '2026-12-31'])
    expect(previousMonth(new Date(2028, 2, 1))).toEqual(['2028-02-01', '2028-02-29'])
  })

  it('follows on from the latest statement to the end of that month', () => {
    expect(dayAfter('2026-11-30')).toBe('2026-12-01')
    expect(nextPeriod('2026-11-30', new Date(2026, 11, 6))).toEqual(['2026-12-01', '2026-12-31'])
    expect(nextPeriod('2026-11-15', new Date(2026, 11, 6))).toEqual(['2026-11-16', '2026-11-30'])
    expect(nextPeriod(null, new Date(2026, 11, 6))).toEqual(['2026-11-01', '2026-11-30'])
  })
})

describe('statementActions', () => {
  const all = { write: true, approve: true }
  it('walks draft, reviewed, approved, paid', () => {
    expect(statementActions('draft', all)).toEqual(['review', 'regenerate', 'delete'])
    expect(statementActions('reviewed', all)).toEqual(['approve', 'regenerate', 'delete'])
    expect(statementActions('approved', all)).toEqual(['pay'])
    expect(statementActions('paid', all)).toEqual([])
  })

  it('offers approval and payment only to approvers, preparation only to writers', () => {
    expect(statementActions('reviewed', { write: true, approve: false })).toEqual(['regenerate', 'delete'])
    expect(statementActions('approved', { write: true, approve: false })).toEqual([])
    expect(statementActions('draft', { write: false, approve: true })).toEqual([])
    expect(statementActions('approved', { write: false, approve: true })).toEqual(['pay'])
  })
})

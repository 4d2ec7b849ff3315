import { describe, expect, it } from 'vitest'
import { DEFAULT_PAYMENT_SORT, paymentSortFromTable, paymentTableSort } from '@/views/payments/logic'

describe('payments list sorting', () => {
  it('is newest first until a column is sorted', () => {
    expect(DEFAULT_PAYMENT_SORT).toBe('-created_at')
    expect(paymentSortFromTable(null, null)).toBe('-created_at')
    expect(paymentSortFromTable('created_at', null)).toBe('-created_at')
  })

  it('maps the sortable columns both ways', () => {
    expect(paymentSortFromTable('created_at', 'ascending')).toBe('created_at')
    expect(paymentSortFromTable('amount_fen', 'descending')).toBe('-amount_fen')
    expect(paymentTableSort('-amount_fen')).toEqual({ prop: 'amount_fen', order: 'descending' })
    expect(paymentTableSort('created_at')).toEqual({ prop: 'created_at', order: 'ascending' })
  })

  it('ignores a column the API cannot sort by', () => {
    expect(paymentSortFromTable('status', 'ascending')).toBe('-created_at')
  })
})

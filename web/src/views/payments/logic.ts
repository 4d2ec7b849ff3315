// The payments list's sorting: the table's sort event to the API's `sort` and back.
import type { ListPaymentsData } from '@/api'

export type PaymentSort = NonNullable<NonNullable<ListPaymentsData['query']>['sort']>

/** Newest first, as a cashier or an auditor looks for a payment. */
export const DEFAULT_PAYMENT_SORT: PaymentSort = '-created_at'

const SORTABLE: Record<string, 'created_at' | 'amount_fen'> = {
  created_at: 'created_at',
  amount_fen: 'amount_fen',
}

/** The API sort for a table column's sort state; cleared or unknown: newest first. */
export function paymentSortFromTable(prop: string | null, order: 'ascending' | 'descending' | null): PaymentSort {
  const col = prop ? SORTABLE[prop] : undefined
  if (!col || !order) return DEFAULT_PAYMENT_SORT
  return order === 'descending' ? `-${col}` : col
}

/** The table's default-sort for an API sort. */
export function paymentTableSort(sort: PaymentSort): { prop: string; order: 'ascending' | 'descending' } {
  return sort.startsWith('-') ? { prop: sort.slice(1), order: 'descending' } : { prop: sort, order: 'ascending' }
}

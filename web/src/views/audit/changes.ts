// The audit change set {"field": {"before": x, "after": y}} as rows for a before/after table, in
// words: field names from the locale, money (`*_fen`) in yuan, known codes (statuses, channels,
// reasons) in words, yes/no for flags. A field or value the locale does not name shows as it is.
import { yuanText } from '@/utils/money'
import type { Translator } from './actions'

export interface ChangeRow {
  /** the field's code, kept for the title attribute and for tests */
  code: string
  field: string
  before: string
  after: string
}

function isFen(field: string): boolean {
  return field.endsWith('_fen')
}

export function fieldLabel(field: string, { t, te }: Translator): string {
  const key = `audit.fields.${field}`
  return te(key) ? t(key) : field
}

/** A reason or status code ("manual_payment", "paid") in words, or the text as it is. */
export function codeLabel(value: string, { t, te }: Translator): string {
  if (!/^[a-z][a-z0-9_]*$/.test(value)) return value
  for (const group of ['values', 'reasons', 'verbs']) {
    const key = `audit.${group}.${value}`
    if (te(key)) return t(key)
  }
  return value
}

export function showValue(field: string, value: unknown, tr: Translator): string {
  if (value === null || value === undefined || value === '') return ''
  if (isFen(field) && typeof value === 'number' && Number.isInteger(value)) return yuanText(value)
  if (typeof value === 'boolean') return tr.t(value ? 'audit.yes' : 'audit.no')
  if (typeof value === 'string') return codeLabel(value, tr)
  if (Array.isArray(value)) return value.map((v) => showValue(field, v, tr)).join(tr.t('audit.listSeparator'))
  return JSON.stringify(value)
}

function isPair(v: unknown): v is { before?: unknown; after?: unknown } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && ('before' in v || 'after' in v)
}

export function changeRows(changes: Record<string, unknown> | null | undefined, tr: Translator): ChangeRow[] {
  if (!changes) return []
  return Object.entries(changes).map(([code, v]) => {
    const field = fieldLabel(code, tr)
    return isPair(v)
      ? { code, field, before: showValue(code, v.before, tr), after: showValue(code, v.after, tr) }
      : { code, field, before: '', after: showValue(code, v, tr) }
  })
}

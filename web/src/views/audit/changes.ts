// The audit change set {"field": {"before": x, "after": y}} as rows for a before/after table.

export interface ChangeRow {
  field: string
  before: string
  after: string
}

function show(value: unknown): string {
  if (value === null || value === undefined) return ''
  if (typeof value === 'string') return value
  return JSON.stringify(value)
}

function isPair(v: unknown): v is { before?: unknown; after?: unknown } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && ('before' in v || 'after' in v)
}

export function changeRows(changes: Record<string, unknown> | null | undefined): ChangeRow[] {
  if (!changes) return []
  return Object.entries(changes).map(([field, v]) =>
    isPair(v) ? { field, before: show(v.before), after: show(v.after) } : { field, before: '', after: show(v) },
  )
}

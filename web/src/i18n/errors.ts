// Turns any error into a sentence in the user's language, by the API's stable codes.
import { ApiError } from '@/api/errors'

export interface Translator {
  t: (key: string, named?: Record<string, unknown>) => string
  te: (key: string) => boolean
}

const LOCATIONS = new Set(['body', 'query', 'path', 'header'])

/** The field a detail names, without its location and list indices: "body.role_ids.0" -> "role_ids". */
export function fieldName(path: string | null | undefined): string | null {
  if (!path) return null
  const parts = path.split('.').filter((p) => p !== '' && !LOCATIONS.has(p) && !/^\d+$/.test(p))
  return parts.length ? parts[parts.length - 1]! : null
}

function keyPart(code: string): string {
  return code.replace(/[.:\s-]/g, '_')
}

export function fieldLabel(tr: Translator, path: string | null | undefined): string | null {
  const name = fieldName(path)
  if (name === null) return null
  const key = `fields.${keyPart(name)}`
  return tr.te(key) ? tr.t(key) : name
}

export function reasonText(tr: Translator, reason: string): string {
  const key = `validation.${keyPart(reason)}`
  return tr.te(key) ? tr.t(key) : tr.t('validation.invalid')
}

/** The headline for an error code (falls back to the HTTP status, then a generic line with the code). */
export function errorTitle(tr: Translator, code: string, status = 0): string {
  const key = `errors.${keyPart(code)}`
  if (tr.te(key)) return tr.t(key)
  const byStatus = `errors.status.${status}`
  if (status && tr.te(byStatus)) return tr.t(byStatus)
  return tr.t('errors.unknown', { code })
}

/** An error's code and details as the API gives them (a response body, a failed job). */
export interface CodedDetail {
  field?: string | null
  reason: string
}

/** Per-field problems, e.g. ["Username is already taken"]. */
export function detailLines(tr: Translator, err: ApiError | { details: CodedDetail[] }): string[] {
  const lines: string[] = []
  for (const d of err.details) {
    const label = fieldLabel(tr, d.field)
    const reason = reasonText(tr, d.reason)
    lines.push(label ? tr.t('errors.fieldReason', { field: label, reason }) : reason)
  }
  return [...new Set(lines)]
}

/** A sentence from an error's code and details alone (a failed background job keeps those). */
export function describeCode(tr: Translator, code: string, details: CodedDetail[] = [], status = 0): string {
  const title = errorTitle(tr, code, status)
  const lines = detailLines(tr, { details })
  return lines.length
    ? tr.t('errors.withDetails', { title, details: lines.join(tr.t('errors.separator')) })
    : title
}

/** One message for a toast: the headline, then the field problems. */
export function describeError(tr: Translator, err: unknown): string {
  if (err instanceof ApiError) return describeCode(tr, err.code, err.details, err.status)
  return tr.t('errors.unknown', { code: err instanceof Error ? err.name : 'client_error' })
}

/** Field problems keyed by field name, to show under form items. */
export function fieldErrors(tr: Translator, err: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  if (!(err instanceof ApiError)) return out
  for (const d of err.details) {
    const name = fieldName(d.field)
    if (name && !(name in out)) out[name] = reasonText(tr, d.reason)
  }
  return out
}

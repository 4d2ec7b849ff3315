// Grouping and labels for the permission picker (labels by code through i18n, the code as fallback).
import type { PermissionInfo } from '@/api/models'
import type { Translator } from '@/i18n/errors'

export interface PermissionGroup {
  group: string
  codes: string[]
}

/** Groups in the order the server lists them; codes in catalogue order. */
export function groupPermissions(catalogue: readonly PermissionInfo[]): PermissionGroup[] {
  const out: PermissionGroup[] = []
  const index = new Map<string, PermissionGroup>()
  for (const p of catalogue) {
    let g = index.get(p.group)
    if (!g) {
      g = { group: p.group, codes: [] }
      index.set(p.group, g)
      out.push(g)
    }
    g.codes.push(p.code)
  }
  return out
}

export function permissionLabel(tr: Translator, code: string): string {
  const key = `permissions.codes.${code.replace(/[:.]/g, '_')}`
  return tr.te(key) ? tr.t(key) : code
}

export function groupLabel(tr: Translator, group: string): string {
  const key = `permissions.groups.${group}`
  return tr.te(key) ? tr.t(key) : group
}

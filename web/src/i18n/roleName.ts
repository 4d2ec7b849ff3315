// Built-in roles are named in the user's language; custom roles keep the name their creator gave.
import type { Translator } from './errors'

export function roleName(tr: Translator, role: { code: string; name: string }): string {
  const key = `roles.builtinNames.${role.code}`
  return tr.te(key) ? tr.t(key) : role.name
}

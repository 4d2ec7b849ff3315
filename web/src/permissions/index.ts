// `can()` for scripts and the `v-perm` directive for templates: hide what the user may not use.
import type { Directive } from 'vue'
import { useAuthStore } from '@/stores/auth'
import { allows, type PermRequirement } from './codes'

export { Perm, allows, type PermCode, type PermRequirement } from './codes'

export function can(need: PermRequirement | undefined): boolean {
  return allows(useAuthStore().permissions, need)
}

/** `v-perm="Perm.USER_WRITE"` or `v-perm="[Perm.A, Perm.B]"` (any of): removes the element otherwise. */
export const vPerm: Directive<HTMLElement, PermRequirement> = {
  mounted(el, binding) {
    if (!can(binding.value)) el.parentNode?.removeChild(el)
  },
}

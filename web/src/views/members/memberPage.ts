// Pure helpers of the member's own page (MemberPageView.vue), unit-tested.
import type { PortalOverview } from '@/api'

/** Where this browser keeps the member's session token. */
export const SESSION_KEY = 'selfmart.memberSession'

/** The 18-digit member code in groups of 4-4-4-6 for reading aloud and typing. */
export function codeGroups(code: string): string[] {
  return code.length === 18 ? [code.slice(0, 4), code.slice(4, 8), code.slice(8, 12), code.slice(12)] : [code]
}

/** Whole seconds until `endsAt` (never below 0). */
export function secondsLeft(endsAt: string, nowMs: number): number {
  return Math.max(0, Math.ceil((new Date(endsAt).getTime() - nowMs) / 1000))
}

export interface Needs {
  /** spend | orders | both (all thresholds) | either (any one) */
  mode: 'spend' | 'orders' | 'both' | 'either'
  spendFen: number
  orders: number
  reached: boolean
}

/** What the next tier still needs, in words the page can choose from. */
export function nextTierNeeds(me: PortalOverview): Needs | null {
  const next = me.next_tier
  if (!next) return null
  const spendFen = next.spend_needed_fen ?? 0
  const orders = next.orders_needed ?? 0
  const hasSpend = next.spend_needed_fen !== null && next.spend_needed_fen !== undefined
  const hasOrders = next.orders_needed !== null && next.orders_needed !== undefined
  let mode: Needs['mode'] = hasSpend ? 'spend' : 'orders'
  if (hasSpend && hasOrders) mode = next.match === 'any' ? 'either' : 'both'
  const reached =
    mode === 'either' ? spendFen === 0 || orders === 0 : (!hasSpend || spendFen === 0) && (!hasOrders || orders === 0)
  return { mode, spendFen, orders, reached }
}

// The member page's helpers: the code's groups, the countdown, what the next tier needs; and
// that its API calls never carry (or try to refresh) the console's token.
import { describe, expect, it, vi } from 'vitest'
import type { PortalOverview } from '@/api'
import { createAuthFetch, type TokenSource } from '@/api/authFetch'
import { codeGroups, nextTierNeeds, secondsLeft } from '@/views/members/memberPage'

function overview(next: Partial<NonNullable<PortalOverview['next_tier']>> | null): PortalOverview {
  return {
    member_no: 'M0000000001',
    name: '张*',
    mobile: '139****0001',
    points_balance: 0,
    usable_points: 0,
    redeem_points_per_yuan: 100,
    tier: null,
    window_days: 365,
    spend_fen: 0,
    order_count: 0,
    next_tier: next
      ? {
          name: 'Gold',
          min_spend_fen: null,
          min_orders: null,
          match: 'all',
          spend_needed_fen: null,
          orders_needed: null,
          discount_bp: 0,
          ...next,
        }
      : null,
  }
}

describe('member page', () => {
  it('groups an 18-digit code 4-4-4-6 and leaves anything else whole', () => {
    expect(codeGroups('880000001234123456')).toEqual(['8800', '0000', '1234', '123456'])
    expect(codeGroups('123')).toEqual(['123'])
  })

  it('counts whole seconds down to the end of the step, never below zero', () => {
    const ends = '2026-12-06T05:00:30Z'
    expect(secondsLeft(ends, Date.parse('2026-12-06T05:00:00Z'))).toBe(30)
    expect(secondsLeft(ends, Date.parse('2026-12-06T05:00:29.5Z'))).toBe(1)
    expect(secondsLeft(ends, Date.parse('2026-12-06T05:01:00Z'))).toBe(0)
  })

  it('says what the next tier needs by its thresholds and its match', () => {
    expect(nextTierNeeds(overview(null))).toBeNull()
    expect(nextTierNeeds(overview({ spend_needed_fen: 5000 }))).toMatchObject({ mode: 'spend', spendFen: 5000, reached: false })
    expect(nextTierNeeds(overview({ orders_needed: 2 }))).toMatchObject({ mode: 'orders', orders: 2 })
    expect(nextTierNeeds(overview({ spend_needed_fen: 100, orders_needed: 0 }))).toMatchObject({ mode: 'both', reached: false })
    expect(nextTierNeeds(overview({ spend_needed_fen: 100, orders_needed: 0, match: 'any' }))).toMatchObject({ mode: 'either', reached: true })
    expect(nextTierNeeds(overview({ spend_needed_fen: 0, orders_needed: 0 }))).toMatchObject({ reached: true })
  })

  it('sends member-page requests without the console token and does not refresh on their 401', async () => {
    const seen: Array<string | null> = []
    const fetchFn = vi.fn(async (input: RequestInfo | URL) => {
      seen.push((input as Request).headers.get('Authorization'))
      return new Response('{"error":"member_session_invalid"}', { status: 401 })
    }) as unknown as typeof fetch
    const refresh = vi.fn(async () => true)
    const src: TokenSource = { accessToken: () => 'console', canRefresh: () => true, refresh, onSessionLost: vi.fn() }
    const res = await createAuthFetch(src, fetchFn)('http://local/api/v1/public/members/me')
    expect(res.status).toBe(401)
    expect(seen).toEqual([null])
    expect(refresh).not.toHaveBeenCalled()
  })
})

import { describe, expect, it } from 'vitest'
import { couponValue, percent, percentToBp } from '@/views/members/couponText'

describe('coupon terms', () => {
  it('reads an amount and a capped percentage with the minimum spend', () => {
    expect(couponValue({ kind: 'amount', amount_off_fen: 500, percent_off_bp: 0, min_spend_fen: 0 })).toBe('-¥5.00')
    expect(couponValue({ kind: 'percent', amount_off_fen: 0, percent_off_bp: 1500, max_off_fen: 2000, min_spend_fen: 5000 })).toBe(
      '-15% (≤¥20.00) · ≥¥50.00',
    )
  })
  it('turns basis points into percent text and back without floats', () => {
    expect([percent(1500), percent(1250), percent(1), percent(10000)]).toEqual(['15', '12.5', '0.01', '100'])
    expect([percentToBp('15'), percentToBp('12.5'), percentToBp('0.01'), percentToBp('100')]).toEqual([1500, 1250, 1, 10000])
    expect([percentToBp('100.5'), percentToBp('1.234'), percentToBp('x'), percentToBp('')]).toEqual([null, null, null, null])
  })
})

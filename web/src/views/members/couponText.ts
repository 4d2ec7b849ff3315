// How a coupon's value reads: "¥5.00 off" or "15% off, at most ¥20.00", with its minimum spend.
import { fenToYuan } from '@/utils/money'

export interface CouponTerms {
  kind: string
  amount_off_fen: number
  percent_off_bp: number
  max_off_fen?: number | null
  min_spend_fen: number
}

/** The terms in a language-neutral shape: "-¥5.00", "-15% (≤¥20.00)", "≥¥50.00". */
export function couponValue(c: CouponTerms): string {
  const off = c.kind === 'amount' ? `-¥${fenToYuan(c.amount_off_fen)}` : `-${percent(c.percent_off_bp)}%`
  const cap = c.kind === 'percent' && c.max_off_fen != null ? ` (≤¥${fenToYuan(c.max_off_fen)})` : ''
  const min = c.min_spend_fen > 0 ? ` · ≥¥${fenToYuan(c.min_spend_fen)}` : ''
  return `${off}${cap}${min}`
}

/** 1500 basis points -> "15"; 1250 -> "12.5"; 1 -> "0.01". */
export function percent(bp: number): string {
  const whole = Math.floor(bp / 100)
  const rest = bp % 100
  if (rest === 0) return String(whole)
  return `${whole}.${String(rest).padStart(2, '0').replace(/0$/, '')}`
}

/** "15" -> 1500, "12.5" -> 1250; anything else (3 decimals, above 100) -> null. */
export function percentToBp(text: string): number | null {
  const m = /^\s*(\d{1,3})(?:\.(\d{1,2}))?\s*$/.exec(text)
  if (!m) return null
  const bp = Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'))
  return bp > 10000 ? null : bp
}

// Money is integer fen; the console shows and reads yuan with exactly two decimals, never via floats.

/** 12345 -> "123.45"; -5 -> "-0.05". */
export function fenToYuan(fen: number): string {
  if (!Number.isInteger(fen)) throw new Error(`not whole fen: ${fen}`)
  const sign = fen < 0 ? '-' : ''
  const abs = Math.abs(fen)
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`
}

/** "123.45" -> 12345; "7" -> 700; "0.5" -> 50; anything else (3 decimals, letters) -> null. */
export function yuanToFen(text: string): number | null {
  const m = /^\s*(-)?(\d+)(?:\.(\d{1,2}))?\s*$/.exec(text)
  if (!m) return null
  const fen = Number(m[2]) * 100 + Number((m[3] ?? '').padEnd(2, '0'))
  if (!Number.isSafeInteger(fen)) return null
  return m[1] && fen !== 0 ? -fen : fen
}

/** Money as the console shows it: 12345 -> "¥123.45"; -3 -> "-¥0.03" (the sign before the ¥). */
export function yuanText(fen: number): string {
  return fen < 0 ? `-¥${fenToYuan(-fen)}` : `¥${fenToYuan(fen)}`
}

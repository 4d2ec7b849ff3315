import { describe, expect, it } from 'vitest'
import { formatBytes } from '@/views/monitoring/bytes'

describe('formatBytes', () => {
  it('picks the largest unit under 1024', () => {
    expect(formatBytes(0)).toBe('0 B')
    expect(formatBytes(1023)).toBe('1023 B')
    expect(formatBytes(1536)).toBe('1.5 KiB')
    expect(formatBytes(5 * 1024 ** 3)).toBe('5.0 GiB')
  })
  it('says nothing for an unknown size', () => {
    expect(formatBytes(null)).toBe('—')
  })
})

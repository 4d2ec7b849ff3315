// The console's permission codes are exactly the backend's Perm StrEnum.
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Perm, allows } from '@/permissions/codes'

describe('permission codes', () => {
  it('match selfmart.iam.permissions.Perm', () => {
    const py = readFileSync(resolve(__dirname, '../../../src/selfmart/iam/permissions.py'), 'utf8')
    const body = py.split('class Perm(StrEnum):')[1]!.split(/\n(?=\S)/)[0]!
    const backend = Object.fromEntries([...body.matchAll(/^\s+([A-Z_]+)\s*=\s*"([^"]+)"/gm)].map((m) => [m[1], m[2]]))
    expect(Object.keys(backend).length).toBeGreaterThan(10)
    expect(Perm).toEqual(backend)
  })

  it('allows by one code or any of several', () => {
    const granted = new Set(['store:read'])
    expect(allows(granted, undefined)).toBe(true)
    expect(allows(granted, Perm.STORE_READ)).toBe(true)
    expect(allows(granted, Perm.STORE_WRITE)).toBe(false)
    expect(allows(granted, [Perm.USER_READ, Perm.STORE_READ])).toBe(true)
    expect(allows(granted, [Perm.USER_READ])).toBe(false)
  })
})

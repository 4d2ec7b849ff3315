// Locale parity (a key in one language only fails) and every literal key the code uses exists.
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import zhCN from '@/i18n/locales/zh-CN'
import en from '@/i18n/locales/en'

type Tree = { readonly [k: string]: string | Tree }

export function flatKeys(tree: Tree, prefix = ''): string[] {
  return Object.entries(tree).flatMap(([k, v]) => (typeof v === 'string' ? [`${prefix}${k}`] : flatKeys(v, `${prefix}${k}.`)))
}

function leafValues(tree: Tree): string[] {
  return Object.values(tree).flatMap((v) => (typeof v === 'string' ? [v] : leafValues(v)))
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) return name === 'generated' ? [] : sourceFiles(p)
    return /\.(ts|vue)$/.test(name) ? [p] : []
  })
}

function has(tree: Tree, key: string): boolean {
  let node: string | Tree | undefined = tree
  for (const part of key.split('.')) {
    if (typeof node !== 'object' || node === null) return false
    node = node[part]
  }
  return node !== undefined
}

describe('locale parity', () => {
  const zhKeys = new Set(flatKeys(zhCN as unknown as Tree))
  const enKeys = new Set(flatKeys(en as unknown as Tree))

  it('has every zh-CN key in en', () => {
    expect([...zhKeys].filter((k) => !enKeys.has(k))).toEqual([])
  })

  it('has every en key in zh-CN', () => {
    expect([...enKeys].filter((k) => !zhKeys.has(k))).toEqual([])
  })

  it('detects a key present in one locale only', () => {
    const one = { a: { b: 'x', c: 'y' } }
    const other = { a: { b: 'x' } }
    const missing = flatKeys(one).filter((k) => !flatKeys(other).includes(k))
    expect(missing).toEqual(['a.c'])
  })

  it('uses the same {placeholders} in both languages', () => {
    const names = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort()
    const diff: string[] = []
    for (const key of zhKeys) {
      const get = (tree: Tree) => key.split('.').reduce<string | Tree>((n, p) => (n as Tree)[p]!, tree) as string
      if (JSON.stringify(names(get(zhCN as unknown as Tree))) !== JSON.stringify(names(get(en as unknown as Tree)))) diff.push(key)
    }
    expect(diff).toEqual([])
  })

  it('has no text that vue-i18n would misread (linked-message @ or plural |)', () => {
    const bad = [...leafValues(zhCN as unknown as Tree), ...leafValues(en as unknown as Tree)].filter((v) => /[@|]/.test(v))
    expect(bad).toEqual([])
  })
})

describe('keys used in code', () => {
  it('exist in zh-CN', () => {
    let used = 0
    const root = resolve(__dirname, '../../src')
    const missing: string[] = []
    for (const file of sourceFiles(root)) {
      const text = readFileSync(file, 'utf8')
      for (const m of text.matchAll(/\bt\(\s*'([a-zA-Z0-9_.-]+)'/g)) {
        const key = m[1]!
        used++
        if (!has(zhCN as unknown as Tree, key)) missing.push(`${file.slice(root.length + 1)}: ${key}`)
      }
      for (const m of text.matchAll(/(?:empty-key|hint-key|confirmKey:)\s*=?\s*["']([a-zA-Z0-9_.]+)["']/g)) {
        if (!has(zhCN as unknown as Tree, m[1]!)) missing.push(`${file.slice(root.length + 1)}: ${m[1]}`)
      }
    }
    expect(used).toBeGreaterThan(100)
    expect(missing).toEqual([])
  })
})

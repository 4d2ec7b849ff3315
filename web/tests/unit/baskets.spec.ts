// The frequently-bought-together page's helpers: percentages, run labels, graph sizing and the
// named values of a suggestion's sentence.
import { describe, expect, it } from 'vitest'
import type { BasketGraph, Suggestion } from '@/api'
import { fromPercent, graphOption, lift, nodeSize, percent, runLabel, suggestionWords } from '@/views/analytics/basketLogic'

describe('baskets', () => {
  it('writes fractions as percentages with at most two decimals', () => {
    expect(percent(0.125)).toBe('12.5%')
    expect(percent(1)).toBe('100%')
    expect(percent(0.001)).toBe('0.1%')
    expect(percent(0.00005)).toBe('0.01%')
    expect(percent(0.33333)).toBe('33.33%')
    expect(percent(null)).toBe('—')
    expect(lift(2.3456)).toBe('2.35')
    expect(fromPercent('0.1')).toBeCloseTo(0.001, 12)
    expect(fromPercent(25)).toBe(0.25)
  })

  it('labels a run by its window and thresholds', () => {
    expect(runLabel({ first_day: '2025-04-01', last_day: '2025-04-30', min_support: 0.001, min_confidence: 0.1, max_len: 3 })).toBe(
      '2025-04-01 – 2025-04-30 · ≥0.1% · ≥10% · 3',
    )
  })

  it('sizes nodes by support and draws one link per pair', () => {
    expect(nodeSize(0.1, 0.1, 0.5)).toBe(12)
    expect(nodeSize(0.5, 0.1, 0.5)).toBe(48)
    expect(nodeSize(0.2, 0.2, 0.2)).toBe(30)
    const graph: BasketGraph = {
      nodes: [
        { product_id: 1, name: '可乐', spec: '', count: 50, support: 0.5 },
        { product_id: 2, name: '薯片', spec: '', count: 10, support: 0.1 },
      ],
      edges: [{ source: 1, target: 2, count: 8, support: 0.08, lift: 1.6, confidence: 0.16, confidence_back: 0.8 }],
    }
    const option = graphOption(graph, { confidence: 'C', lift: 'L', baskets: 'B' }) as {
      series: Array<{ data: Array<{ id: string; symbolSize: number }>; links: Array<{ source: string; target: string; tip: string }> }>
    }
    const [series] = option.series
    expect(series.data.map((n) => [n.id, n.symbolSize])).toEqual([
      ['1', 48],
      ['2', 12],
    ])
    expect(series.links).toHaveLength(1)
    expect(series.links[0]).toMatchObject({ source: '1', target: '2' })
    expect(series.links[0].tip).toContain('可乐 → 薯片')
    expect(series.links[0].tip).toContain('C: 16%')
  })

  it('gives a suggestion its words', () => {
    const s: Suggestion = {
      kind: 'bundle',
      products: [
        { product_id: 1, name: '可乐', spec: '' },
        { product_id: 2, name: '薯片', spec: '' },
        { product_id: 3, name: '瓜子', spec: '200g' },
      ],
      count: 42,
      support: 0.042,
      confidence: 0.5,
      lift: 3.14159,
    }
    expect(suggestionWords(s, '、')).toEqual({
      first: '可乐',
      others: '薯片、瓜子 200g',
      all: '可乐、薯片、瓜子 200g',
      count: 42,
      confidence: '50%',
      lift: '3.14',
    })
  })
})

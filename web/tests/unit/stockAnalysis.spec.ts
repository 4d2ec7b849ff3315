// The stock analysis page's helpers: basis points shown as percentages, and the chart's bars.
import { describe, expect, it } from 'vitest'
import type { StockAnalysis, StoreStock } from '@/api'
import { bpPercent, stockChart } from '@/views/analytics/stockLogic'

function store(id: number, name: string, bp: number | null, days: string | null): StoreStock {
  return {
    store_id: id,
    name,
    products: 1,
    opening_qty: 10,
    received_qty: 5,
    sold_qty: 4,
    shrinkage_qty: 0,
    shrinkage_fen: 0,
    closing_qty: 11,
    stock_value_fen: 2200,
    sell_through_bp: bp,
    turnover_days: days,
  }
}

describe('bpPercent', () => {
  it('shows basis points with two decimals', () => {
    expect(bpPercent(2667)).toBe('26.67%')
    expect(bpPercent(10000)).toBe('100.00%')
    expect(bpPercent(5)).toBe('0.05%')
    expect(bpPercent(0)).toBe('0.00%')
  })
  it('shows a dash when undefined', () => {
    expect(bpPercent(null)).toBe('—')
    expect(bpPercent(undefined)).toBe('—')
  })
})

describe('stockChart', () => {
  it('gives one bar pair per store, gaps where nothing sold', () => {
    const a = { by_store: [store(1, 'A', 2667, '26.0'), store(2, 'B', 0, null)] } as StockAnalysis
    expect(stockChart(a)).toEqual({ labels: ['A', 'B'], turnover: [26, null], sellThrough: [26.67, 0] })
  })
  it('is empty before anything loaded', () => {
    expect(stockChart(null)).toEqual({ labels: [], turnover: [], sellThrough: [] })
  })
})

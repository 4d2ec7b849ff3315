// Pure helpers of the frequently-bought-together page: percentages, a run's label, the graph's
// ECharts option and the words of a suggestion.
import type { BasketGraph, BasketRunRead, Suggestion } from '@/api'

/** A fraction (0..1) as a percentage with up to two decimals ("12.5%"). */
export function percent(fraction: number | null | undefined): string {
  if (fraction === null || fraction === undefined) return '—'
  const hundredths = Math.round(fraction * 10_000)
  const whole = Math.floor(hundredths / 100)
  const rest = hundredths % 100
  if (rest === 0) return `${whole}%`
  return `${whole}.${String(rest).padStart(2, '0').replace(/0$/, '')}%`
}

/** A product as people tell it apart on the shelf: its name and its spec ("可口可乐 330ml"). */
export function productName(p: { name: string; spec?: string | null }): string {
  return p.spec ? `${p.name} ${p.spec}` : p.name
}

/** Lift with two decimals ("2.35"). */
export function lift(value: number): string {
  return value.toFixed(2)
}

/** A percentage typed in a form ("0.1" for 0.1%) as the fraction the API takes. */
export function fromPercent(text: string | number): number {
  return Number(text) / 100
}

/** "2025-04-01 – 2025-04-30" and the thresholds, to pick a run from a list. */
export function runLabel(run: Pick<BasketRunRead, 'first_day' | 'last_day' | 'min_support' | 'min_confidence' | 'max_len'>): string {
  return `${run.first_day} – ${run.last_day} · ≥${percent(run.min_support)} · ≥${percent(run.min_confidence)} · ${run.max_len}`
}

/** Node size from its support: 12 px for the rarest drawn to 48 px for the most frequent. */
export function nodeSize(support: number, min: number, max: number): number {
  if (max <= min) return 30
  return Math.round(12 + ((support - min) / (max - min)) * 36)
}

export interface GraphLabels {
  confidence: string
  lift: string
  baskets: string
}

/** The ECharts option of a force-directed graph of products (edges: the strongest pairs). */
export function graphOption(graph: BasketGraph, labels: GraphLabels): Record<string, unknown> {
  const supports = graph.nodes.map((n) => n.support)
  const min = Math.min(...supports)
  const max = Math.max(...supports)
  const maxLift = Math.max(1, ...graph.edges.map((e) => e.lift))
  const names = new Map(graph.nodes.map((n) => [n.product_id, productName(n)]))
  return {
    tooltip: {
      formatter: (p: { dataType: string; data: { tip?: string } }) => p.data.tip ?? '',
    },
    series: [
      {
        type: 'graph',
        layout: 'force',
        roam: true,
        draggable: true,
        force: { repulsion: 220, edgeLength: [60, 180] },
        label: { show: true, position: 'right' },
        data: graph.nodes.map((n) => ({
          id: String(n.product_id),
          name: productName(n),
          symbolSize: nodeSize(n.support, min, max),
          value: n.count,
          tip: `${productName(n)}<br/>${labels.baskets}: ${n.count} (${percent(n.support)})`,
        })),
        links: graph.edges.map((e) => ({
          source: String(e.source),
          target: String(e.target),
          lineStyle: { width: 1 + (4 * e.lift) / maxLift, opacity: 0.7 },
          tip:
            `${names.get(e.source) ?? e.source} → ${names.get(e.target) ?? e.target}<br/>` +
            `${labels.confidence}: ${percent(e.confidence)} · ${labels.lift}: ${lift(e.lift)}<br/>` +
            `${labels.baskets}: ${e.count}`,
        })),
      },
    ],
  }
}

/** The named values a suggestion's sentence needs. */
export function suggestionWords(s: Suggestion, separator: string): Record<string, string | number> {
  const names = s.products.map(productName)
  return {
    first: names[0] ?? '',
    others: names.slice(1).join(separator),
    all: names.join(separator),
    count: s.count,
    confidence: percent(s.confidence),
    lift: lift(s.lift),
  }
}

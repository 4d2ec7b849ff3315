// Product look-ups for pickers (the catalogue's list endpoint), kept in one place.
import { reactive } from 'vue'
import * as api from '@/api'

export interface ProductOption {
  id: number
  name: string
  spec: string
  barcode: string | null
}

export async function searchProducts(q: string, size = 20): Promise<ProductOption[]> {
  const { data } = await api.listProducts({ query: { q: q || undefined, page: 1, size } })
  return data.items.map((p) => ({
    id: p.id,
    name: p.name,
    spec: p.spec ?? '',
    barcode: p.barcodes?.[0]?.code ?? null,
  }))
}

// Names of products some lists only give by id (alerts, discrepancies), fetched once each.
const names = reactive(new Map<number, string>())
const pending = new Set<number>()

export function productName(id: number): string {
  return names.get(id) ?? `#${id}`
}

export async function loadProductNames(ids: Iterable<number>): Promise<void> {
  const wanted = [...new Set(ids)].filter((id) => !names.has(id) && !pending.has(id))
  await Promise.all(
    wanted.map(async (id) => {
      pending.add(id)
      try {
        const { data } = await api.getProduct({ path: { product_id: id } })
        names.set(id, data.spec ? `${data.name} ${data.spec}` : data.name)
      } catch {
        // a product out of reach keeps its id
      } finally {
        pending.delete(id)
      }
    }),
  )
}

// Product look-ups for pickers (the catalogue's list endpoint), kept in one place.
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

// A paginated, filterable list backed by an API call returning Page[T].
import { computed, reactive, ref, shallowRef, type UnwrapRef } from 'vue'
import { showError } from '@/utils/feedback'

export interface PageResult<T> {
  items: T[]
  total: number
  /** more rows than `total` match (a log counts up to a cap) */
  total_capped?: boolean
}

export interface PageArgs {
  page: number
  size: number
}

function clean<Q extends object>(filters: Q): Partial<Q> {
  const out: Partial<Q> = {}
  for (const [k, v] of Object.entries(filters)) {
    if (v !== '' && v !== null && v !== undefined) (out as Record<string, unknown>)[k] = v
  }
  return out
}

export function usePagedList<Q extends object, T>(
  fetchPage: (filters: Partial<UnwrapRef<Q>>, args: PageArgs) => Promise<PageResult<T>>,
  initialFilters: () => Q,
  pageSize = 20,
) {
  const filters = reactive(initialFilters())
  const page = ref(1)
  const size = ref(pageSize)
  const items = shallowRef<T[]>([])
  const total = ref(0)
  const totalCapped = ref(false)
  const loading = ref(false)
  const loaded = ref(false)
  let seq = 0

  const filtered = computed(() => Object.keys(clean(filters as object)).length > 0)

  async function load(): Promise<void> {
    const mine = ++seq
    loading.value = true
    try {
      const result = await fetchPage(clean(filters as UnwrapRef<Q> & object) as Partial<UnwrapRef<Q>>, {
        page: page.value,
        size: size.value,
      })
      if (mine !== seq) return // a newer search has replaced this one
      items.value = result.items
      total.value = result.total
      totalCapped.value = result.total_capped ?? false
      loaded.value = true
    } catch (err) {
      if (mine === seq) showError(err)
    } finally {
      if (mine === seq) loading.value = false
    }
  }

  function search(): Promise<void> {
    page.value = 1
    return load()
  }

  function reset(): Promise<void> {
    const fresh = initialFilters() as Record<string, unknown>
    for (const key of Object.keys(filters)) {
      ;(filters as Record<string, unknown>)[key] = fresh[key]
    }
    return search()
  }

  function onPage(p: number): void {
    page.value = p
    void load()
  }

  function onSize(s: number): void {
    size.value = s
    page.value = 1
    void load()
  }

  return { filters, page, size, items, total, totalCapped, loading, loaded, filtered, load, search, reset, onPage, onSize }
}

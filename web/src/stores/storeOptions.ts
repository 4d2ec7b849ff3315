// The stores the user may see, for filters, pickers and each store's time zone.
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import * as api from '@/api'
import type { StoreRead } from '@/api/models'
import { can, Perm } from '@/permissions'
import { DEFAULT_TZ } from '@/utils/time'

export const useStoreOptions = defineStore('storeOptions', () => {
  const stores = ref<StoreRead[]>([])
  const loaded = ref(false)
  let pending: Promise<void> | null = null

  const byId = computed(() => new Map(stores.value.map((s) => [s.id, s])))

  async function fetchAll(): Promise<void> {
    const all: StoreRead[] = []
    for (let page = 1; ; page++) {
      const { data } = await api.listStores({ query: { page, size: 200 } })
      all.push(...data.items)
      if (all.length >= data.total || data.items.length === 0) break
    }
    stores.value = all
    loaded.value = true
  }

  /** Loads once (when the user may read stores); `force` reloads after a change. */
  function ensure(force = false): Promise<void> {
    if (!can(Perm.STORE_READ)) return Promise.resolve()
    if (loaded.value && !force) return Promise.resolve()
    if (pending === null || force) {
      pending = fetchAll()
        .catch(() => undefined)
        .finally(() => {
          pending = null
        })
    }
    return pending
  }

  function name(id: number | null | undefined): string {
    if (id === null || id === undefined) return ''
    return byId.value.get(id)?.name ?? `#${id}`
  }

  function timezone(id: number | null | undefined): string {
    if (id === null || id === undefined) return DEFAULT_TZ
    return byId.value.get(id)?.timezone ?? DEFAULT_TZ
  }

  return { stores, loaded, byId, ensure, name, timezone }
})

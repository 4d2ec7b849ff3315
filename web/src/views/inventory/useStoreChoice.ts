// The store a page works on: from the address (?store_id=), else the first store the user sees.
import { ref, watch } from 'vue'
import { useRoute, useRouter } from 'vue-router'
import { useStoreOptions } from '@/stores/storeOptions'

export function useStoreChoice(onReady: (storeId: number) => void) {
  const route = useRoute()
  const router = useRouter()
  const storeOptions = useStoreOptions()
  const fromQuery = Number(route.query.store_id)
  const storeId = ref<number | null>(Number.isSafeInteger(fromQuery) && fromQuery > 0 ? fromQuery : null)

  void storeOptions.ensure().then(() => {
    if (storeId.value === null && storeOptions.stores.length) storeId.value = storeOptions.stores[0]!.id
    if (storeId.value !== null) onReady(storeId.value)
  })

  watch(storeId, (id, old) => {
    if (id === null || old === null || id === old) return
    void router.replace({ query: { ...route.query, store_id: String(id) } })
    onReady(id)
  })

  return { storeId, storeOptions }
}

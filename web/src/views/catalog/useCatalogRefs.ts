// The category tree and tags, shared by the catalog pages (loaded once, reloaded after edits).
import { computed, ref } from 'vue'
import * as api from '@/api'
import { categoryOptions, categoryPaths } from './logic'
import type { CategoryNode, TagRead } from './types'

const tree = ref<CategoryNode[]>([])
const tags = ref<TagRead[]>([])
let loading: Promise<void> | null = null
let loaded = false

async function fetchAll(): Promise<void> {
  const [c, t] = await Promise.all([api.categoryTree(), api.listTags()])
  tree.value = c.data
  tags.value = t.data
  loaded = true
}

export function useCatalogRefs() {
  function ensure(force = false): Promise<void> {
    if (loaded && !force) return Promise.resolve()
    if (loading === null || force) {
      loading = fetchAll().finally(() => {
        loading = null
      })
    }
    return loading
  }
  const options = computed(() => categoryOptions(tree.value))
  const paths = computed(() => categoryPaths(tree.value))
  const tagById = computed(() => new Map(tags.value.map((t) => [t.id, t])))
  return {
    tree,
    tags,
    options,
    paths,
    tagById,
    ensure,
    categoryName: (id: number | null | undefined) => (id == null ? '' : (paths.value.get(id) ?? `#${id}`)),
    tagName: (id: number) => tagById.value.get(id)?.name ?? `#${id}`,
  }
}

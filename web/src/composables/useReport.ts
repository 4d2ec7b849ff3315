// A report page's data: one query built from the page's filters, loaded into the table and
// exported as the server's xlsx under the filename the server gives.
import { ref, shallowRef, type Ref, type ShallowRef } from 'vue'
import { showError } from '@/utils/feedback'
import { filenameFrom, saveBlob } from '@/utils/download'

export interface ReportSource<Q, T> {
  /** the query of the page's current filters */
  query: () => Q
  /** the report for a query */
  fetch: (query: Q) => Promise<{ data: T }>
  /** the report's xlsx for a query (the API call with `parseAs: 'blob'`) */
  download: (query: Q) => Promise<{ data: unknown; response: Response }>
  /** the filename when the server names none */
  filename: string
}

export interface Report<T> {
  data: ShallowRef<T | null>
  loaded: Ref<boolean>
  loading: Ref<boolean>
  exporting: Ref<boolean>
  load: () => Promise<void>
  exportXlsx: () => Promise<void>
}

export function useReport<Q, T>(source: ReportSource<Q, T>): Report<T> {
  const data = shallowRef<T | null>(null)
  const loaded = ref(false)
  const loading = ref(false)
  const exporting = ref(false)
  let seq = 0

  async function load(): Promise<void> {
    const mine = ++seq
    loading.value = true
    try {
      const result = (await source.fetch(source.query())).data
      if (mine !== seq) return // a newer search has replaced this one
      data.value = result
      loaded.value = true
    } catch (err) {
      if (mine === seq) showError(err)
    } finally {
      if (mine === seq) loading.value = false
    }
  }

  async function exportXlsx(): Promise<void> {
    exporting.value = true
    try {
      const { data: blob, response } = await source.download(source.query())
      saveBlob(blob as Blob, filenameFrom(response.headers.get('content-disposition'), source.filename))
    } catch (err) {
      showError(err)
    } finally {
      exporting.value = false
    }
  }

  return { data, loaded, loading, exporting, load, exportXlsx }
}

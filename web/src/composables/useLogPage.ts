// A searchable log's page (the audit log, the business log): the paged list and its filters,
// the row opened beside it, and the export of every row the filters match.
import { ref, type Ref, type UnwrapRef } from 'vue'
import { showError } from '@/utils/feedback'
import { filenameFrom, saveBlob } from '@/utils/download'
import { usePagedList, type PageArgs, type PageResult } from './usePagedList'

export type ExportFormat = 'xlsx' | 'csv'

/** The filters as the export route takes them: empty ones left out, and the file's format. */
export type ExportQuery = Record<string, unknown> & { format: ExportFormat }

/** What a generated client call with `parseAs: 'blob'` answers. */
export interface ExportAnswer {
  data: unknown
  response: Response
}

export function useLogPage<Q extends object, T>(options: {
  fetchPage: (filters: Partial<UnwrapRef<Q>>, args: PageArgs) => Promise<PageResult<T>>
  initialFilters: () => Q
  exportFile: (query: ExportQuery) => Promise<ExportAnswer>
  /** the file's name when the answer names none, without the extension */
  fallbackName: string
}) {
  const list = usePagedList(options.fetchPage, options.initialFilters)
  void list.load()
  const detail = ref(null) as Ref<T | null>
  const exporting = ref(false)

  async function exportAs(format: ExportFormat): Promise<void> {
    exporting.value = true
    try {
      const clean = Object.fromEntries(Object.entries(list.filters).filter(([, v]) => v !== '' && v !== null))
      const { data, response } = await options.exportFile({ ...clean, format })
      const blob = data instanceof Blob ? data : new Blob([JSON.stringify(data)])
      saveBlob(blob, filenameFrom(response.headers.get('content-disposition'), `${options.fallbackName}.${format}`))
    } catch (err) {
      showError(err)
    } finally {
      exporting.value = false
    }
  }

  return { list, detail, exporting, exportAs }
}

// Saves what an export endpoint answers (xlsx), with the server's file name.
import { ref } from 'vue'
import { filenameFrom, saveBlob } from '@/utils/download'
import { showError } from '@/utils/feedback'

export function useExport() {
  const exporting = ref(false)
  async function run(call: () => Promise<{ data: unknown; response: Response }>, fallback: string): Promise<void> {
    exporting.value = true
    try {
      const { data, response } = await call()
      const blob = data instanceof Blob ? data : new Blob([JSON.stringify(data)])
      saveBlob(blob, filenameFrom(response.headers.get('content-disposition'), fallback))
    } catch (err) {
      showError(err)
    } finally {
      exporting.value = false
    }
  }
  return { exporting, run }
}

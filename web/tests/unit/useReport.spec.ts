// useReport: a report page's load (the newest search wins) and its xlsx export under the
// filename the server gives.
import { describe, expect, it, vi } from 'vitest'
import { useReport } from '@/composables/useReport'

function deferred<T>() {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => (resolve = r))
  return { promise, resolve }
}

describe('useReport', () => {
  it('loads the report of the current query; a slower older answer does not overwrite a newer one', async () => {
    let q = 'first'
    const answers: Record<string, ReturnType<typeof deferred<{ data: string }>>> = {
      first: deferred(),
      second: deferred(),
    }
    const r = useReport<string, string>({
      query: () => q,
      fetch: (query) => answers[query]!.promise,
      download: () => Promise.reject(new Error('unused')),
      filename: 'x.xlsx',
    })
    expect(r.data.value).toBeNull()
    const one = r.load()
    q = 'second'
    const two = r.load()
    expect(r.loading.value).toBe(true)
    answers.second!.resolve({ data: 'report of second' })
    await two
    answers.first!.resolve({ data: 'report of first' })
    await one
    expect(r.data.value).toBe('report of second')
    expect(r.loaded.value).toBe(true)
    expect(r.loading.value).toBe(false)
  })

  it('exports the query as xlsx named by the server, or by the fallback', async () => {
    const created = vi.fn(() => 'blob:1')
    const { createObjectURL, revokeObjectURL } = URL
    URL.createObjectURL = created
    URL.revokeObjectURL = vi.fn()
    const names: string[] = []
    const click = vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(function (this: HTMLAnchorElement) {
      names.push(this.download)
    })
    const seen: string[] = []
    let disposition: string | null = "attachment; filename*=UTF-8''store-settlement-2026-11-01-2026-11-30.xlsx"
    const r = useReport<string, string>({
      query: () => 'nov',
      fetch: () => Promise.resolve({ data: '' }),
      download: (query) => {
        seen.push(query)
        const headers = new Headers(disposition ? { 'content-disposition': disposition } : {})
        return Promise.resolve({ data: new Blob(['x']), response: new Response(null, { headers }) })
      },
      filename: 'store-settlement.xlsx',
    })
    await r.exportXlsx()
    disposition = null
    await r.exportXlsx()
    expect(seen).toEqual(['nov', 'nov'])
    expect(names).toEqual(['store-settlement-2026-11-01-2026-11-30.xlsx', 'store-settlement.xlsx'])
    expect(created).toHaveBeenCalledTimes(2)
    expect(r.exporting.value).toBe(false)
    click.mockRestore()
    URL.createObjectURL = createObjectURL
    URL.revokeObjectURL = revokeObjectURL
  })
})

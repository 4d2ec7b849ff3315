// Saves a Blob the API returned (exports need the Authorization header, so no plain links).

/** The filename from a Content-Disposition header (RFC 6266 filename* first), if any. */
export function filenameFrom(disposition: string | null, fallback: string): string {
  if (!disposition) return fallback
  const star = /filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(disposition)
  if (star?.[1]) {
    try {
      return decodeURIComponent(star[1].trim())
    } catch {
      // fall through to the plain form
    }
  }
  const plain = /filename\s*=\s*"?([^";]+)"?/.exec(disposition)
  return plain?.[1]?.trim() || fallback
}

export function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = url
  a.download = filename
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}

/** Runs an export request (made with `parseAs: 'blob'`) and saves the file it answered, under
 *  the name the server gave it (`fallback` without one). */
export async function downloadExport(
  request: () => Promise<{ data: unknown; response: Response }>,
  fallback: string,
): Promise<void> {
  const { data, response } = await request()
  const blob = data instanceof Blob ? data : new Blob([JSON.stringify(data)])
  saveBlob(blob, filenameFrom(response.headers.get('content-disposition'), fallback))
}

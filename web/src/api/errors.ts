// ApiError: what every failed API call throws, carrying the backend's stable error code.
import type { ErrorBody, ErrorDetail } from './generated'

export class ApiError extends Error {
  readonly status: number
  readonly code: string
  readonly details: ErrorDetail[]
  readonly requestId: string | null

  constructor(status: number, code: string, message: string, details: ErrorDetail[] = [], requestId: string | null = null) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.details = details
    this.requestId = requestId
  }
}

function isErrorBody(value: unknown): value is ErrorBody {
  return typeof value === 'object' && value !== null && typeof (value as { error?: unknown }).error === 'string'
}

/** Turns whatever the client caught (error body, text, network failure) into an ApiError. */
export function toApiError(error: unknown, response: Response | undefined): ApiError {
  if (error instanceof ApiError) return error
  if (response === undefined) {
    const aborted = error instanceof DOMException && error.name === 'AbortError'
    return new ApiError(0, aborted ? 'aborted' : 'network_error', String(error))
  }
  if (isErrorBody(error)) {
    return new ApiError(response.status, error.error, error.message, error.details ?? [], error.request_id ?? null)
  }
  return new ApiError(response.status, `http_${response.status}`, typeof error === 'string' ? error : response.statusText)
}

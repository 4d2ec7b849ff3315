// Shared component prop shapes.

/** One value in a reveal-once dialog; `secret` values are long keys rather than short codes. */
export interface SecretRow {
  label: string
  value: string
  secret?: boolean
}

// Byte counts as people read them (1.5 GiB), for the monitoring and backups pages.
const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

export function formatBytes(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—'
  let n = value
  let unit = 0
  while (n >= 1024 && unit < UNITS.length - 1) {
    n /= 1024
    unit += 1
  }
  return `${unit === 0 ? n : n.toFixed(1)} ${UNITS[unit]}`
}

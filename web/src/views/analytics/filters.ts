// The analytics pages' shared filters: a window of local days, one city or all, one store or
// all, and (for the series) day/week/month; `query()` is what every statistics route takes.
import { ref } from 'vue'

export type Granularity = 'day' | 'week' | 'month'

export function isoDay(d: Date): string {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`
}

/** The last `days` days up to `today`, both ends included, as ISO local days. */
export function lastDays(days: number, today: Date = new Date()): [string, string] {
  return [isoDay(new Date(today.getTime() - (days - 1) * 86_400_000)), isoDay(today)]
}

export function useAnalyticsFilters(days: number) {
  const range = ref<[string, string]>(lastDays(days))
  const storeId = ref<number | null>(null)
  const city = ref<string | null>(null)
  const granularity = ref<Granularity>('day')
  function query(): { start: string; end: string; store_id?: number; city?: string } {
    const [start, end] = range.value
    return {
      start,
      end,
      ...(storeId.value === null ? {} : { store_id: storeId.value }),
      ...(city.value === null ? {} : { city: city.value }),
    }
  }
  return { range, storeId, city, granularity, query }
}

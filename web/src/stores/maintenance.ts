// Maintenance mode as the console knows it: read once a minute and whenever an API answer's
// X-Selfmart-Maintenance header says something else than what the banner shows.
import { defineStore } from 'pinia'
import { ref } from 'vue'
import * as api from '@/api'

export const MAINTENANCE_POLL_MS = 60_000

export const useMaintenanceStore = defineStore('maintenance', () => {
  const on = ref(false)
  const message = ref('')
  let timer: ReturnType<typeof setInterval> | null = null
  let unwatch: (() => void) | null = null

  async function refresh(): Promise<void> {
    try {
      const { data } = await api.getMaintenance()
      on.value = data.on
      message.value = data.message
    } catch {
      // The banner is a convenience: a missed read is caught up by the next one.
    }
  }

  function sawFlag(flag: boolean): void {
    if (flag !== on.value) void refresh()
  }

  function start(): void {
    stop()
    void refresh()
    unwatch = api.onMaintenanceFlag(sawFlag)
    timer = setInterval(() => {
      if (document.visibilityState !== 'hidden') void refresh()
    }, MAINTENANCE_POLL_MS)
  }

  function stop(): void {
    if (timer !== null) clearInterval(timer)
    timer = null
    unwatch?.()
    unwatch = null
  }

  return { on, message, refresh, sawFlag, start, stop }
})

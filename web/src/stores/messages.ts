// The unread count behind the header bell, polled every 30 seconds while the console is open.
import { defineStore } from 'pinia'
import { ref } from 'vue'
import * as api from '@/api'

export const POLL_MS = 30_000

export const useMessagesStore = defineStore('messages', () => {
  const unread = ref(0)
  let timer: ReturnType<typeof setInterval> | null = null

  async function refreshCount(): Promise<void> {
    try {
      const { data } = await api.unreadMessageCount()
      unread.value = data.count
    } catch {
      // A missed poll is harmless; the next one will catch up.
    }
  }

  function startPolling(): void {
    stopPolling()
    void refreshCount()
    timer = setInterval(() => {
      if (document.visibilityState !== 'hidden') void refreshCount()
    }, POLL_MS)
  }

  function stopPolling(): void {
    if (timer !== null) clearInterval(timer)
    timer = null
  }

  return { unread, refreshCount, startPolling, stopPolling }
})

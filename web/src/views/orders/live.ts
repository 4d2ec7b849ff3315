// One live connection to the order stream (GET /orders/live, server-sent events), shared by the
// order list and the live panel. EventSource cannot send the Authorization header the API needs,
// so the generated client reads the stream with fetch (through the auth-refreshing fetch), and
// resumes after a drop from the last event id it saw.
import { defineStore } from 'pinia'
import { ref } from 'vue'
import * as api from '@/api'
import { isLiveEvent, type LiveEvent } from './logic'

type Listener = (events: LiveEvent[]) => void

const FLUSH_MS = 250
const RECONNECT_MS = 3000

export const useOrdersLive = defineStore('ordersLive', () => {
  const connected = ref(false)
  const lastEventId = ref<number | null>(null)
  const listeners = new Set<Listener>()
  let controller: AbortController | null = null
  let buffer: LiveEvent[] = []
  let timer: ReturnType<typeof setTimeout> | null = null

  function flush(): void {
    timer = null
    const batch = buffer
    buffer = []
    if (batch.length) for (const fn of listeners) fn(batch)
  }

  function receive(event: string | undefined, data: unknown): void {
    if (event === 'ready') {
      connected.value = true
      const id = (data as { last_event_id?: unknown } | null)?.last_event_id
      if (typeof id === 'number' && lastEventId.value === null) lastEventId.value = id
      return
    }
    if (event !== 'order' || !isLiveEvent(data)) return
    // An entry committed late arrives after higher ids: resume from the highest seen.
    lastEventId.value = Math.max(lastEventId.value ?? 0, data.id)
    buffer.push(data)
    if (timer === null) timer = setTimeout(flush, FLUSH_MS)
  }

  async function run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        const { stream } = await api.ordersLive({
          query: lastEventId.value !== null ? { after: lastEventId.value } : undefined,
          signal,
          sseMaxRetryAttempts: 1,
          onSseEvent: (e) => receive(e.event, e.data),
        })
        for await (const _ of stream) {
          // events are handled in onSseEvent; reading the stream keeps it flowing
        }
      } catch {
        // dropped or refused: try again below
      }
      connected.value = false
      if (signal.aborted) break
      await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS))
    }
  }

  /** Get every batch of new timeline events while subscribed; returns the unsubscribe. */
  function subscribe(fn: Listener): () => void {
    listeners.add(fn)
    if (controller === null) {
      controller = new AbortController()
      void run(controller.signal)
    }
    return () => {
      listeners.delete(fn)
      if (listeners.size === 0 && controller !== null) {
        controller.abort()
        controller = null
        connected.value = false
        lastEventId.value = null // next time, start from then rather than replay the gap
      }
    }
  }

  return { connected, lastEventId, subscribe }
})

// A message-centre message in the reader's language: the server stores its title and lines as
// keys and parameters (messages.texts.<key>); a message without them (older ones) shows the text
// it was sent with.
import type { Translator } from '@/views/audit/actions'

export interface PhraseLike {
  key: string
  params: Record<string, unknown>
}

export interface MessageLike {
  title: string
  body: string
  text?: { title: PhraseLike; lines: PhraseLike[]; more?: number } | null
}

// Parameters whose values are codes with words of their own in the console's catalogue (an
// alert's metric and severity): shown in the reader's words, the code itself when none exist.
const WORDED_PARAMS: Record<string, string> = {
  metric: 'opsAlerts.metrics',
  severity: 'opsAlerts.severities',
}

function worded(params: Record<string, unknown>, tr: Translator): Record<string, unknown> {
  const out: Record<string, unknown> = { ...params }
  for (const [name, prefix] of Object.entries(WORDED_PARAMS)) {
    const value = params[name]
    if (typeof value === 'string' && tr.te(`${prefix}.${value}`)) out[name] = tr.t(`${prefix}.${value}`)
  }
  return out
}

function phrase({ key, params }: PhraseLike, tr: Translator): string | null {
  const full = `messages.texts.${key}`
  return tr.te(full) ? tr.t(full, worded(params, tr)) : null
}

export function messageTitle(m: MessageLike, tr: Translator): string {
  return (m.text && phrase(m.text.title, tr)) ?? m.title
}

export function messageBody(m: MessageLike, tr: Translator): string {
  if (!m.text) return m.body
  const lines = m.text.lines.map((l) => phrase(l, tr))
  if (lines.some((l) => l === null)) return m.body
  if (m.text.more) lines.push(tr.t('messages.texts.more', { n: m.text.more }))
  return lines.join('\n')
}

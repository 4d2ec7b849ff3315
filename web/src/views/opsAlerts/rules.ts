// Alert rules: the form an operator fills in, checked here and turned into the API's create or
// update body, and how a rule reads in a sentence (kept out of the component for unit tests).
import type { AlertRuleCreate, AlertRuleRead, AlertRuleUpdate } from '@/api'

export const METRICS = [
  'cpu_percent',
  'memory_percent',
  'disk_percent',
  'error_rate',
  'p95_ms',
  'job_backlog',
  'job_lag_seconds',
  'terminal_offline_minutes',
  'store_no_orders_minutes',
  'payment_failure_rate',
  'reconciliation_open',
] as const
export type MetricName = (typeof METRICS)[number]
/** Figures of the whole deployment: a rule on them covers no single store. */
export const CHAIN_METRICS: readonly MetricName[] = ['cpu_percent', 'memory_percent', 'disk_percent', 'error_rate', 'p95_ms', 'job_backlog', 'job_lag_seconds']
export const COMPARISONS = ['gte', 'gt', 'lte', 'lt'] as const
export const SEVERITIES = ['info', 'warning', 'critical'] as const
export const CHANNELS = ['in_app', 'email', 'sms'] as const
export const OPS: Record<string, string> = { gt: '>', gte: '≥', lt: '<', lte: '≤' }
export const UNITS: Record<MetricName, string> = {
  cpu_percent: '%',
  memory_percent: '%',
  disk_percent: '%',
  error_rate: '%',
  p95_ms: 'ms',
  job_backlog: '',
  job_lag_seconds: 's',
  terminal_offline_minutes: 'min',
  store_no_orders_minutes: 'min',
  payment_failure_rate: '%',
  reconciliation_open: '',
}

export interface RuleForm {
  name: string
  metric: MetricName
  comparison: (typeof COMPARISONS)[number]
  threshold: number | null
  /** minutes in the form, seconds in the API */
  duration_minutes: number
  window_minutes: number
  severity: (typeof SEVERITIES)[number]
  store_id: number | null
  channels: string[]
  user_ids: number[]
  role_ids: number[]
  /** 0: tell once */
  renotify_minutes: number
  enabled: boolean
}

export function emptyRuleForm(): RuleForm {
  return {
    name: '',
    metric: 'terminal_offline_minutes',
    comparison: 'gte',
    threshold: null,
    duration_minutes: 0,
    window_minutes: 15,
    severity: 'warning',
    store_id: null,
    channels: ['in_app', 'email'],
    user_ids: [],
    role_ids: [],
    renotify_minutes: 0,
    enabled: true,
  }
}

export function ruleFormFrom(r: AlertRuleRead): RuleForm {
  return {
    name: r.name,
    metric: (METRICS as readonly string[]).includes(r.metric) ? (r.metric as MetricName) : 'cpu_percent',
    comparison: (COMPARISONS as readonly string[]).includes(r.comparison) ? (r.comparison as RuleForm['comparison']) : 'gte',
    threshold: r.threshold,
    duration_minutes: Math.round(r.duration_seconds / 60),
    window_minutes: r.window_minutes,
    severity: (SEVERITIES as readonly string[]).includes(r.severity) ? (r.severity as RuleForm['severity']) : 'warning',
    store_id: r.store_id ?? null,
    channels: [...r.channels],
    user_ids: [...r.user_ids],
    role_ids: [...r.role_ids],
    renotify_minutes: r.renotify_minutes ?? 0,
    enabled: r.enabled,
  }
}

export const isChainMetric = (m: string): boolean => (CHAIN_METRICS as readonly string[]).includes(m)

/** Field → message key of what is wrong (empty: the form may be sent). */
export function ruleProblems(f: RuleForm): Record<string, string> {
  const out: Record<string, string> = {}
  if (!f.name.trim()) out.name = 'validation.required'
  if (f.threshold === null || !Number.isFinite(f.threshold)) out.threshold = 'validation.required'
  if (!f.channels.length) out.channels = 'opsAlerts.pickChannel'
  if (!f.user_ids.length && !f.role_ids.length) out.recipients = 'opsAlerts.pickRecipient'
  if (f.renotify_minutes !== 0 && f.renotify_minutes < 5) out.renotify_minutes = 'opsAlerts.renotifyMin'
  return out
}

export function createBody(f: RuleForm): AlertRuleCreate {
  return {
    name: f.name.trim(),
    metric: f.metric,
    comparison: f.comparison,
    threshold: f.threshold ?? 0,
    duration_seconds: Math.max(0, Math.round(f.duration_minutes * 60)),
    window_minutes: f.window_minutes,
    severity: f.severity,
    store_id: isChainMetric(f.metric) ? null : f.store_id,
    channels: [...f.channels],
    user_ids: [...f.user_ids],
    role_ids: [...f.role_ids],
    renotify_minutes: f.renotify_minutes > 0 ? f.renotify_minutes : null,
    enabled: f.enabled,
  }
}

export function updateBody(f: RuleForm): AlertRuleUpdate {
  return createBody(f)
}

/** "≥ 10 min for 5 min" — the condition in short. */
export function conditionText(r: { metric: string; comparison: string; threshold: number }): string {
  const unit = UNITS[r.metric as MetricName] ?? ''
  return `${OPS[r.comparison] ?? r.comparison} ${r.threshold}${unit ? ` ${unit}` : ''}`
}

/** A reading with its unit, rounded for people. */
export function valueText(metric: string, value: number | null | undefined): string {
  if (value === null || value === undefined) return '—'
  const unit = UNITS[metric as MetricName] ?? ''
  const shown = Math.round(value * 100) / 100
  return `${shown}${unit ? ` ${unit}` : ''}`
}

// Alert rules: the form's checks, the bodies it becomes, and how conditions and readings read.
import { describe, expect, it } from 'vitest'
import { conditionText, createBody, emptyRuleForm, ruleFormFrom, ruleProblems, valueText } from '@/views/opsAlerts/rules'

describe('alert rule form', () => {
  it('names every missing field', () => {
    const form = emptyRuleForm()
    form.channels = []
    expect(ruleProblems(form)).toEqual({
      name: 'validation.required',
      threshold: 'validation.required',
      channels: 'opsAlerts.pickChannel',
      recipients: 'opsAlerts.pickRecipient',
    })
    form.name = '收银机失联'
    form.threshold = 10
    form.channels = ['in_app']
    form.role_ids = [3]
    form.renotify_minutes = 2
    expect(ruleProblems(form)).toEqual({ renotify_minutes: 'opsAlerts.renotifyMin' })
    form.renotify_minutes = 0
    expect(ruleProblems(form)).toEqual({})
  })

  it('sends seconds, no store for a chain-wide figure, and null for "tell once"', () => {
    const form = { ...emptyRuleForm(), name: '磁盘', metric: 'disk_percent' as const, threshold: 90, duration_minutes: 5, store_id: 2, user_ids: [1] }
    const body = createBody(form)
    expect(body).toMatchObject({ metric: 'disk_percent', threshold: 90, duration_seconds: 300, store_id: null, renotify_minutes: null })
    const store = createBody({ ...form, metric: 'terminal_offline_minutes', renotify_minutes: 30 })
    expect(store).toMatchObject({ store_id: 2, renotify_minutes: 30 })
  })

  it('round-trips a rule read from the API', () => {
    const read = {
      id: 1, name: 'r', metric: 'payment_failure_rate', comparison: 'gt', threshold: 20, duration_seconds: 600,
      window_minutes: 30, severity: 'critical', store_id: null, channels: ['email'], user_ids: [4], role_ids: [],
      renotify_minutes: null, enabled: false, created_at: '', updated_at: '', live_alerts: 0,
    }
    const form = ruleFormFrom(read)
    expect(form).toMatchObject({ duration_minutes: 10, renotify_minutes: 0, comparison: 'gt', enabled: false })
    expect(createBody(form)).toMatchObject({ duration_seconds: 600, window_minutes: 30, renotify_minutes: null })
  })

  it('reads conditions and values with their units', () => {
    expect(conditionText({ metric: 'terminal_offline_minutes', comparison: 'gte', threshold: 10 })).toBe('≥ 10 min')
    expect(conditionText({ metric: 'job_backlog', comparison: 'gt', threshold: 100 })).toBe('> 100')
    expect(valueText('cpu_percent', 93.456)).toBe('93.46 %')
    expect(valueText('cpu_percent', null)).toBe('—')
  })
})

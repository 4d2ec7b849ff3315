// Alert notification routes: the form's checks and the create / update bodies it becomes.
import { describe, expect, it } from 'vitest'
import { createBody, emptyRouteForm, robotSigns, routeFormFrom, routeProblems, updateBody } from '@/views/inventory/alertRoutes'

const robotRoute = {
  id: 3,
  name: '钉钉群',
  store_id: 2,
  kinds: ['low_stock'],
  target: 'robot',
  role_id: null,
  channels: [],
  robot_kind: 'dingtalk',
  webhook_url: 'https://oapi.dingtalk.com/robot/send?access_token=T',
  has_secret: true,
  mode: 'digest',
  is_active: false,
}

describe('alert route form', () => {
  it('names every missing or bad field', () => {
    const form = emptyRouteForm(2)
    expect(routeProblems(form)).toEqual({ name: 'validation.required', role_id: 'validation.required' })
    form.name = '店长'
    form.role_id = 4
    form.channels = []
    expect(routeProblems(form)).toEqual({ channels: 'alertRoutes.pickChannel' })
    form.target = 'robot'
    form.webhook_url = 'ftp://x'
    expect(routeProblems(form)).toEqual({ robot_kind: 'validation.required', webhook_url: 'alertRoutes.badWebhook' })
  })

  it('creates a role route with only the role fields', () => {
    const form = { ...emptyRouteForm(2), name: ' 店长 ', role_id: 4, channels: ['in_app' as const, 'sms' as const], webhook_url: 'https://left.over' }
    expect(createBody(form)).toEqual({ name: '店长', store_id: 2, kinds: [], target: 'role', mode: 'immediate', is_active: true, role_id: 4, channels: ['in_app', 'sms'] })
  })

  it('edits a robot route: the secret is kept unless typed or removed', () => {
    const form = routeFormFrom(robotRoute)
    expect(form).toMatchObject({ target: 'robot', robot_kind: 'dingtalk', mode: 'digest', is_active: false, secret: '', kinds: ['low_stock'] })
    expect(updateBody(form)).toEqual({ name: '钉钉群', kinds: ['low_stock'], mode: 'digest', is_active: false, robot_kind: 'dingtalk', webhook_url: robotRoute.webhook_url })
    expect(updateBody({ ...form, clear_secret: true }).secret).toBe('')
    expect(updateBody({ ...form, secret: 'SECnew', clear_secret: true }).secret).toBe('SECnew')
    expect('store_id' in updateBody(form)).toBe(false)
  })

  it('knows which robots sign', () => {
    expect([robotSigns('wecom'), robotSigns('dingtalk'), robotSigns('feishu'), robotSigns(null)]).toEqual([false, true, true, false])
  })
})

// Alert notification routes: the form a person fills in, checked here and turned into the API's
// create or update body (kept out of the component so it can be unit-tested).

export const ROUTE_KINDS = ['low_stock', 'near_expiry'] as const
export const ROUTE_CHANNELS = ['in_app', 'email', 'sms'] as const
export const ROBOT_KINDS = ['wecom', 'dingtalk', 'feishu'] as const
export type RouteKind = (typeof ROUTE_KINDS)[number]
export type RouteChannel = (typeof ROUTE_CHANNELS)[number]
export type RobotKind = (typeof ROBOT_KINDS)[number]

export interface RouteLike {
  id: number
  name: string
  store_id: number | null
  kinds: string[]
  target: string
  role_id: number | null
  channels: string[]
  robot_kind: string | null
  webhook_url: string | null
  has_secret: boolean
  mode: string
  is_active: boolean
}

export interface RouteForm {
  name: string
  store_id: number | null
  kinds: RouteKind[]
  target: 'role' | 'robot'
  role_id: number | null
  channels: RouteChannel[]
  robot_kind: RobotKind | null
  webhook_url: string
  /** typed to set or replace the signing secret; empty keeps it */
  secret: string
  /** on edit: remove the stored secret */
  clear_secret: boolean
  mode: 'immediate' | 'digest'
  is_active: boolean
}

export function emptyRouteForm(storeId: number | null = null): RouteForm {
  return {
    name: '',
    store_id: storeId,
    kinds: [],
    target: 'role',
    role_id: null,
    channels: ['in_app'],
    robot_kind: null,
    webhook_url: '',
    secret: '',
    clear_secret: false,
    mode: 'immediate',
    is_active: true,
  }
}

function pick<T extends string>(values: readonly T[], given: readonly string[]): T[] {
  return values.filter((v) => given.includes(v))
}

export function routeFormFrom(route: RouteLike): RouteForm {
  return {
    name: route.name,
    store_id: route.store_id,
    kinds: pick(ROUTE_KINDS, route.kinds),
    target: route.target === 'robot' ? 'robot' : 'role',
    role_id: route.role_id,
    channels: pick(ROUTE_CHANNELS, route.channels),
    robot_kind: (ROBOT_KINDS as readonly string[]).includes(route.robot_kind ?? '') ? (route.robot_kind as RobotKind) : null,
    webhook_url: route.webhook_url ?? '',
    secret: '',
    clear_secret: false,
    mode: route.mode === 'digest' ? 'digest' : 'immediate',
    is_active: route.is_active,
  }
}

const WEBHOOK = /^https?:\/\/\S+$/

/** The fields that are wrong, each with the i18n key of its reason (empty when the form is fine). */
export function routeProblems(form: RouteForm): Record<string, string> {
  const out: Record<string, string> = {}
  if (!form.name.trim()) out.name = 'validation.required'
  if (form.target === 'role') {
    if (form.role_id === null) out.role_id = 'validation.required'
    if (!form.channels.length) out.channels = 'alertRoutes.pickChannel'
  } else {
    if (form.robot_kind === null) out.robot_kind = 'validation.required'
    if (!WEBHOOK.test(form.webhook_url.trim())) out.webhook_url = 'alertRoutes.badWebhook'
  }
  return out
}

type Body = Record<string, unknown>

/** The create body: only what the chosen target uses. */
export function createBody(form: RouteForm): Body {
  const body: Body = { name: form.name.trim(), store_id: form.store_id, kinds: [...form.kinds], target: form.target, mode: form.mode, is_active: form.is_active }
  if (form.target === 'role') Object.assign(body, { role_id: form.role_id, channels: [...form.channels] })
  else {
    Object.assign(body, { robot_kind: form.robot_kind, webhook_url: form.webhook_url.trim() })
    if (form.secret) body.secret = form.secret
  }
  return body
}

/** The update body (store and target cannot change); the secret is sent only to set or remove it. */
export function updateBody(form: RouteForm): Body {
  const body: Body = { name: form.name.trim(), kinds: [...form.kinds], mode: form.mode, is_active: form.is_active }
  if (form.target === 'role') Object.assign(body, { role_id: form.role_id, channels: [...form.channels] })
  else {
    Object.assign(body, { robot_kind: form.robot_kind, webhook_url: form.webhook_url.trim() })
    if (form.secret) body.secret = form.secret
    else if (form.clear_secret) body.secret = ''
  }
  return body
}

/** Whether the robot flavour signs its webhook (DingTalk and Feishu do; WeCom does not). */
export function robotSigns(kind: string | null): boolean {
  return kind === 'dingtalk' || kind === 'feishu'
}

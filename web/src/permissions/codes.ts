// Permission codes: the same strings as the backend's `Perm` StrEnum (a unit test keeps them equal).
export const Perm = {
  USER_READ: 'user:read',
  USER_WRITE: 'user:write',
  ROLE_READ: 'role:read',
  ROLE_WRITE: 'role:write',
  STORE_READ: 'store:read',
  STORE_WRITE: 'store:write',
  TERMINAL_READ: 'terminal:read',
  TERMINAL_WRITE: 'terminal:write',
  LOGIN_LOG_READ: 'login_log:read',
  AUDIT_READ: 'audit:read',
  SYSTEM_SETTINGS: 'system:settings',
  JOB_READ: 'job:read',

  PRODUCT_READ: 'product:read',
  PRODUCT_WRITE: 'product:write',
  PRODUCT_IMPORT: 'product:import',
  STOCK_READ: 'stock:read',
  STOCK_WRITE: 'stock:write',
  ALERT_READ: 'alert:read',
  ALERT_WRITE: 'alert:write',
  SUPPLIER_READ: 'supplier:read',
  SUPPLIER_WRITE: 'supplier:write',
  PURCHASE_READ: 'purchase:read',
  PURCHASE_WRITE: 'purchase:write',
  STOCKTAKE_WRITE: 'stocktake:write',

  ORDER_READ: 'order:read',
  ORDER_WRITE: 'order:write',
  ORDER_REFUND: 'order:refund',
  ORDER_EXPORT: 'order:export',
  ORDER_PII: 'order:pii',
  PAYMENT_READ: 'payment:read',
  PAYMENT_WRITE: 'payment:write',
  PAYMENT_ACCOUNT_READ: 'payment_account:read',
  PAYMENT_ACCOUNT_WRITE: 'payment_account:write',

  RECONCILIATION_READ: 'reconciliation:read',
  RECONCILIATION_RUN: 'reconciliation:run',
  RECONCILIATION_RESOLVE: 'reconciliation:resolve',

  SETTLEMENT_READ: 'settlement:read',
  SETTLEMENT_WRITE: 'settlement:write',
  SETTLEMENT_APPROVE: 'settlement:approve',

  MEMBER_READ: 'member:read',
  MEMBER_WRITE: 'member:write',
  MEMBER_PII: 'member:pii',
  MEMBER_POINTS: 'member:points',
  MEMBER_TIER: 'member:tier',
  MEMBER_EXPORT: 'member:export',
  MEMBER_MARKETING: 'member:marketing',

  ANALYTICS_READ: 'analytics:read',
  ANALYTICS_RUN: 'analytics:run',
} as const

export type PermCode = (typeof Perm)[keyof typeof Perm]

/** A requirement: one code, or any of several codes. */
export type PermRequirement = PermCode | readonly PermCode[]

/** True when `granted` satisfies `need` (no need: always; a list: any one of them). */
export function allows(granted: ReadonlySet<string>, need: PermRequirement | undefined): boolean {
  if (need === undefined) return true
  if (typeof need === 'string') return granted.has(need)
  return need.length === 0 || need.some((code) => granted.has(code))
}

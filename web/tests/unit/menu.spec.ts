// The side menu shows only what the user's permission codes allow.
import { describe, expect, it } from 'vitest'
import { buildMenu, type MenuRoute } from '@/router/menu'
import { consoleRoutes } from '@/router/routes'
import { Perm } from '@/permissions/codes'

const routes = consoleRoutes as unknown as MenuRoute[]
const names = (perms: string[]) =>
  buildMenu(routes, new Set(perms)).map((s) => [s.key, s.items.map((i) => i.name)] as const)

// The built-in roles' codes, as the backend defines them (selfmart.iam.permissions.BUILTIN_ROLES).
const SUPER = Object.values(Perm)
const CASHIER = [Perm.STORE_READ, Perm.PRODUCT_READ, Perm.ORDER_READ, Perm.ORDER_WRITE, Perm.ORDER_REFUND, Perm.PAYMENT_READ, Perm.PAYMENT_WRITE]

describe('buildMenu', () => {
  it('gives the super admin every page, grouped and ordered', () => {
    expect(names(SUPER)).toEqual([
      ['home', ['dashboard']],
      ['catalog', ['catalog-products', 'catalog-import', 'catalog-categories', 'catalog-tags']],
      ['inventory', ['stock', 'stock-ledger', 'stock-alerts', 'alert-routes', 'suppliers', 'purchase-orders', 'reorder', 'transfers', 'stocktakes']],
      ['orders', ['orders', 'order-issues', 'payments', 'payment-accounts', 'reconciliation', 'reconciliation-fees', 'analytics-statistics', 'analytics-baskets', 'analytics-stock', 'analytics-members']],
      ['members', ['members', 'member-rules']],
      ['finance', ['settlement-stores', 'settlement-fees', 'settlement-statements']],
      ['stores', ['stores', 'terminals', 'terminal-fleet']],
      ['system', ['users', 'roles', 'login-logs', 'audit-logs', 'business-logs', 'monitoring', 'ops-alerts', 'backups', 'about']],
    ])
  })

  it('gives a cashier no system section', () => {
    const menu = names(CASHIER)
    expect(menu.map(([k]) => k)).not.toContain('system')
    expect(menu).toEqual([
      ['home', ['dashboard']],
      ['catalog', ['catalog-products', 'catalog-categories', 'catalog-tags']],
      ['orders', ['orders', 'order-issues', 'payments']],
      ['stores', ['stores']],
    ])
  })

  it('shows the orders pages only with order:read', () => {
    expect(names([Perm.ORDER_READ])).toEqual([
      ['home', ['dashboard']],
      ['orders', ['orders', 'order-issues']],
    ])
    expect(names([Perm.ORDER_EXPORT, Perm.ORDER_REFUND]).map(([k]) => k)).not.toContain('orders')
    expect(buildMenu(routes, new Set(SUPER)).flatMap((s) => s.items.map((i) => i.name))).not.toContain('order-detail')
  })

  it('shows the payments pages by their own codes', () => {
    expect(names([Perm.PAYMENT_ACCOUNT_READ])).toEqual([
      ['home', ['dashboard']],
      ['orders', ['payment-accounts']],
    ])
    expect(names([Perm.PAYMENT_READ])).toEqual([
      ['home', ['dashboard']],
      ['orders', ['payments']],
    ])
  })

  it('shows a single page when only its code is held', () => {
    expect(names([Perm.AUDIT_READ])).toEqual([
      ['home', ['dashboard']],
      ['system', ['audit-logs']],
    ])
  })

  it('leaves out routes without a menu entry and empty sections', () => {
    const all = buildMenu(routes, new Set(SUPER)).flatMap((s) => s.items.map((i) => i.name))
    expect(all).not.toContain('messages')
    expect(all).not.toContain('profile')
    expect(all).not.toContain('not-found')
  })

  it('accepts "any of" requirements and nested children with full paths', () => {
    const custom: MenuRoute[] = [
      {
        name: 'catalog-root',
        path: 'catalog',
        children: [
          { name: 'products', path: 'products', meta: { titleKey: 'x', perm: [Perm.PRODUCT_READ, Perm.PRODUCT_WRITE], menu: { group: 'catalog', order: 1, icon: 'Goods' } } },
        ],
      },
    ]
    expect(buildMenu(custom, new Set([Perm.PRODUCT_WRITE]))[0]!.items[0]).toMatchObject({ name: 'products', path: '/catalog/products' })
    expect(buildMenu(custom, new Set([Perm.ORDER_READ]))).toEqual([])
  })
})

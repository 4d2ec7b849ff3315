// The side menu, built from the routes' permission codes: a user sees only what they may open.
import { allows, type PermRequirement } from '@/permissions/codes'

/** Menu sections in display order; later domains (catalog, inventory, orders) add routes to theirs. */
export const MENU_GROUPS = [
  { key: 'home', icon: 'HomeFilled' },
  { key: 'catalog', icon: 'Goods' },
  { key: 'inventory', icon: 'Box' },
  { key: 'orders', icon: 'Tickets' },
  { key: 'members', icon: 'User' },
  { key: 'finance', icon: 'Money' },
  { key: 'stores', icon: 'Shop' },
  { key: 'system', icon: 'Setting' },
] as const

export type MenuGroupKey = (typeof MENU_GROUPS)[number]['key']

export interface MenuMeta {
  group: MenuGroupKey
  order: number
  icon: string
}

/** What the menu needs to know about a route. */
export interface MenuRoute {
  name: string
  path: string
  meta?: { titleKey?: string; perm?: PermRequirement; menu?: MenuMeta }
  children?: readonly MenuRoute[]
}

export interface MenuItem {
  name: string
  path: string
  titleKey: string
  icon: string
}

export interface MenuSection {
  key: MenuGroupKey
  titleKey: string
  icon: string
  items: MenuItem[]
}

function joinPath(parent: string, path: string): string {
  if (path.startsWith('/')) return path
  const base = parent.endsWith('/') ? parent : `${parent}/`
  return `${base}${path}`.replace(/\/+$/, '') || '/'
}

function collect(routes: readonly MenuRoute[], parent: string, out: Array<MenuItem & MenuMeta & { perm?: PermRequirement }>): void {
  for (const r of routes) {
    const full = joinPath(parent, r.path)
    const m = r.meta
    if (m?.menu && m.titleKey) {
      out.push({ name: r.name, path: full, titleKey: m.titleKey, perm: m.perm, ...m.menu })
    }
    if (r.children) collect(r.children, full, out)
  }
}

/** Sections with the items `granted` allows, in order; empty sections are left out. */
export function buildMenu(routes: readonly MenuRoute[], granted: ReadonlySet<string>): MenuSection[] {
  const all: Array<MenuItem & MenuMeta & { perm?: PermRequirement }> = []
  collect(routes, '/', all)
  const sections: MenuSection[] = []
  for (const g of MENU_GROUPS) {
    const items = all
      .filter((i) => i.group === g.key && allows(granted, i.perm))
      .sort((a, b) => a.order - b.order)
      .map(({ name, path, titleKey, icon }) => ({ name, path, titleKey, icon }))
    if (items.length) sections.push({ key: g.key, titleKey: `menu.groups.${g.key}`, icon: g.icon, items })
  }
  return sections
}

// Catalog console logic kept out of the components so it can be unit-tested: the product form
// (yuan text <-> integer fen), bulk-edit actions and their preview rows, the import report,
// and the category tree (pickers, drag-and-drop rules).
import { fenToYuan, yuanToFen } from '@/utils/money'

// --- shapes (structural, so the tests need no generated types) ----------------------------

export type ProductStatus = 'on_sale' | 'off_sale'
/** The product search's stock states: above the threshold, at or below it, zero or less, below zero. */
export const STOCK_STATES = ['ok', 'low', 'out', 'negative'] as const
export type StockState = (typeof STOCK_STATES)[number]

export interface TagLike {
  id: number
  name: string
  color?: string | null
}

export interface ProductLike {
  id: number
  name: string
  brand: string
  spec: string
  unit: string
  category_id: number | null
  price_fen: number
  cost_fen: number
  member_price_fen: number | null
  shelf_life_days: number | null
  track_batches: boolean
  low_stock_threshold: number
  status: string
  barcodes: { code: string; kind: string }[]
  tags: TagLike[]
}

export interface CategoryNodeLike {
  id: number
  parent_id: number | null
  name: string
  depth: number
  sort_order: number
  product_count?: number
  children?: CategoryNodeLike[]
}

/** Deepest category level the backend accepts. */
export const MAX_CATEGORY_DEPTH = 3
export const PRICE_FIELDS = ['price_fen', 'member_price_fen', 'cost_fen'] as const
export type PriceField = (typeof PRICE_FIELDS)[number]

// --- product form -------------------------------------------------------------------------

/** The edit form: money and counts as the text the user typed. */
export interface ProductForm {
  name: string
  brand: string
  spec: string
  unit: string
  category_id: number | null
  price: string
  cost: string
  member_price: string
  shelf_life_days: string
  track_batches: boolean
  low_stock_threshold: string
  status: ProductStatus
  barcodes: string[]
  tag_ids: number[]
}

export function emptyProductForm(): ProductForm {
  return {
    name: '',
    brand: '',
    spec: '',
    unit: '',
    category_id: null,
    price: '',
    cost: '',
    member_price: '',
    shelf_life_days: '',
    track_batches: false,
    low_stock_threshold: '0',
    status: 'on_sale',
    barcodes: [],
    tag_ids: [],
  }
}

export function productToForm(p: ProductLike): ProductForm {
  return {
    name: p.name,
    brand: p.brand,
    spec: p.spec,
    unit: p.unit,
    category_id: p.category_id,
    price: fenToYuan(p.price_fen),
    cost: fenToYuan(p.cost_fen),
    member_price: p.member_price_fen === null ? '' : fenToYuan(p.member_price_fen),
    shelf_life_days: p.shelf_life_days === null ? '' : String(p.shelf_life_days),
    track_batches: p.track_batches,
    low_stock_threshold: String(p.low_stock_threshold),
    status: p.status === 'off_sale' ? 'off_sale' : 'on_sale',
    barcodes: p.barcodes.map((b) => b.code),
    tag_ids: p.tags.map((t) => t.id),
  }
}

/** Splits what was typed or pasted into a barcode box: commas, spaces, new lines. */
export function splitBarcodes(text: string): string[] {
  const out: string[] = []
  for (const part of text.split(/[\s,，;；、]+/)) {
    const code = part.trim().toUpperCase()
    if (code && !out.includes(code)) out.push(code)
  }
  return out
}

export interface ProductBody {
  name: string
  brand: string | null
  spec: string | null
  unit: string | null
  category_id: number | null
  price_fen: number
  cost_fen: number
  member_price_fen: number | null
  shelf_life_days: number | null
  track_batches: boolean
  low_stock_threshold: number
  status: ProductStatus
  barcodes: string[]
  tag_ids: number[]
}

/** A reason key under `validation.` for each form field that cannot be sent. */
export type FormErrors = Partial<Record<keyof ProductForm, string>>

/** Non-negative whole number typed as text; null when it is not one. */
export function parseCount(text: string): number | null {
  const m = /^\s*(\d{1,9})\s*$/.exec(text)
  return m ? Number(m[1]) : null
}

function money(text: string): number | null | 'bad' {
  if (text.trim() === '') return null
  const fen = yuanToFen(text)
  if (fen === null) return 'bad'
  if (fen < 0) return 'bad'
  return fen
}

/**
 * The create/update body from the form (prices in integer fen), or the field errors.
 * Amounts with more than two decimals are refused, never rounded.
 */
export function formToBody(form: ProductForm): { body: ProductBody; errors: null } | { body: null; errors: FormErrors } {
  const errors: FormErrors = {}
  if (!form.name.trim()) errors.name = 'required'
  const price = money(form.price)
  if (price === null) errors.price = 'required'
  else if (price === 'bad') errors.price = 'not_fen'
  const cost = money(form.cost)
  if (cost === 'bad') errors.cost = 'not_fen'
  const member = money(form.member_price)
  if (member === 'bad') errors.member_price = 'not_fen'
  let shelf: number | null = null
  if (form.shelf_life_days.trim() !== '') {
    shelf = parseCount(form.shelf_life_days)
    if (shelf === null || shelf < 1 || shelf > 36500) errors.shelf_life_days = 'shelf_life'
  }
  const threshold = form.low_stock_threshold.trim() === '' ? 0 : parseCount(form.low_stock_threshold)
  if (threshold === null) errors.low_stock_threshold = 'not_a_count'
  if (Object.keys(errors).length) return { body: null, errors }
  return {
    body: {
      name: form.name.trim(),
      brand: form.brand.trim() || null,
      spec: form.spec.trim() || null,
      unit: form.unit.trim() || null,
      category_id: form.category_id,
      price_fen: price as number,
      cost_fen: (cost as number | null) ?? 0,
      member_price_fen: member as number | null,
      shelf_life_days: shelf,
      track_batches: form.track_batches,
      low_stock_threshold: threshold as number,
      status: form.status,
      barcodes: form.barcodes.map((c) => c.trim().toUpperCase()).filter(Boolean),
      tag_ids: [...form.tag_ids],
    },
    errors: null,
  }
}

/** The fields of a PATCH: only what differs from the product as loaded. */
export function changedFields(before: ProductBody, after: ProductBody): Partial<ProductBody> {
  const out: Partial<ProductBody> = {}
  for (const key of Object.keys(after) as (keyof ProductBody)[]) {
    if (JSON.stringify(before[key]) !== JSON.stringify(after[key])) {
      ;(out as Record<string, unknown>)[key] = after[key]
    }
  }
  return out
}

/**
 * API field paths ("barcodes[1]", "body.price_fen") mapped to the form item that shows them,
 * with the index of the offending barcode kept so the message can name it.
 */
export function formFieldFor(apiField: string | null | undefined): { field: keyof ProductForm; index: number | null } | null {
  if (!apiField) return null
  const path = apiField.replace(/^body\./, '')
  const m = /^([a-z_]+)(?:\[(\d+)\]|\.(\d+))?/.exec(path)
  if (!m) return null
  const index = m[2] ?? m[3]
  const map: Record<string, keyof ProductForm> = {
    name: 'name',
    brand: 'brand',
    spec: 'spec',
    unit: 'unit',
    category_id: 'category_id',
    price_fen: 'price',
    cost_fen: 'cost',
    member_price_fen: 'member_price',
    shelf_life_days: 'shelf_life_days',
    track_batches: 'track_batches',
    low_stock_threshold: 'low_stock_threshold',
    status: 'status',
    barcodes: 'barcodes',
    tag_ids: 'tag_ids',
  }
  const field = map[m[1]!]
  return field ? { field, index: index === undefined ? null : Number(index) } : null
}

// --- listing per store ----------------------------------------------------------------------

export interface ListingLike {
  store_id: number
  is_listed: boolean
  store_price_fen: number | null
  low_stock_threshold: number | null
}

export interface ListingRow {
  store_id: number
  store_name: string
  is_listed: boolean
  /** Store price in yuan as typed ('' = the retail price applies). */
  store_price: string
  /** Threshold override as typed ('' = the product's threshold applies). */
  threshold: string
  known: boolean
}

/** One row per store the user may see, filled from the product's listings. */
export function listingRows(stores: { id: number; name: string }[], listings: ListingLike[]): ListingRow[] {
  const byStore = new Map(listings.map((l) => [l.store_id, l]))
  return stores.map((s) => {
    const l = byStore.get(s.id)
    return {
      store_id: s.id,
      store_name: s.name,
      is_listed: l?.is_listed ?? false,
      store_price: l?.store_price_fen == null ? '' : fenToYuan(l.store_price_fen),
      threshold: l?.low_stock_threshold == null ? '' : String(l.low_stock_threshold),
      known: l !== undefined,
    }
  })
}

export function listingBody(
  row: ListingRow,
): { body: { is_listed: boolean; store_price_fen: number | null; low_stock_threshold: number | null }; error: null } | { body: null; error: 'store_price' | 'threshold' } {
  const price = money(row.store_price)
  if (price === 'bad') return { body: null, error: 'store_price' }
  let threshold: number | null = null
  if (row.threshold.trim() !== '') {
    threshold = parseCount(row.threshold)
    if (threshold === null) return { body: null, error: 'threshold' }
  }
  return { body: { is_listed: row.is_listed, store_price_fen: price, low_stock_threshold: threshold }, error: null }
}

// --- images -------------------------------------------------------------------------------

export const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp']
export const IMAGE_MAX_BYTES = 5 * 1024 * 1024

/** Checked before uploading (the server checks the content again): a reason key or null. */
export function imageProblem(file: { type: string; size: number }, maxBytes = IMAGE_MAX_BYTES): 'unsupported_format' | 'too_large' | null {
  if (!IMAGE_TYPES.includes(file.type)) return 'unsupported_format'
  if (file.size > maxBytes) return 'too_large'
  return null
}

// --- bulk edit ----------------------------------------------------------------------------

export type BulkOp = 'set_price' | 'adjust_price' | 'set_status' | 'set_threshold' | 'move_category' | 'add_tags' | 'set_listing'

export interface BulkForm {
  op: BulkOp
  field: PriceField
  /** Where a price or threshold goes: null = chain-wide, else this store's listing. */
  store_id: number | null
  /** set_price: the new price in yuan. */
  amount: string
  /** adjust_price: by an amount in yuan or by a percent. */
  adjust_by: 'amount' | 'percent'
  /** adjust_price: "-0.50" yuan or "-10" percent. */
  delta: string
  status: ProductStatus
  threshold: string
  category_id: number | null
  tag_ids: number[]
  /** set_listing: list (true) or unlist (false) ... */
  listed: boolean
  /** ... in these stores; empty: every store of the user's. */
  listing_store_ids: number[]
}

export function emptyBulkForm(): BulkForm {
  return {
    op: 'adjust_price',
    field: 'price_fen',
    store_id: null,
    amount: '',
    adjust_by: 'percent',
    delta: '',
    status: 'off_sale',
    threshold: '',
    category_id: null,
    tag_ids: [],
    listed: true,
    listing_store_ids: [],
  }
}

export type BulkAction =
  | { op: 'set_price'; field: PriceField; amount_fen: number; store_id?: number | null }
  | { op: 'adjust_price'; field: PriceField; by_fen?: number; percent?: string; store_id?: number | null }
  | { op: 'set_status'; status: ProductStatus }
  | { op: 'set_threshold'; low_stock_threshold: number | null; store_id?: number | null }
  | { op: 'move_category'; category_id: number | null }
  | { op: 'add_tags'; tag_ids: number[] }
  | { op: 'set_listing'; listed: boolean; store_ids?: number[] }

/** A percent with at most two decimals, kept as text (no float on the way): "-10", "2.5". */
export function parsePercent(text: string): string | null {
  const m = /^\s*([+-])?(\d{1,4})(?:\.(\d{1,2}))?\s*$/.exec(text)
  if (!m) return null
  const value = `${m[1] === '-' ? '-' : ''}${Number(m[2])}${m[3] ? `.${m[3]}` : ''}`
  const hundredths = (Number(m[2]) * 100 + Number((m[3] ?? '').padEnd(2, '0'))) * (m[1] === '-' ? -1 : 1)
  if (hundredths < -10000 || hundredths > 100000 || hundredths === 0) return null
  return value
}

/** The action to preview, or the reason key (under `catalog.bulk.errors.`) why it cannot be built. */
export function buildBulkAction(form: BulkForm): { action: BulkAction; error: null } | { action: null; error: string } {
  const store = form.store_id ?? null
  switch (form.op) {
    case 'set_price': {
      const fen = form.amount.trim() === '' ? null : yuanToFen(form.amount)
      if (fen === null || fen < 0) return { action: null, error: 'amount' }
      if (store !== null && form.field !== 'price_fen') return { action: null, error: 'storePriceOnly' }
      return { action: { op: 'set_price', field: form.field, amount_fen: fen, store_id: store }, error: null }
    }
    case 'adjust_price': {
      if (store !== null && form.field !== 'price_fen') return { action: null, error: 'storePriceOnly' }
      if (form.adjust_by === 'amount') {
        const fen = yuanToFen(form.delta)
        if (fen === null || fen === 0) return { action: null, error: 'delta' }
        return { action: { op: 'adjust_price', field: form.field, by_fen: fen, store_id: store }, error: null }
      }
      const percent = parsePercent(form.delta)
      if (percent === null) return { action: null, error: 'percent' }
      return { action: { op: 'adjust_price', field: form.field, percent, store_id: store }, error: null }
    }
    case 'set_status':
      return { action: { op: 'set_status', status: form.status }, error: null }
    case 'set_threshold': {
      if (form.threshold.trim() === '') {
        if (store === null) return { action: null, error: 'threshold' }
        return { action: { op: 'set_threshold', low_stock_threshold: null, store_id: store }, error: null }
      }
      const n = parseCount(form.threshold)
      if (n === null) return { action: null, error: 'threshold' }
      return { action: { op: 'set_threshold', low_stock_threshold: n, store_id: store }, error: null }
    }
    case 'move_category':
      return { action: { op: 'move_category', category_id: form.category_id }, error: null }
    case 'add_tags':
      if (!form.tag_ids.length) return { action: null, error: 'tags' }
      return { action: { op: 'add_tags', tag_ids: [...form.tag_ids] }, error: null }
    case 'set_listing': {
      const stores = [...new Set(form.listing_store_ids)]
      return { action: { op: 'set_listing', listed: form.listed, ...(stores.length ? { store_ids: stores } : {}) }, error: null }
    }
  }
}

export interface BulkChangeLike {
  product_id: number
  product_name: string
  spec?: string
  barcode?: string | null
  field: string
  store_id?: number | null
  before: unknown
  after: unknown
}

/** How the preview shows values that are ids or codes. */
export interface ChangeContext {
  categoryName: (id: number) => string
  tagName: (id: number) => string
  storeName: (id: number) => string
  statusLabel: (status: string) => string
  /** "Listed" / "Not listed" for a store listing. */
  listedLabel?: (listed: boolean) => string
  /** Text for "nothing" (no member price, no category, the product's own threshold). */
  none: string
}

export interface ChangeRow {
  key: string
  productId: number
  productName: string
  /** Spec and barcode, as ProductLabel shows them. */
  productSpec: string
  productBarcode: string | null
  /** Label key under `catalog.fields.` for the changed field. */
  fieldKey: string
  store: string | null
  before: string
  after: string
  /** For prices: after - before in fen (negative = cheaper), else null. */
  deltaFen: number | null
}

function show(field: string, value: unknown, ctx: ChangeContext): string {
  if (field === 'is_listed' && ctx.listedLabel) return ctx.listedLabel(Boolean(value))
  if (value === null || value === undefined) return ctx.none
  if (field.endsWith('_fen') && typeof value === 'number') return fenToYuan(value)
  if (field === 'status') return ctx.statusLabel(String(value))
  if (field === 'category_id' && typeof value === 'number') return ctx.categoryName(value)
  if (field === 'tag_ids' && Array.isArray(value)) {
    return value.length ? value.map((id) => ctx.tagName(Number(id))).join(', ') : ctx.none
  }
  return String(value)
}

const FIELD_KEYS: Record<string, string> = {
  price_fen: 'price',
  member_price_fen: 'memberPrice',
  cost_fen: 'cost',
  store_price_fen: 'storePrice',
  status: 'status',
  low_stock_threshold: 'threshold',
  category_id: 'category',
  tag_ids: 'tags',
  is_listed: 'listed',
}

/** The preview table's rows: one per change, values in yuan / names, never raw fen or ids. */
export function changeRows(changes: BulkChangeLike[], ctx: ChangeContext): ChangeRow[] {
  return changes.map((c) => {
    const money = c.field.endsWith('_fen')
    const before = c.before
    const after = c.after
    return {
      key: `${c.product_id}:${c.field}:${c.store_id ?? ''}`,
      productId: c.product_id,
      productName: c.product_name,
      productSpec: c.spec ?? '',
      productBarcode: c.barcode ?? null,
      fieldKey: FIELD_KEYS[c.field] ?? c.field,
      store: c.store_id == null ? null : ctx.storeName(c.store_id),
      before: show(c.field, before, ctx),
      after: show(c.field, after, ctx),
      deltaFen: money && typeof after === 'number' ? after - (typeof before === 'number' ? before : 0) : null,
    }
  })
}

/** The selection sent with a bulk request: the ticked rows, or the list's current filter. */
export function bulkSelection(
  scope: 'ids' | 'filter',
  ids: number[],
  filter: Record<string, unknown>,
): { ids: number[] } | { filter: Record<string, unknown> } {
  if (scope === 'ids') return { ids: [...ids] }
  const clean: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(filter)) {
    if (v !== '' && v !== null && v !== undefined && k !== 'sort') clean[k] = v
  }
  return { filter: clean }
}

// --- import report ------------------------------------------------------------------------

export interface ImportRowErrorLike {
  row: number
  column: string | null
  reason: string
  message: string
  value?: string | null
}

export interface ImportReportLike {
  status: 'imported' | 'partial' | 'rejected'
  mode: string
  total_rows: number
  valid_rows: number
  created: number
  updated: number
  skipped: number
  errors: ImportRowErrorLike[]
  errors_truncated?: boolean
  categories_created?: string[]
  tags_created?: string[]
}

export interface ImportReportRow {
  key: string
  row: number
  column: string
  /** i18n key for the reason (validation.<reason>; validation.invalid for one the console does
   * not know): the server's `message` is English and never shown. */
  reasonKey: string
  message: string
  value: string
}

/** The report's lines in row order, each naming row, column and a translatable reason. */
export function importReportRows(report: ImportReportLike, hasKey: (key: string) => boolean): ImportReportRow[] {
  return [...report.errors]
    .sort((a, b) => a.row - b.row || (a.column ?? '').localeCompare(b.column ?? ''))
    .map((e, i) => {
      const key = `validation.${e.reason}`
      return {
        key: `${e.row}:${e.column ?? ''}:${i}`,
        row: e.row,
        column: e.column ?? '',
        reasonKey: hasKey(key) ? key : 'validation.invalid',
        message: e.message,
        value: e.value ?? '',
      }
    })
}

/** How many distinct rows were refused. */
export function badRowCount(report: ImportReportLike): number {
  return new Set(report.errors.map((e) => e.row)).size
}

/** The element-plus alert type and the summary key for a report. */
export function reportTone(report: ImportReportLike): { type: 'success' | 'warning' | 'error'; key: string } {
  if (report.status === 'imported') return { type: 'success', key: 'catalog.import.statusImported' }
  if (report.status === 'partial') return { type: 'warning', key: 'catalog.import.statusPartial' }
  return { type: 'error', key: 'catalog.import.statusRejected' }
}

/** Job progress as a whole percent (0 while the total is unknown). */
export function jobPercent(job: { progress: number; total: number | null; status: string }): number {
  if (job.status === 'succeeded') return 100
  if (!job.total || job.total <= 0) return 0
  return Math.max(0, Math.min(99, Math.floor((job.progress * 100) / job.total)))
}

/** Whether a job result looks like an import report (the job's `result`). */
export function isImportReport(value: unknown): value is ImportReportLike {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return typeof v.status === 'string' && Array.isArray(v.errors) && typeof v.total_rows === 'number'
}

// --- categories ---------------------------------------------------------------------------

export interface CategoryOption {
  [key: string]: unknown
  value: number
  label: string
  disabled?: boolean
  children?: CategoryOption[]
}

/** Cascader options; `maxDepth` limits how deep a pick may be (a parent for a new child). */
export function categoryOptions(nodes: CategoryNodeLike[], maxDepth = MAX_CATEGORY_DEPTH, exclude: number | null = null): CategoryOption[] {
  const out: CategoryOption[] = []
  for (const n of nodes) {
    if (n.id === exclude || n.depth > maxDepth) continue
    const children = categoryOptions(n.children ?? [], maxDepth, exclude)
    out.push(children.length ? { value: n.id, label: n.name, children } : { value: n.id, label: n.name })
  }
  return out
}

/** id -> "饮料 / 碳酸饮料 / 可乐" for every category. */
export function categoryPaths(nodes: CategoryNodeLike[], prefix = ''): Map<number, string> {
  const out = new Map<number, string>()
  for (const n of nodes) {
    const path = prefix ? `${prefix} / ${n.name}` : n.name
    out.set(n.id, path)
    for (const [id, p] of categoryPaths(n.children ?? [], path)) out.set(id, p)
  }
  return out
}

/** Levels in the sub-tree under and including `node` (a leaf is 1). */
export function subtreeHeight(node: CategoryNodeLike): number {
  const kids = node.children ?? []
  return 1 + (kids.length ? Math.max(...kids.map(subtreeHeight)) : 0)
}

/**
 * Whether a dragged category may be dropped there: the result must stay within three levels.
 * `type` is element-plus's drop position relative to `target`.
 */
export function canDrop(dragged: CategoryNodeLike, target: CategoryNodeLike, type: 'prev' | 'next' | 'inner'): boolean {
  if (dragged.id === target.id) return false
  const newDepth = type === 'inner' ? target.depth + 1 : target.depth
  return newDepth + subtreeHeight(dragged) - 1 <= MAX_CATEGORY_DEPTH
}

export type CategoryDropPlan =
  | { kind: 'reorder'; parent_id: number | null; ids: number[] }
  | { kind: 'move'; id: number; parent_id: number | null; position: number }

/**
 * What to send after a drop, from the tree as it is *after* element-plus moved the node:
 * the same parent -> reorder its children; another parent -> move with the new position.
 */
export function dropPlan(dragged: CategoryNodeLike, tree: CategoryNodeLike[]): CategoryDropPlan | null {
  const find = (nodes: CategoryNodeLike[], parent: number | null): { parent: number | null; siblings: CategoryNodeLike[] } | null => {
    for (const n of nodes) {
      if (n.id === dragged.id) return { parent, siblings: nodes }
      const hit = find(n.children ?? [], n.id)
      if (hit) return hit
    }
    return null
  }
  const where = find(tree, null)
  if (!where) return null
  const ids = where.siblings.map((s) => s.id)
  if (where.parent === dragged.parent_id) return { kind: 'reorder', parent_id: where.parent, ids }
  return { kind: 'move', id: dragged.id, parent_id: where.parent, position: ids.indexOf(dragged.id) }
}

// --- list query ---------------------------------------------------------------------------

export type SortKey = 'id' | '-id' | 'name' | '-name' | 'brand' | '-brand' | 'price_fen' | '-price_fen' | 'created_at' | '-created_at' | 'updated_at' | '-updated_at'

/** element-plus's sort-change event -> the API's sort key (default: most recently updated). */
export function sortKey(prop: string | null | undefined, order: 'ascending' | 'descending' | null | undefined): SortKey {
  const allowed = ['id', 'name', 'brand', 'price_fen', 'created_at', 'updated_at']
  if (!prop || !order || !allowed.includes(prop)) return '-updated_at'
  return (order === 'descending' ? `-${prop}` : prop) as SortKey
}

/** The second line of a product's label in a list: "500ml · 6901234567892" (spec, barcode). */
export function productDetail(spec?: string | null, barcode?: string | null): string {
  return [spec, barcode].filter((x): x is string => !!x && x.trim() !== '').join(' · ')
}

/** A product named in one line (a dialog title, a confirmation): "加多宝凉茶 500ml". */
export function productTitle(p: { product_name?: string; name?: string; spec?: string | null }): string {
  const name = p.product_name ?? p.name ?? ''
  return p.spec ? `${name} ${p.spec}` : name
}

// Catalog console logic: the product form (yuan <-> integer fen), listing rows, image checks,
// bulk-edit actions and their preview rows, the import report, the category tree rules.
import { describe, expect, it } from 'vitest'
import {
  badRowCount,
  buildBulkAction,
  bulkSelection,
  STOCK_STATES,
  canDrop,
  categoryOptions,
  categoryPaths,
  changeRows,
  changedFields,
  dropPlan,
  emptyBulkForm,
  emptyProductForm,
  formFieldFor,
  formToBody,
  imageProblem,
  importReportRows,
  isImportReport,
  jobPercent,
  listingBody,
  listingRows,
  parsePercent,
  productDetail,
  productTitle,
  productToForm,
  reportTone,
  sortKey,
  splitBarcodes,
  type CategoryNodeLike,
  type ChangeContext,
  type ImportReportLike,
  type ProductLike,
} from '@/views/catalog/logic'

const cola: ProductLike = {
  id: 7,
  name: '可口可乐 500ml',
  brand: '可口可乐',
  spec: '500ml',
  unit: '瓶',
  category_id: 3,
  price_fen: 350,
  cost_fen: 210,
  member_price_fen: null,
  shelf_life_days: 365,
  track_batches: false,
  low_stock_threshold: 12,
  status: 'on_sale',
  barcodes: [{ code: '6954767423579', kind: 'ean13' }],
  tags: [{ id: 2, name: '热销' }],
}

describe('product form', () => {
  it('shows fen as yuan text and reads it back as the same integers', () => {
    const form = productToForm(cola)
    expect(form.price).toBe('3.50')
    expect(form.cost).toBe('2.10')
    expect(form.member_price).toBe('')
    expect(form.barcodes).toEqual(['6954767423579'])
    const { body } = formToBody(form)
    expect(body).not.toBeNull()
    expect(body!.price_fen).toBe(350)
    expect(body!.cost_fen).toBe(210)
    expect(body!.member_price_fen).toBeNull()
    expect(body!.tag_ids).toEqual([2])
  })

  it('converts typed yuan to integer fen without float drift', () => {
    const form = { ...emptyProductForm(), name: '矿泉水', price: '0.29', cost: '19.99', member_price: '1.1' }
    const { body } = formToBody(form)
    expect(body!.price_fen).toBe(29)
    expect(body!.cost_fen).toBe(1999)
    expect(body!.member_price_fen).toBe(110)
    expect(Number.isInteger(body!.price_fen)).toBe(true)
  })

  it('refuses three decimals, negatives and text instead of rounding', () => {
    const form = { ...emptyProductForm(), name: 'x', price: '3.505', cost: '-1', member_price: 'abc', shelf_life_days: '0', low_stock_threshold: '1.5' }
    const { body, errors } = formToBody(form)
    expect(body).toBeNull()
    expect(errors).toEqual({ price: 'not_fen', cost: 'not_fen', member_price: 'not_fen', shelf_life_days: 'shelf_life', low_stock_threshold: 'not_a_count' })
  })

  it('requires a name and a price', () => {
    const { errors } = formToBody(emptyProductForm())
    expect(errors).toEqual({ name: 'required', price: 'required' })
  })

  it('defaults an empty cost to 0 and empty texts to null', () => {
    const { body } = formToBody({ ...emptyProductForm(), name: ' 鸡蛋 ', price: '12' })
    expect(body).toMatchObject({ name: '鸡蛋', price_fen: 1200, cost_fen: 0, brand: null, spec: null, unit: null, shelf_life_days: null, low_stock_threshold: 0 })
  })

  it('splits pasted barcodes on commas, spaces and new lines, upper-cased and unique', () => {
    expect(splitBarcodes('6954767423579, sm000123\n6954767423579；FRESH-042')).toEqual(['6954767423579', 'SM000123', 'FRESH-042'])
    expect(splitBarcodes('  ')).toEqual([])
  })

  it('patches only the fields that changed', () => {
    const before = formToBody(productToForm(cola)).body!
    const after = formToBody({ ...productToForm(cola), price: '3.80', barcodes: ['6954767423579', 'SM1'] }).body!
    expect(changedFields(before, after)).toEqual({ price_fen: 380, barcodes: ['6954767423579', 'SM1'] })
  })

  it('maps API field paths to form items, keeping the barcode index', () => {
    expect(formFieldFor('barcodes[1]')).toEqual({ field: 'barcodes', index: 1 })
    expect(formFieldFor('body.barcodes.0')).toEqual({ field: 'barcodes', index: 0 })
    expect(formFieldFor('body.price_fen')).toEqual({ field: 'price', index: null })
    expect(formFieldFor('member_price_fen')).toEqual({ field: 'member_price', index: null })
    expect(formFieldFor('body')).toBeNull()
    expect(formFieldFor(null)).toBeNull()
  })
})

describe('store listing rows', () => {
  const stores = [
    { id: 1, name: '静安寺自助店' },
    { id: 2, name: '徐家汇自助店' },
  ]

  it('has a row per store, with the store price in yuan when set', () => {
    const rows = listingRows(stores, [{ store_id: 2, is_listed: true, store_price_fen: 399, low_stock_threshold: null }])
    expect(rows).toEqual([
      { store_id: 1, store_name: '静安寺自助店', is_listed: false, store_price: '', threshold: '', known: false },
      { store_id: 2, store_name: '徐家汇自助店', is_listed: true, store_price: '3.99', threshold: '', known: true },
    ])
  })

  it('sends fen, null for "use the product value", and refuses bad input', () => {
    const row = { store_id: 1, store_name: 'x', is_listed: true, store_price: '4.2', threshold: '', known: false }
    expect(listingBody(row)).toEqual({ body: { is_listed: true, store_price_fen: 420, low_stock_threshold: null }, error: null })
    expect(listingBody({ ...row, store_price: '' }).body?.store_price_fen).toBeNull()
    expect(listingBody({ ...row, store_price: '4.205' }).error).toBe('store_price')
    expect(listingBody({ ...row, threshold: '-3' }).error).toBe('threshold')
  })
})

describe('image checks before upload', () => {
  it('accepts JPEG, PNG and WebP up to 5 MB', () => {
    expect(imageProblem({ type: 'image/png', size: 1000 })).toBeNull()
    expect(imageProblem({ type: 'image/webp', size: 5 * 1024 * 1024 })).toBeNull()
  })
  it('names the reason otherwise', () => {
    expect(imageProblem({ type: 'image/gif', size: 10 })).toBe('unsupported_format')
    expect(imageProblem({ type: 'image/jpeg', size: 20 * 1024 * 1024 })).toBe('too_large')
  })
})

describe('bulk edit actions', () => {
  it('adjusts by a percent kept as text (no float)', () => {
    const r = buildBulkAction({ ...emptyBulkForm(), op: 'adjust_price', adjust_by: 'percent', delta: '-10' })
    expect(r.action).toEqual({ op: 'adjust_price', field: 'price_fen', percent: '-10', store_id: null })
    expect(parsePercent('+2.50')).toBe('2.50')
    expect(parsePercent('0')).toBeNull()
    expect(parsePercent('-101')).toBeNull()
    expect(parsePercent('1.234')).toBeNull()
  })

  it('adjusts by an amount in yuan sent as fen', () => {
    const r = buildBulkAction({ ...emptyBulkForm(), op: 'adjust_price', adjust_by: 'amount', delta: '-0.5' })
    expect(r.action).toEqual({ op: 'adjust_price', field: 'price_fen', by_fen: -50, store_id: null })
    expect(buildBulkAction({ ...emptyBulkForm(), op: 'adjust_price', adjust_by: 'amount', delta: '0' }).error).toBe('delta')
  })

  it('sets a price, in a store for the retail price only', () => {
    const ok = buildBulkAction({ ...emptyBulkForm(), op: 'set_price', amount: '9.9', store_id: 3 })
    expect(ok.action).toEqual({ op: 'set_price', field: 'price_fen', amount_fen: 990, store_id: 3 })
    expect(buildBulkAction({ ...emptyBulkForm(), op: 'set_price', amount: '9.9', field: 'cost_fen', store_id: 3 }).error).toBe('storePriceOnly')
    expect(buildBulkAction({ ...emptyBulkForm(), op: 'set_price', amount: '' }).error).toBe('amount')
  })

  it('sets a threshold; an empty one clears a store override but is refused chain-wide', () => {
    expect(buildBulkAction({ ...emptyBulkForm(), op: 'set_threshold', threshold: '8' }).action).toEqual({ op: 'set_threshold', low_stock_threshold: 8, store_id: null })
    expect(buildBulkAction({ ...emptyBulkForm(), op: 'set_threshold', threshold: '', store_id: 2 }).action).toEqual({ op: 'set_threshold', low_stock_threshold: null, store_id: 2 })
    expect(buildBulkAction({ ...emptyBulkForm(), op: 'set_threshold', threshold: '' }).error).toBe('threshold')
  })

  it('requires tags to add, allows moving out of any category', () => {
    expect(buildBulkAction({ ...emptyBulkForm(), op: 'add_tags' }).error).toBe('tags')
    expect(buildBulkAction({ ...emptyBulkForm(), op: 'move_category', category_id: null }).action).toEqual({ op: 'move_category', category_id: null })
    expect(buildBulkAction({ ...emptyBulkForm(), op: 'set_status', status: 'off_sale' }).action).toEqual({ op: 'set_status', status: 'off_sale' })
  })

  it('selects the ticked ids, or the filter without empty values', () => {
    expect(bulkSelection('ids', [3, 1], { q: 'x' })).toEqual({ ids: [3, 1] })
    expect(bulkSelection('filter', [3], { q: 'kkkl', status: null, category_id: 4, tag_id: '' })).toEqual({ filter: { q: 'kkkl', category_id: 4 } })
  })

  it('carries the stock state of the search into a filter selection', () => {
    expect(STOCK_STATES).toEqual(['ok', 'low', 'out', 'negative'])
    expect(bulkSelection('filter', [], { stock_state: 'low', store_id: 2, sort: 'name' })).toEqual({ filter: { stock_state: 'low', store_id: 2 } })
  })
})

describe('bulk preview rows', () => {
  const ctx: ChangeContext = {
    categoryName: (id) => ({ 3: '饮料 / 碳酸饮料' })[id] ?? `#${id}`,
    tagName: (id) => ({ 2: '热销', 5: '夏季' })[id] ?? `#${id}`,
    storeName: (id) => ({ 1: '静安寺自助店' })[id] ?? `#${id}`,
    statusLabel: (s) => (s === 'on_sale' ? '在售' : '停售'),
    none: '无',
  }

  it('shows prices in yuan with the difference in fen', () => {
    const [row] = changeRows([{ product_id: 7, product_name: '可口可乐', field: 'price_fen', before: 350, after: 315 }], ctx)
    expect(row).toMatchObject({ fieldKey: 'price', before: '3.50', after: '3.15', deltaFen: -35, store: null })
  })

  it('names stores, statuses, categories and tags, and "none" for empty values', () => {
    const rows = changeRows(
      [
        { product_id: 1, product_name: 'a', field: 'store_price_fen', store_id: 1, before: null, after: 299 },
        { product_id: 1, product_name: 'a', field: 'status', before: 'on_sale', after: 'off_sale' },
        { product_id: 1, product_name: 'a', field: 'category_id', before: null, after: 3 },
        { product_id: 1, product_name: 'a', field: 'tag_ids', before: [2], after: [2, 5] },
        { product_id: 1, product_name: 'a', field: 'low_stock_threshold', store_id: 1, before: 4, after: null },
      ],
      ctx,
    )
    expect(rows.map((r) => [r.fieldKey, r.store, r.before, r.after, r.deltaFen])).toEqual([
      ['storePrice', '静安寺自助店', '无', '2.99', 299],
      ['status', null, '在售', '停售', null],
      ['category', null, '无', '饮料 / 碳酸饮料', null],
      ['tags', null, '热销', '热销, 夏季', null],
      ['threshold', '静安寺自助店', '4', '无', null],
    ])
    expect(new Set(rows.map((r) => r.key)).size).toBe(rows.length)
  })
})

describe('import report', () => {
  const report: ImportReportLike = {
    status: 'rejected',
    mode: 'all_or_nothing',
    total_rows: 3,
    valid_rows: 1,
    created: 0,
    updated: 0,
    skipped: 3,
    errors: [
      { row: 4, column: '售价(元)', reason: 'not_a_number', message: 'is not an amount in yuan', value: '3.505' },
      { row: 2, column: '条码', reason: 'bad_check_digit', message: 'EAN13 check digit is wrong', value: '6901234567891' },
      { row: 2, column: '名称', reason: 'brand_new_reason', message: 'something new' },
    ],
  }
  const known = new Set(['validation.not_a_number', 'validation.bad_check_digit'])

  it('lists row, column and a translatable reason in row order', () => {
    const rows = importReportRows(report, (k) => known.has(k))
    expect(rows.map((r) => [r.row, r.column, r.reasonKey, r.value])).toEqual([
      [2, '名称', 'validation.invalid', ''], // never the English message
      [2, '条码', 'validation.bad_check_digit', '6901234567891'],
      [4, '售价(元)', 'validation.not_a_number', '3.505'],
    ])
  })

  it('counts bad rows and picks the tone', () => {
    expect(badRowCount(report)).toBe(2)
    expect(reportTone(report)).toEqual({ type: 'error', key: 'catalog.import.statusRejected' })
    expect(reportTone({ ...report, status: 'partial' }).type).toBe('warning')
    expect(reportTone({ ...report, status: 'imported' }).type).toBe('success')
  })

  it('recognises a report in a job result and computes progress', () => {
    expect(isImportReport(report)).toBe(true)
    expect(isImportReport({ job_id: 3 })).toBe(false)
    expect(isImportReport(null)).toBe(false)
    expect(jobPercent({ progress: 0, total: null, status: 'queued' })).toBe(0)
    expect(jobPercent({ progress: 1500, total: 6000, status: 'running' })).toBe(25)
    expect(jobPercent({ progress: 6000, total: 6000, status: 'running' })).toBe(99)
    expect(jobPercent({ progress: 6000, total: 6000, status: 'succeeded' })).toBe(100)
  })
})

describe('category tree', () => {
  const tree: CategoryNodeLike[] = [
    {
      id: 1,
      parent_id: null,
      name: '饮料',
      depth: 1,
      sort_order: 0,
      children: [
        { id: 2, parent_id: 1, name: '碳酸饮料', depth: 2, sort_order: 0, children: [{ id: 3, parent_id: 2, name: '可乐', depth: 3, sort_order: 0, children: [] }] },
        { id: 4, parent_id: 1, name: '茶饮料', depth: 2, sort_order: 1, children: [] },
      ],
    },
    { id: 5, parent_id: null, name: '零食', depth: 1, sort_order: 1, children: [] },
  ]

  it('builds full paths and picker options', () => {
    expect(categoryPaths(tree).get(3)).toBe('饮料 / 碳酸饮料 / 可乐')
    const opts = categoryOptions(tree, 2)
    expect(opts[0]!.children!.map((c) => c.value)).toEqual([2, 4])
    expect(opts[0]!.children![0]!.children).toBeUndefined()
    expect(categoryOptions(tree, 3, 2)[0]!.children!.map((c) => c.value)).toEqual([4])
  })

  it('refuses drops that would nest deeper than three levels', () => {
    const cola = tree[0]!.children![0]!.children![0]!
    const carbonated = tree[0]!.children![0]!
    expect(canDrop(cola, tree[1]!, 'inner')).toBe(true) // 零食 > 可乐: level 2
    expect(canDrop(carbonated, tree[0]!.children![1]!, 'inner')).toBe(false) // would reach level 4
    expect(canDrop(carbonated, tree[1]!, 'next')).toBe(true) // top level, two levels deep
    expect(canDrop(cola, cola, 'inner')).toBe(false)
  })

  it('plans a reorder within the same parent and a move to another', () => {
    const reordered = structuredClone(tree)
    reordered[0]!.children!.reverse()
    expect(dropPlan(tree[0]!.children![1]!, reordered)).toEqual({ kind: 'reorder', parent_id: 1, ids: [4, 2] })
    const moved = structuredClone(tree)
    const tea = moved[0]!.children!.pop()!
    moved[1]!.children = [tea]
    expect(dropPlan(tree[0]!.children![1]!, moved)).toEqual({ kind: 'move', id: 4, parent_id: 5, position: 0 })
    expect(dropPlan({ ...tree[1]!, id: 99 }, tree)).toBeNull()
  })
})

describe('sort', () => {
  it('maps table sort events to API keys', () => {
    expect(sortKey('price_fen', 'descending')).toBe('-price_fen')
    expect(sortKey('name', 'ascending')).toBe('name')
    expect(sortKey('name', null)).toBe('-updated_at')
    expect(sortKey('barcodes', 'ascending')).toBe('-updated_at')
  })
})

describe('a product as lists name it', () => {
  it('tells same-name products apart by spec and barcode', () => {
    expect(productDetail('310ml罐装', '6938888889896')).toBe('310ml罐装 · 6938888889896')
    expect(productDetail('', '6938888889896')).toBe('6938888889896')
    expect(productDetail('500ml', null)).toBe('500ml')
    expect(productDetail(undefined, undefined)).toBe('')
    expect(productTitle({ product_name: '加多宝凉茶', spec: '500ml' })).toBe('加多宝凉茶 500ml')
    expect(productTitle({ name: '加多宝凉茶' })).toBe('加多宝凉茶')
  })
})

describe('bulk listing', () => {
  it('lists in every store of the user unless stores are chosen, and unlists', () => {
    expect(buildBulkAction({ ...emptyBulkForm(), op: 'set_listing' }).action).toEqual({ op: 'set_listing', listed: true })
    expect(buildBulkAction({ ...emptyBulkForm(), op: 'set_listing', listed: false, listing_store_ids: [3, 1, 3] }).action).toEqual({
      op: 'set_listing',
      listed: false,
      store_ids: [3, 1],
    })
  })

  it('previews a listing change as listed / not listed in the store', () => {
    const rows = changeRows([{ product_id: 7, product_name: '康师傅冰红茶', spec: '500ml', barcode: '6925303773106', field: 'is_listed', store_id: 2, before: false, after: true }], {
      categoryName: String,
      tagName: String,
      storeName: (id) => `店${id}`,
      statusLabel: String,
      listedLabel: (v) => (v ? '已上架' : '未上架'),
      none: '—',
    })
    expect(rows.map((r) => [r.fieldKey, r.store, r.before, r.after])).toEqual([['listed', '店2', '未上架', '已上架']])
    expect([rows[0]!.productSpec, rows[0]!.productBarcode]).toEqual(['500ml', '6925303773106'])
  })
})

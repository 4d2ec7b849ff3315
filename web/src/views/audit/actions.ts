// An audit action code ("purchase_order.submitted", "order.issue.remind") in words: the entity
// and each further part looked up in the locale, any part without a translation shown as it is.
// The code itself stays the filter's language and is shown beside the words.

export interface Translator {
  t: (key: string, values?: Record<string, unknown>) => string
  te: (key: string) => boolean
}

function part(kind: 'entityTypes' | 'verbs', value: string, { t, te }: Translator): string {
  const key = `audit.${kind}.${value}`
  return te(key) ? t(key) : value
}

export function entityLabel(entity: string, tr: Translator): string {
  return part('entityTypes', entity, tr)
}

export function actionLabel(code: string, tr: Translator): string {
  const [entity = '', ...rest] = code.split('.')
  if (!rest.length) return entityLabel(entity, tr)
  const verb = rest.map((v) => part('verbs', v, tr)).join(' · ')
  return tr.t('audit.actionFormat', { entity: entityLabel(entity, tr), verb })
}

/** The entity types the server writes entries for, as the filter offers them (a type is one
 * option even where two codes share a name: "transfer" is only the prefix of transfer actions). */
export const ENTITY_TYPES = [
  'category', 'job', 'job_run', 'order', 'payment_account', 'product', 'product_import',
  'purchase_order', 'role', 'stock', 'stock_alert', 'stock_alert_route', 'stock_discrepancy',
  'stock_transfer', 'stocktake', 'store', 'supplier', 'supplier_statement', 'tag', 'terminal', 'user',
]

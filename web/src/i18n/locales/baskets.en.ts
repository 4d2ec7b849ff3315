// English for the frequently-bought-together page (spread into en.ts).
export const basketsPermissionsEn = {
  analytics_run: 'Run basket analyses',
}

export const basketsFieldsEn = {
  min_support: 'Minimum support',
  min_confidence: 'Minimum confidence',
  min_lift: 'Minimum lift',
  max_len: 'Largest set',
  run_id: 'Analysis',
}

export const basketsEn = {
  baskets: {
    menu: 'Bought together',
    title: 'Frequently bought together',
    intro:
      'Which products go into the same basket (a paid order, less cancelled, closed and wholly refunded ones). Support: share of baskets with the products; confidence: of the baskets with the first, the share that also hold the others; lift: how many times more often than chance.',
    chain: 'Whole chain',
    run: 'Analysis',
    noRun: 'No analysis yet',
    noRunHint: 'Start one for a store and a window; it runs in the background.',
    newRun: 'New analysis',
    start: 'Start',
    store: 'Store',
    window: 'Window',
    minSupport: 'Min support (%)',
    minConfidence: 'Min confidence (%)',
    minLift: 'Min lift',
    maxLen: 'Largest set',
    maxLenValue: '{n} products',
    nightly: 'nightly',
    manual: 'by hand',
    status: { queued: 'Queued', running: 'Running', succeeded: 'Done', failed: 'Failed' },
    summary: '{baskets} baskets · {products} products · {rules} rules',
    truncated: 'More rules passed the thresholds than are kept: the strongest by lift are shown.',
    startedNote: 'Started: the analysis runs in the background.',
    tabs: { rules: 'Rules', boughtWith: 'Bought with', graph: 'Graph', suggestions: 'Suggestions' },
    product: 'Product',
    pickProduct: 'Choose a product',
    antecedent: 'Who buys',
    consequent: 'Also buys',
    baskets: 'Baskets',
    support: 'Support',
    confidence: 'Confidence',
    lift: 'Lift',
    items: 'Products in rule',
    sort: 'Order by',
    emptyRules: 'No rule passes these thresholds',
    emptyRulesHint: 'Lower the minimum support or confidence and start a new analysis.',
    emptyPartners: 'Nothing is bought with this product often enough',
    productBaskets: 'In {count} baskets ({support})',
    notFrequent: 'Not among the frequent products of this analysis',
    emptyGraph: 'No pairs to draw',
    emptySuggestions: 'No suggestion from this analysis',
    shelf: 'Shelf placement',
    bundle: 'Bundle',
    shelfText:
      'Who buys {first} also buys {others} in {confidence} of cases, {lift}× more often than chance: place {others} next to {first}.',
    bundleText: '{all} are bought together in {count} baskets (lift {lift}): offer them as a bundle.',
    separator: ', ',
  },
}

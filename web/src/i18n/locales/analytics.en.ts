// English for the statistics page and the overview's today panel (spread into en.ts).
export const analyticsPermissionsEn = {
  analytics_read: 'View sales statistics',
}

export const analyticsEn = {
  analytics: {
    menu: { statistics: 'Sales statistics' },
    title: 'Sales statistics',
    store: 'Store',
    allStores: 'All my stores',
    window: 'Window',
    start: 'From',
    end: 'To',
    granularity: { day: 'By day', week: 'By week', month: 'By month' },
    period: 'Period',
    current: 'This period',
    previous: 'Previous period',
    lastYear: 'Same period last year',
    vsPrevious: 'vs previous',
    vsLastYear: 'vs last year',
    zoneNote: "Each store's days are counted in its own time zone.",
    figures: {
      orders: 'Orders',
      sales: 'Sales',
      refunds: 'Refunds',
      net: 'Net sales',
      aov: 'Average order',
      items: 'Items',
      itemsPerOrder: 'Items per order',
      members: 'Paying members',
    },
    chart: { net: 'Net sales (¥)', netLastYear: 'Net sales a year before (¥)', orders: 'Orders' },
    hot: 'Best sellers',
    product: 'Product',
    quantity: 'Units',
    today: {
      title: 'Today so far',
      orders: 'Orders',
      sales: 'Sales',
      net: 'Net sales',
      members: 'Paying members',
    },
  },
}

// 销售统计页与概览“今日”面板的中文（展开到 zh-CN.ts）。
export const analyticsPermissionsZhCN = {
  analytics_read: '查看销售统计',
}

export const analyticsZhCN = {
  analytics: {
    menu: { statistics: '销售统计' },
    title: '销售统计',
    store: '门店',
    allStores: '我的全部门店',
    window: '时间范围',
    start: '开始日期',
    end: '结束日期',
    granularity: { day: '按日', week: '按周', month: '按月' },
    period: '周期',
    current: '本期',
    previous: '上期',
    lastYear: '去年同期',
    vsPrevious: '环比',
    vsLastYear: '同比',
    zoneNote: '各门店的日期按门店所在时区计算。',
    figures: {
      orders: '订单数',
      sales: '销售额',
      refunds: '退款额',
      net: '净销售额',
      aov: '客单价',
      items: '件数',
      itemsPerOrder: '每单件数',
      members: '消费会员数',
    },
    chart: { net: '净销售额（元）', netLastYear: '去年同期净销售额（元）', orders: '订单数' },
    hot: '热销商品',
    product: '商品',
    quantity: '件数',
    today: {
      title: '今日实时',
      orders: '订单数',
      sales: '销售额',
      net: '净销售额',
      members: '消费会员数',
    },
  },
}

// 会员页面的中文（展开到 zh-CN.ts）。
export const membersErrorsZhCN = {
  member_not_found: '会员不存在',
  member_inactive: '该会员已停用或已注销',
  mobile_taken: '该手机号已被其他会员使用',
  card_taken: '该会员卡号已被其他会员使用',
  insufficient_points: '会员积分不足',
  tier_not_found: '会员等级不存在',
  tier_taken: '等级编码或级别已被使用',
  tier_in_use: '仍有会员处于该等级，请先调整',
}

export const membersPermissionsZhCN = {
  member_read: '查看会员',
  member_write: '管理会员',
  member_pii: '查看会员姓名和手机号',
  member_points: '积分兑换与调整',
  member_tier: '会员等级与积分规则',
  member_export: '导出会员',
}

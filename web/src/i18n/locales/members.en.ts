// English for the members pages (spread into en.ts).
export const membersErrorsEn = {
  member_not_found: 'No such member',
  member_inactive: 'This member is disabled or erased',
  mobile_taken: 'Another member has this mobile number',
  card_taken: 'Another member has this card number',
  insufficient_points: 'The member does not hold that many points',
  tier_not_found: 'No such tier',
  tier_taken: 'Another tier has this code or rank',
  tier_in_use: 'Members hold this tier; move them first',
}

export const membersPermissionsEn = {
  member_read: 'View members',
  member_write: 'Manage members',
  member_pii: "See members' names and mobiles",
  member_points: 'Redeem and adjust points',
  member_tier: 'Tiers and points rules',
  member_export: 'Export members',
}

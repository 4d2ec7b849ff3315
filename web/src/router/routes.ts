// Every console page, with the permission it needs and where it sits in the side menu.
import type { RouteRecordRaw } from 'vue-router'
import { Perm } from '@/permissions/codes'
import ConsoleLayout from '@/layouts/ConsoleLayout.vue'
import LoginView from '@/views/auth/LoginView.vue'

export const consoleRoutes: RouteRecordRaw[] = [
  {
    path: '',
    name: 'dashboard',
    component: () => import('@/views/home/DashboardView.vue'),
    meta: { titleKey: 'menu.dashboard', menu: { group: 'home', order: 0, icon: 'HomeFilled' } },
  },
  // --- catalog (products, import, categories, tags) ---
  {
    path: 'products',
    name: 'catalog-products',
    component: () => import('@/views/catalog/ProductsView.vue'),
    meta: { titleKey: 'catalog.menu.products', perm: Perm.PRODUCT_READ, menu: { group: 'catalog', order: 10, icon: 'Goods' } },
  },
  {
    path: 'products/import',
    name: 'catalog-import',
    component: () => import('@/views/catalog/ImportView.vue'),
    meta: { titleKey: 'catalog.menu.import', perm: Perm.PRODUCT_IMPORT, menu: { group: 'catalog', order: 20, icon: 'Upload' } },
  },
  {
    path: 'categories',
    name: 'catalog-categories',
    component: () => import('@/views/catalog/CategoriesView.vue'),
    meta: { titleKey: 'catalog.menu.categories', perm: Perm.PRODUCT_READ, menu: { group: 'catalog', order: 30, icon: 'Files' } },
  },
  {
    path: 'tags',
    name: 'catalog-tags',
    component: () => import('@/views/catalog/TagsView.vue'),
    meta: { titleKey: 'catalog.menu.tags', perm: Perm.PRODUCT_READ, menu: { group: 'catalog', order: 40, icon: 'PriceTag' } },
  },
  {
    path: 'stores',
    name: 'stores',
    component: () => import('@/views/stores/StoresView.vue'),
    meta: { titleKey: 'menu.stores', perm: Perm.STORE_READ, menu: { group: 'stores', order: 10, icon: 'Shop' } },
  },
  {
    path: 'terminals',
    name: 'terminals',
    component: () => import('@/views/terminals/TerminalsView.vue'),
    meta: { titleKey: 'menu.terminals', perm: Perm.TERMINAL_READ, menu: { group: 'stores', order: 20, icon: 'Monitor' } },
  },
  {
    path: 'terminals/fleet',
    name: 'terminal-fleet',
    component: () => import('@/views/terminals/FleetView.vue'),
    meta: { titleKey: 'terminals.fleet.title', perm: Perm.TERMINAL_READ, menu: { group: 'stores', order: 25, icon: 'Connection' } },
  },
  // --- inventory and purchasing (web-inventory) ---
  {
    path: 'inventory/stock',
    name: 'stock',
    component: () => import('@/views/inventory/StockView.vue'),
    meta: { titleKey: 'inventory.stockTitle', perm: Perm.STOCK_READ, menu: { group: 'inventory', order: 10, icon: 'Box' } },
  },
  {
    path: 'inventory/ledger',
    name: 'stock-ledger',
    component: () => import('@/views/inventory/LedgerView.vue'),
    meta: { titleKey: 'inventory.ledgerTitle', perm: Perm.STOCK_READ, menu: { group: 'inventory', order: 20, icon: 'List' } },
  },
  {
    path: 'inventory/alerts',
    name: 'stock-alerts',
    component: () => import('@/views/inventory/AlertsView.vue'),
    meta: { titleKey: 'alerts.title', perm: [Perm.ALERT_READ, Perm.STOCK_READ], menu: { group: 'inventory', order: 30, icon: 'Bell' } },
  },
  {
    path: 'inventory/alert-routes',
    name: 'alert-routes',
    component: () => import('@/views/inventory/AlertRoutesView.vue'),
    meta: { titleKey: 'alertRoutes.title', perm: Perm.ALERT_READ, menu: { group: 'inventory', order: 35, icon: 'Message' } },
  },
  {
    path: 'purchasing/suppliers',
    name: 'suppliers',
    component: () => import('@/views/purchasing/SuppliersView.vue'),
    meta: { titleKey: 'purchasing.suppliersTitle', perm: Perm.SUPPLIER_READ, menu: { group: 'inventory', order: 40, icon: 'OfficeBuilding' } },
  },
  {
    path: 'purchasing/orders',
    name: 'purchase-orders',
    component: () => import('@/views/purchasing/PurchaseOrdersView.vue'),
    meta: { titleKey: 'purchasing.ordersTitle', perm: Perm.PURCHASE_READ, menu: { group: 'inventory', order: 50, icon: 'Tickets' } },
  },
  {
    path: 'purchasing/reorder',
    name: 'reorder',
    component: () => import('@/views/purchasing/ReorderView.vue'),
    meta: { titleKey: 'purchasing.reorderTitle', perm: Perm.PURCHASE_READ, menu: { group: 'inventory', order: 60, icon: 'ShoppingCart' } },
  },
  {
    path: 'purchasing/transfers',
    name: 'transfers',
    component: () => import('@/views/purchasing/TransfersView.vue'),
    meta: { titleKey: 'purchasing.transfersTitle', perm: Perm.STOCK_READ, menu: { group: 'inventory', order: 70, icon: 'Van' } },
  },
  {
    path: 'purchasing/stocktakes',
    name: 'stocktakes',
    component: () => import('@/views/purchasing/StocktakesView.vue'),
    meta: { titleKey: 'purchasing.stocktakesTitle', perm: Perm.STOCK_READ, menu: { group: 'inventory', order: 80, icon: 'Finished' } },
  },
  // --- end inventory and purchasing ---
  // --- orders (web-orders) ---
  {
    path: 'orders',
    name: 'orders',
    component: () => import('@/views/orders/OrdersView.vue'),
    meta: { titleKey: 'orders.menu.list', perm: Perm.ORDER_READ, menu: { group: 'orders', order: 10, icon: 'Tickets' } },
  },
  {
    path: 'orders/issues',
    name: 'order-issues',
    component: () => import('@/views/orders/IssuesView.vue'),
    meta: { titleKey: 'orders.menu.issues', perm: Perm.ORDER_READ, menu: { group: 'orders', order: 20, icon: 'Warning' } },
  },
  {
    path: 'orders/:id(\\d+)',
    name: 'order-detail',
    component: () => import('@/views/orders/OrderDetailView.vue'),
    meta: { titleKey: 'orders.menu.list', perm: Perm.ORDER_READ },
  },
  // --- payments ---
  {
    path: 'payments',
    name: 'payments',
    component: () => import('@/views/payments/PaymentsView.vue'),
    meta: { titleKey: 'payments.menu.list', perm: Perm.PAYMENT_READ, menu: { group: 'orders', order: 40, icon: 'Money' } },
  },
  {
    path: 'payments/channels',
    name: 'payment-accounts',
    component: () => import('@/views/payments/PaymentAccountsView.vue'),
    meta: { titleKey: 'payments.menu.accounts', perm: Perm.PAYMENT_ACCOUNT_READ, menu: { group: 'orders', order: 50, icon: 'CreditCard' } },
  },
  // --- end payments ---
  // --- reconciliation ---
  {
    path: 'reconciliation',
    name: 'reconciliation',
    component: () => import('@/views/reconciliation/ReconciliationCalendarView.vue'),
    meta: { titleKey: 'reconciliation.menu.calendar', perm: Perm.RECONCILIATION_READ, menu: { group: 'orders', order: 55, icon: 'Calendar' } },
  },
  {
    path: 'reconciliation/day/:date(\\d{4}-\\d{2}-\\d{2})',
    name: 'reconciliation-day',
    component: () => import('@/views/reconciliation/ReconciliationDayView.vue'),
    meta: { titleKey: 'reconciliation.menu.calendar', perm: Perm.RECONCILIATION_READ },
  },
  {
    path: 'reconciliation/fees',
    name: 'reconciliation-fees',
    component: () => import('@/views/reconciliation/ReconciliationFeesView.vue'),
    meta: { titleKey: 'reconciliation.menu.fees', perm: Perm.RECONCILIATION_READ, menu: { group: 'orders', order: 56, icon: 'Coin' } },
  },
  // --- end reconciliation ---
  // --- analytics ---
  {
    path: 'analytics',
    name: 'analytics-statistics',
    component: () => import('@/views/analytics/StatisticsView.vue'),
    meta: { titleKey: 'analytics.menu.statistics', perm: Perm.ANALYTICS_READ, menu: { group: 'orders', order: 60, icon: 'TrendCharts' } },
  },
  {
    path: 'analytics/stock',
    name: 'analytics-stock',
    component: () => import('@/views/analytics/StockView.vue'),
    meta: { titleKey: 'analytics.menu.stock', perm: Perm.ANALYTICS_READ, menu: { group: 'orders', order: 62, icon: 'Box' } },
  },
  {
    path: 'analytics/members',
    name: 'analytics-members',
    component: () => import('@/views/analytics/MembersView.vue'),
    meta: { titleKey: 'analytics.menu.members', perm: Perm.ANALYTICS_READ, menu: { group: 'orders', order: 63, icon: 'UserFilled' } },
  },
  {
    path: 'analytics/baskets',
    name: 'analytics-baskets',
    component: () => import('@/views/analytics/BasketsView.vue'),
    meta: { titleKey: 'baskets.menu', perm: Perm.ANALYTICS_READ, menu: { group: 'orders', order: 61, icon: 'Share' } },
  },
  // --- end analytics ---
  // --- end orders ---
  // --- settlement ---
  {
    path: 'settlement/stores',
    name: 'settlement-stores',
    component: () => import('@/views/settlement/StoreSettlementView.vue'),
    meta: { titleKey: 'settlement.menu.stores', perm: Perm.SETTLEMENT_READ, menu: { group: 'finance', order: 50, icon: 'Money' } },
  },
  {
    path: 'settlement/fees',
    name: 'settlement-fees',
    component: () => import('@/views/settlement/FeeReportView.vue'),
    meta: { titleKey: 'settlement.menu.fees', perm: Perm.SETTLEMENT_READ, menu: { group: 'finance', order: 60, icon: 'Coin' } },
  },
  {
    path: 'settlement/statements',
    name: 'settlement-statements',
    component: () => import('@/views/settlement/SupplierStatementsView.vue'),
    meta: { titleKey: 'settlement.menu.statements', perm: Perm.SETTLEMENT_READ, menu: { group: 'finance', order: 70, icon: 'Document' } },
  },
  // --- end settlement ---
  // --- members ---
  {
    path: 'members',
    name: 'members',
    component: () => import('@/views/members/MembersView.vue'),
    meta: { titleKey: 'members.menu.list', perm: Perm.MEMBER_READ, menu: { group: 'members', order: 10, icon: 'User' } },
  },
  {
    path: 'members/:id(\\d+)',
    name: 'member-detail',
    component: () => import('@/views/members/MemberDetailView.vue'),
    meta: { titleKey: 'members.menu.list', perm: Perm.MEMBER_READ },
  },
  {
    path: 'members/rules',
    name: 'member-rules',
    component: () => import('@/views/members/MemberRulesView.vue'),
    meta: { titleKey: 'members.menu.rules', perm: Perm.MEMBER_READ, menu: { group: 'members', order: 20, icon: 'Tickets' } },
  },
  // --- end members ---
  {
    path: 'users',
    name: 'users',
    component: () => import('@/views/iam/UsersView.vue'),
    meta: { titleKey: 'menu.users', perm: Perm.USER_READ, menu: { group: 'system', order: 10, icon: 'User' } },
  },
  {
    path: 'roles',
    name: 'roles',
    component: () => import('@/views/iam/RolesView.vue'),
    meta: { titleKey: 'menu.roles', perm: Perm.ROLE_READ, menu: { group: 'system', order: 20, icon: 'Lock' } },
  },
  {
    path: 'login-logs',
    name: 'login-logs',
    component: () => import('@/views/iam/LoginLogsView.vue'),
    meta: { titleKey: 'menu.loginLogs', perm: Perm.LOGIN_LOG_READ, menu: { group: 'system', order: 30, icon: 'Key' } },
  },
  {
    path: 'audit-logs',
    name: 'audit-logs',
    component: () => import('@/views/audit/AuditLogsView.vue'),
    meta: { titleKey: 'menu.auditLogs', perm: Perm.AUDIT_READ, menu: { group: 'system', order: 40, icon: 'Document' } },
  },
  {
    path: 'business-logs',
    name: 'business-logs',
    component: () => import('@/views/behaviour/BusinessLogsView.vue'),
    meta: { titleKey: 'menu.businessLogs', perm: Perm.ANALYTICS_READ, menu: { group: 'system', order: 41, icon: 'Tickets' } },
  },
  {
    path: 'monitoring',
    name: 'monitoring',
    component: () => import('@/views/monitoring/MonitoringView.vue'),
    meta: { titleKey: 'monitoring.menu.overview', perm: Perm.SYSTEM_SETTINGS, menu: { group: 'system', order: 50, icon: 'Monitor' } },
  },
  {
    path: 'alerts',
    name: 'ops-alerts',
    component: () => import('@/views/opsAlerts/OpsAlertsView.vue'),
    meta: { titleKey: 'opsAlerts.menu', perm: Perm.SYSTEM_SETTINGS, menu: { group: 'system', order: 55, icon: 'Bell' } },
  },
  {
    path: 'backups',
    name: 'backups',
    component: () => import('@/views/monitoring/BackupsView.vue'),
    meta: { titleKey: 'monitoring.menu.backups', perm: Perm.SYSTEM_SETTINGS, menu: { group: 'system', order: 60, icon: 'FolderChecked' } },
  },
  {
    path: 'about',
    name: 'about',
    component: () => import('@/views/monitoring/AboutView.vue'),
    meta: { titleKey: 'system.aboutTitle', perm: Perm.SYSTEM_SETTINGS, menu: { group: 'system', order: 90, icon: 'InfoFilled' } },
  },
  {
    path: 'messages',
    name: 'messages',
    component: () => import('@/views/messages/MessagesView.vue'),
    meta: { titleKey: 'menu.messages' },
  },
  {
    path: 'profile',
    name: 'profile',
    component: () => import('@/views/account/ProfileView.vue'),
    meta: { titleKey: 'menu.profile' },
  },
  {
    path: 'password',
    name: 'password',
    component: () => import('@/views/account/PasswordView.vue'),
    meta: { titleKey: 'menu.password' },
  },
  {
    path: 'forbidden',
    name: 'forbidden',
    component: () => import('@/views/errors/ForbiddenView.vue'),
    meta: { titleKey: 'errors.forbidden' },
  },
  {
    path: ':pathMatch(.*)*',
    name: 'not-found',
    component: () => import('@/views/errors/NotFoundView.vue'),
    meta: { titleKey: 'errors.not_found' },
  },
]

export const routes: RouteRecordRaw[] = [
  { path: '/login', name: 'login', component: LoginView, meta: { public: true, titleKey: 'login.submit' } },
  // The customer's order page: the receipt's QR link, and look-up by number + phone digits (no login).
  {
    path: '/r/:token',
    name: 'receipt',
    component: () => import('@/views/orders/CustomerOrderView.vue'),
    meta: { public: true, titleKey: 'orders.public.title' },
  },
  {
    path: '/my-order',
    name: 'order-lookup',
    component: () => import('@/views/orders/CustomerOrderView.vue'),
    meta: { public: true, titleKey: 'orders.public.lookupTitle' },
  },
  // The member's own page: sign in with an SMS code (its own session, not a console login).
  {
    path: '/my-member',
    name: 'member-page',
    component: () => import('@/views/members/MemberPageView.vue'),
    meta: { public: true, titleKey: 'memberPage.title' },
  },
  {
    path: '/password/required',
    name: 'force-password',
    component: () => import('@/views/auth/ForcePasswordView.vue'),
    meta: { bare: true, titleKey: 'password.forcedTitle' },
  },
  { path: '/', component: ConsoleLayout, children: consoleRoutes },
]

"""Permission codes: one StrEnum, the same strings the console uses to show menus and buttons.

Each domain owns its block; add codes to your block only. A route names exactly one code
(or is on the public allowlist in `selfmart.iam.dependencies`).
"""

from __future__ import annotations

from enum import StrEnum


class Perm(StrEnum):
    # system: people, roles, stores, terminals, logs
    USER_READ = "user:read"
    USER_WRITE = "user:write"
    ROLE_READ = "role:read"
    ROLE_WRITE = "role:write"
    STORE_READ = "store:read"
    STORE_WRITE = "store:write"
    TERMINAL_READ = "terminal:read"
    TERMINAL_WRITE = "terminal:write"
    LOGIN_LOG_READ = "login_log:read"
    AUDIT_READ = "audit:read"
    SYSTEM_SETTINGS = "system:settings"
    JOB_READ = "job:read"

    # catalog and inventory
    PRODUCT_READ = "product:read"
    PRODUCT_WRITE = "product:write"
    PRODUCT_IMPORT = "product:import"
    STOCK_READ = "stock:read"
    STOCK_WRITE = "stock:write"
    ALERT_READ = "alert:read"
    ALERT_WRITE = "alert:write"
    SUPPLIER_READ = "supplier:read"
    SUPPLIER_WRITE = "supplier:write"
    PURCHASE_READ = "purchase:read"
    PURCHASE_WRITE = "purchase:write"
    STOCKTAKE_WRITE = "stocktake:write"

    # orders and payments
    ORDER_READ = "order:read"
    ORDER_WRITE = "order:write"
    ORDER_REFUND = "order:refund"
    ORDER_EXPORT = "order:export"
    #: customers' full phone numbers in order answers (others see them masked: 138****5678)
    ORDER_PII = "order:pii"
    PAYMENT_READ = "payment:read"
    PAYMENT_WRITE = "payment:write"
    #: channel settings: merchant ids and keys on WeChat Pay, Alipay, UnionPay
    PAYMENT_ACCOUNT_READ = "payment_account:read"
    PAYMENT_ACCOUNT_WRITE = "payment_account:write"

    # reconciliation
    #: runs, differences and day totals of the accounts one may see
    RECONCILIATION_READ = "reconciliation:read"
    #: rerun a day's bill; set an account's fee rate
    RECONCILIATION_RUN = "reconciliation:run"
    #: resolve a difference with a note
    RECONCILIATION_RESOLVE = "reconciliation:resolve"

    # settlement
    #: the fee report, store settlement and supplier statements (reading, exporting)
    SETTLEMENT_READ = "settlement:read"
    #: generate, regenerate, review and delete supplier statements
    SETTLEMENT_WRITE = "settlement:write"
    #: approve a supplier statement (freezing it) and mark it paid
    SETTLEMENT_APPROVE = "settlement:approve"

    # analytics
    #: sales statistics, rankings and mixes of the stores one may see
    ANALYTICS_READ = "analytics:read"
    #: start a frequently-bought-together analysis of the stores one may see
    ANALYTICS_RUN = "analytics:run"

    # members
    MEMBER_READ = "member:read"
    MEMBER_WRITE = "member:write"
    #: members' whole names and mobiles (others see them masked; every reveal is audited)
    MEMBER_PII = "member:pii"
    #: redeem and adjust points by hand
    MEMBER_POINTS = "member:points"
    #: tiers and the programme's rules (points per yuan, expiry, window, downgrades)
    MEMBER_TIER = "member:tier"
    MEMBER_EXPORT = "member:export"
    #: segments, coupon templates and issuing coupons
    MEMBER_MARKETING = "member:marketing"


#: Permission groups, for the console's role editor.
GROUPS: dict[str, list[Perm]] = {
    "system": [
        Perm.USER_READ,
        Perm.USER_WRITE,
        Perm.ROLE_READ,
        Perm.ROLE_WRITE,
        Perm.STORE_READ,
        Perm.STORE_WRITE,
        Perm.TERMINAL_READ,
        Perm.TERMINAL_WRITE,
        Perm.LOGIN_LOG_READ,
        Perm.AUDIT_READ,
        Perm.SYSTEM_SETTINGS,
        Perm.JOB_READ,
    ],
    "catalog": [
        Perm.PRODUCT_READ,
        Perm.PRODUCT_WRITE,
        Perm.PRODUCT_IMPORT,
        Perm.STOCK_READ,
        Perm.STOCK_WRITE,
        Perm.ALERT_READ,
        Perm.ALERT_WRITE,
        Perm.SUPPLIER_READ,
        Perm.SUPPLIER_WRITE,
        Perm.PURCHASE_READ,
        Perm.PURCHASE_WRITE,
        Perm.STOCKTAKE_WRITE,
    ],
    "orders": [
        Perm.ORDER_READ,
        Perm.ORDER_WRITE,
        Perm.ORDER_REFUND,
        Perm.ORDER_EXPORT,
        Perm.ORDER_PII,
        Perm.PAYMENT_READ,
        Perm.PAYMENT_WRITE,
        Perm.PAYMENT_ACCOUNT_READ,
        Perm.PAYMENT_ACCOUNT_WRITE,
    ],
    "members": [
        Perm.MEMBER_READ,
        Perm.MEMBER_WRITE,
        Perm.MEMBER_PII,
        Perm.MEMBER_POINTS,
        Perm.MEMBER_TIER,
        Perm.MEMBER_EXPORT,
        Perm.MEMBER_MARKETING,
    ],
    "analytics": [Perm.ANALYTICS_READ, Perm.ANALYTICS_RUN],
    "reconciliation": [
        Perm.RECONCILIATION_READ,
        Perm.RECONCILIATION_RUN,
        Perm.RECONCILIATION_RESOLVE,
    ],
    "settlement": [
        Perm.SETTLEMENT_READ,
        Perm.SETTLEMENT_WRITE,
        Perm.SETTLEMENT_APPROVE,
    ],
}

#: Built-in roles. The super admin has every code and every store.
BUILTIN_ROLES: dict[str, dict[str, object]] = {
    "super_admin": {"name": "Super admin", "all_stores": True, "perms": list(Perm)},
    "admin": {
        "name": "Admin",
        "all_stores": False,
        "perms": [
            Perm.STORE_READ,
            Perm.TERMINAL_READ,
            Perm.JOB_READ,  # to follow their own imports and exports
            Perm.PRODUCT_READ,
            Perm.PRODUCT_WRITE,
            Perm.PRODUCT_IMPORT,
            Perm.STOCK_READ,
            Perm.STOCK_WRITE,
            Perm.ALERT_READ,
            Perm.ALERT_WRITE,
            Perm.SUPPLIER_READ,
            Perm.SUPPLIER_WRITE,
            Perm.PURCHASE_READ,
            Perm.PURCHASE_WRITE,
            Perm.STOCKTAKE_WRITE,
            Perm.ORDER_READ,
            Perm.ORDER_WRITE,
            Perm.ORDER_REFUND,
            Perm.ORDER_EXPORT,
            Perm.ORDER_PII,
            Perm.PAYMENT_READ,
            Perm.ANALYTICS_READ,
            Perm.ANALYTICS_RUN,
            Perm.MEMBER_READ,
            Perm.MEMBER_WRITE,
            Perm.MEMBER_PII,
            Perm.MEMBER_POINTS,
            Perm.MEMBER_TIER,
            Perm.MEMBER_EXPORT,
            Perm.MEMBER_MARKETING,
            Perm.RECONCILIATION_READ,
            Perm.RECONCILIATION_RUN,
            Perm.RECONCILIATION_RESOLVE,
            Perm.SETTLEMENT_READ,
        ],
    },
    # The chain's finance team: reconciles the platforms' bills and settles with the stores,
    # the platforms and the suppliers, chain-wide, and nothing else (the console's pages for it
    # do without store and supplier names when these reads are not granted).
    "finance": {
        "name": "Finance",
        "all_stores": True,
        "perms": [
            Perm.RECONCILIATION_READ,
            Perm.RECONCILIATION_RUN,
            Perm.RECONCILIATION_RESOLVE,
            Perm.SETTLEMENT_READ,
            Perm.SETTLEMENT_WRITE,
            Perm.SETTLEMENT_APPROVE,
        ],
    },
    "cashier": {
        "name": "Cashier",
        "all_stores": False,
        "refund_limit_fen": 20_000,
        "perms": [
            Perm.STORE_READ,
            Perm.PRODUCT_READ,
            Perm.ORDER_READ,
            Perm.ORDER_WRITE,
            Perm.ORDER_REFUND,
            Perm.PAYMENT_READ,
            Perm.PAYMENT_WRITE,
            Perm.MEMBER_READ,
        ],
    },
}

"""ORM models, one module per aggregate; importing this package registers them all."""

from selfmart.models.alert import Alert, AlertRule
from selfmart.models.analytics import (
    HourCell,
    MemberCount,
    MemberDay,
    ProductDay,
    RefreshState,
    SalesDay,
)
from selfmart.models.audit import AuditLog
from selfmart.models.basket import BasketItem, BasketRule, BasketRun
from selfmart.models.behaviour import BehaviourEvent
from selfmart.models.catalog import (
    Category,
    Product,
    ProductBarcode,
    ProductImage,
    ProductTag,
    StoreProduct,
    Tag,
)
from selfmart.models.iam import (
    AuthSession,
    LoginLog,
    LoginThrottle,
    Role,
    RolePermission,
    User,
    UserRole,
    UserStore,
)
from selfmart.models.inventory import (
    AlertRoute,
    StockAlert,
    StockBatch,
    StockDiscrepancy,
    StockLevel,
    StockMovement,
)
from selfmart.models.jobs import JobRun
from selfmart.models.member import (
    Member,
    MemberMessage,
    MemberOrder,
    MemberPointsEntry,
    MemberPointsLot,
    MemberProgram,
    MemberSmsCode,
    MemberTier,
    MemberTierChange,
)
from selfmart.models.member_offer import (
    CouponIssue,
    CouponTemplate,
    MemberCoupon,
    MemberSegment,
)
from selfmart.models.notify import (
    Message,
    NotificationAttempt,
    NotificationDelivery,
    OutboxEvent,
)
from selfmart.models.order import Order, OrderEvent, OrderIssue, OrderLine
from selfmart.models.payment import (
    Payment,
    PaymentAccount,
    PaymentCallback,
    Refund,
    RefundLine,
)
from selfmart.models.purchasing import (
    PurchaseOrder,
    PurchaseOrderLine,
    Stocktake,
    StocktakeLine,
    StockTransfer,
    StockTransferLine,
    Supplier,
    SupplierProduct,
)
from selfmart.models.reconciliation import (
    ReconciliationFeeRate,
    ReconciliationItem,
    ReconciliationRun,
)
from selfmart.models.settlement import SupplierStatement, SupplierStatementLine
from selfmart.models.store import Store, Terminal, TerminalKey, TerminalNonce
from selfmart.models.system import SystemFlag

__all__ = [
    "Alert",
    "AlertRule",
    "BasketItem",
    "BehaviourEvent",
    "BasketRule",
    "BasketRun",
    "AlertRoute",
    "HourCell",
    "MemberCount",
    "MemberDay",
    "ProductDay",
    "RefreshState",
    "SalesDay",
    "AuditLog",
    "AuthSession",
    "Category",
    "LoginLog",
    "LoginThrottle",
    "JobRun",
    "CouponIssue",
    "CouponTemplate",
    "Member",
    "MemberCoupon",
    "MemberSegment",
    "MemberOrder",
    "MemberPointsEntry",
    "MemberPointsLot",
    "MemberProgram",
    "MemberMessage",
    "MemberSmsCode",
    "MemberTier",
    "MemberTierChange",
    "Message",
    "NotificationAttempt",
    "NotificationDelivery",
    "Order",
    "OrderEvent",
    "OrderIssue",
    "OrderLine",
    "OutboxEvent",
    "Payment",
    "PaymentAccount",
    "PaymentCallback",
    "Product",
    "ProductBarcode",
    "ProductImage",
    "ProductTag",
    "Refund",
    "RefundLine",
    "PurchaseOrder",
    "ReconciliationFeeRate",
    "ReconciliationItem",
    "ReconciliationRun",
    "PurchaseOrderLine",
    "Role",
    "RolePermission",
    "StockAlert",
    "StockBatch",
    "StockDiscrepancy",
    "StockLevel",
    "StockMovement",
    "StockTransfer",
    "StockTransferLine",
    "Stocktake",
    "StocktakeLine",
    "Store",
    "StoreProduct",
    "Supplier",
    "SupplierProduct",
    "SystemFlag",
    "SupplierStatement",
    "SupplierStatementLine",
    "Tag",
    "Terminal",
    "TerminalKey",
    "TerminalNonce",
    "User",
    "UserRole",
    "UserStore",
]

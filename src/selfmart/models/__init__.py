"""ORM models, one module per aggregate; importing this package registers them all."""

from selfmart.models.audit import AuditLog
from selfmart.models.iam import (
    AuthSession,
    LoginLog,
    Role,
    RolePermission,
    User,
    UserRole,
    UserStore,
)
from selfmart.models.jobs import JobRun
from selfmart.models.notify import (
    Message,
    NotificationAttempt,
    NotificationDelivery,
    OutboxEvent,
)
from selfmart.models.store import Store, Terminal, TerminalKey, TerminalNonce

__all__ = [
    "AuditLog",
    "AuthSession",
    "LoginLog",
    "JobRun",
    "Message",
    "NotificationAttempt",
    "NotificationDelivery",
    "OutboxEvent",
    "Role",
    "RolePermission",
    "Store",
    "Terminal",
    "TerminalKey",
    "TerminalNonce",
    "User",
    "UserRole",
    "UserStore",
]

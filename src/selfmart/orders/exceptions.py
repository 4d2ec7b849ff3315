"""Errors of the orders domain, each with its stable code."""

from __future__ import annotations

from selfmart.errors import (
    AppError,
    Conflict,
    ErrorDetail,
    Forbidden,
    NotFound,
    ValidationFailed,
)


class RefundLimitExceeded(Forbidden):
    code, message = "refund_limit_exceeded", "This refund is above your refund limit"


class RefundRequestNotFound(NotFound):
    code, message = "refund_request_not_found", "No such refund request"


class RefundRequestDecided(Conflict):
    code, message = (
        "refund_request_decided",
        "This refund request was already approved or rejected",
    )

    def __init__(self, message: str | None = None, *, field: str, reason: str) -> None:
        text = message or type(self).message
        super().__init__(text, details=[ErrorDetail(field=field, reason=reason, message=text)])


class RefundInProgress(Conflict):
    code, message = (
        "refund_in_progress",
        "A refund of this order is still with the payment platform: refund more once it has "
        "settled",
    )


class IdempotencyConflict(Conflict):
    code, message = (
        "idempotency_conflict",
        "This client order id was already used for a different order",
    )


class UnknownProduct(ValidationFailed):
    code, message = "unknown_product", "A line names a product this store does not sell"


class IssueNotFound(NotFound):
    code, message = "issue_not_found", "No such abnormal order"


class ActionNotAllowed(Conflict):
    code, message = "action_not_allowed", "This action does not fit this abnormal order"


def refused(reason: str, message: str, field: str = "action") -> ActionNotAllowed:
    """The 409 for an action that cannot work, naming why by a stable reason code in its
    detail (no_payment, no_customer_phone, ...), which the console translates."""
    return ActionNotAllowed(
        message, details=[ErrorDetail(field=field, reason=reason, message=message)]
    )


class RetryLater(AppError):
    """The database chose this request as the loser of a lock conflict (a deadlock between
    concurrent uploads): nothing was written, and sending it again is safe (intake is
    idempotent)."""

    status, code, message = 503, "retry_later", "Busy with a concurrent upload; send it again"


#: SQLSTATEs of a transaction that lost a lock conflict and may simply be run again.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})

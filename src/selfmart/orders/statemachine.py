"""The order lifecycle: every status and every allowed transition, in this one place.

docs/order-lifecycle.md draws this machine; a test regenerates the drawing from here and
fails when the page and the code disagree (`python -m selfmart.orders.statemachine` prints it).
"""

from __future__ import annotations

import sys
from enum import StrEnum

from selfmart.errors import ErrorDetail, IllegalTransition


class OrderStatus(StrEnum):
    CREATED = "created"
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    COMPLETED = "completed"
    PAYMENT_FAILED = "payment_failed"
    OUT_OF_STOCK = "out_of_stock"
    CANCELLED = "cancelled"
    #: payment timed out (the close-unpaid job)
    CLOSED = "closed"
    REFUND_REQUESTED = "refund_requested"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


S = OrderStatus

#: (from, to) -> the event that makes the move, as drawn on the diagram.
TRANSITIONS: dict[tuple[OrderStatus, OrderStatus], str] = {
    (S.CREATED, S.AWAITING_PAYMENT): "priced and booked",
    (S.CREATED, S.OUT_OF_STOCK): "stock refused",
    (S.CREATED, S.CANCELLED): "cancel",
    (S.AWAITING_PAYMENT, S.PAID): "payment succeeded",
    (S.AWAITING_PAYMENT, S.PAYMENT_FAILED): "payment failed",
    (S.AWAITING_PAYMENT, S.CLOSED): "payment timed out",
    (S.AWAITING_PAYMENT, S.CANCELLED): "cancel",
    (S.PAYMENT_FAILED, S.AWAITING_PAYMENT): "retry payment",
    (S.PAYMENT_FAILED, S.PAID): "re-query found payment",
    (S.PAYMENT_FAILED, S.CLOSED): "payment timed out",
    (S.PAYMENT_FAILED, S.CANCELLED): "cancel",
    (S.OUT_OF_STOCK, S.AWAITING_PAYMENT): "lines substituted",
    (S.OUT_OF_STOCK, S.CANCELLED): "cancel",
    (S.PAID, S.COMPLETED): "complete",
    (S.PAID, S.REFUND_REQUESTED): "refund requested",
    (S.COMPLETED, S.REFUND_REQUESTED): "refund requested",
    (S.PARTIALLY_REFUNDED, S.REFUND_REQUESTED): "refund requested",
    (S.REFUND_REQUESTED, S.PARTIALLY_REFUNDED): "part refunded (or a later refund failed)",
    (S.REFUND_REQUESTED, S.REFUNDED): "all refunded",
    # A refund that fails or is withdrawn returns the order to where it stood before.
    (S.REFUND_REQUESTED, S.PAID): "refund failed",
    (S.REFUND_REQUESTED, S.COMPLETED): "refund failed",
}

INITIAL = S.CREATED
#: Nothing leaves these.
FINAL: frozenset[OrderStatus] = frozenset({S.CANCELLED, S.CLOSED, S.REFUNDED})
#: Money has been received and not (wholly) given back.
PAID_STATES: frozenset[OrderStatus] = frozenset(
    {S.PAID, S.COMPLETED, S.REFUND_REQUESTED, S.PARTIALLY_REFUNDED}
)
#: Waiting for the customer's money.
UNPAID_STATES: frozenset[OrderStatus] = frozenset({S.AWAITING_PAYMENT, S.PAYMENT_FAILED})
#: A refund may be started from these.
REFUNDABLE_STATES: frozenset[OrderStatus] = frozenset({S.PAID, S.COMPLETED, S.PARTIALLY_REFUNDED})

_NEXT: dict[OrderStatus, frozenset[OrderStatus]] = {
    s: frozenset(t for (f, t) in TRANSITIONS if f == s) for s in OrderStatus
}


def allowed_next(status: OrderStatus | str) -> frozenset[OrderStatus]:
    return _NEXT[OrderStatus(status)]


def can_move(from_status: OrderStatus | str, to_status: OrderStatus | str) -> bool:
    return OrderStatus(to_status) in _NEXT[OrderStatus(from_status)]


def check(from_status: OrderStatus | str, to_status: OrderStatus | str) -> None:
    """Raise IllegalTransition (409, code illegal_transition) naming both states."""
    if not can_move(from_status, to_status):
        message = f"An order cannot go from {from_status} to {to_status}"
        raise IllegalTransition(
            message,
            details=[ErrorDetail(field="status", reason="illegal_transition", message=message)],
            from_status=str(from_status),
            to_status=str(to_status),
        )


def mermaid() -> str:
    """The state diagram, as the mermaid block in docs/order-lifecycle.md."""
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL.value}"]
    for (src, dst), label in TRANSITIONS.items():
        lines.append(f"    {src.value} --> {dst.value}: {label}")
    for s in OrderStatus:
        if s in FINAL:
            lines.append(f"    {s.value} --> [*]")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(mermaid() + "\n")

"""Payment attempts a terminal reports: it tried to charge an order and the payment failed.

The order moves to payment_failed (when it was awaiting payment), a payment_failed issue puts
it in the abnormal-order queue, and the attempt itself is on the timeline and in the audit log,
all by the terminal. Each report carries the terminal's attempt id: the same attempt sent again
(a retry after a lost answer) is answered as the first time and changes nothing (only an audit
note of the resend, as for a resent order); the same id with another body is a 409. Reports
for one order are serialised by a row lock on the order.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.iam.actor import Actor
from selfmart.models import Order, OrderEvent
from selfmart.orders import lifecycle, statemachine
from selfmart.orders import service as orders
from selfmart.orders.exceptions import IdempotencyConflict
from selfmart.orders.lookup import OrderNotFound
from selfmart.orders.schemas import PaymentFailureIn
from selfmart.orders.statemachine import OrderStatus

S = OrderStatus
#: The timeline entry that records a reported attempt (and finds it again on a retry).
EVENT_KIND, EVENT_REASON = "payment", "terminal_payment_failed"


def report_hash(body: PaymentFailureIn) -> str:
    """The report as sent, canonically (key order and spacing do not matter)."""
    doc = body.model_dump(mode="json", exclude_none=True)
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


async def _reported(session: AsyncSession, order_id: int, attempt_id: str) -> dict[str, Any] | None:
    """The timeline data of this attempt, if it was reported before (an order has few)."""
    rows = await session.scalars(
        select(OrderEvent.data).where(
            OrderEvent.order_id == order_id,
            OrderEvent.kind == EVENT_KIND,
            OrderEvent.reason == EVENT_REASON,
        )
    )
    for data in rows:
        if isinstance(data, dict) and data.get("attempt_id") == attempt_id:
            return data
    return None


async def report_failure(
    session: AsyncSession,
    *,
    store_id: int,
    order_no: str,
    body: PaymentFailureIn,
    actor: Actor,
) -> dict[str, Any]:
    """Record a failed payment attempt on an order of the terminal's store, once."""
    order = await session.scalar(
        select(Order)
        .where(Order.order_no == order_no, Order.store_id == store_id)
        .with_for_update()
    )
    if order is None:
        raise OrderNotFound(field="order_no")
    digest = report_hash(body)
    seen = await _reported(session, order.id, body.attempt_id)
    if seen is not None:
        if seen.get("request_hash") != digest:
            raise IdempotencyConflict(
                f"Attempt id {body.attempt_id} was already reported with other details",
                field="attempt_id",
            )
        # Nothing changes, but a terminal resending is worth seeing in the audit log.
        await audit.record(
            session,
            actor,
            "order.payment_failure_resent",
            "order",
            order.id,
            store_id=order.store_id,
            note=f"attempt {body.attempt_id} reported again; answered as the first time",
        )
        return _result(order, body.attempt_id, int(seen["issue_id"]), "duplicate")

    if order.status not in statemachine.UNPAID_STATES:
        # Paid, cancelled, closed... : a 409 naming both states.
        statemachine.check(order.status, S.PAYMENT_FAILED)
    status_before = order.status
    reason = f"{body.method}: {body.reason}"
    issue = await orders.mark_payment_failed(session, order, actor=actor, reason=reason)
    attempt = {
        "attempt_id": body.attempt_id,
        "method": body.method,
        "amount_fen": body.amount_fen,
        "reason": body.reason,
        "error_code": body.error_code,
        "failed_at": body.failed_at.isoformat() if body.failed_at else None,
    }
    lifecycle.add_event(
        session,
        order,
        actor=actor,
        kind=EVENT_KIND,
        reason=EVENT_REASON,
        note=body.reason,
        data={**attempt, "issue_id": issue.id, "request_hash": digest},
    )
    await audit.record(
        session,
        actor,
        "order.payment_attempt_failed",
        "order",
        order.id,
        store_id=order.store_id,
        before={"status": status_before},
        after={**attempt, "status": order.status, "issue_id": issue.id},
        note=reason,
    )
    await session.flush()
    return _result(order, body.attempt_id, issue.id, "recorded")


def _result(order: Order, attempt_id: str, issue_id: int, outcome: str) -> dict[str, Any]:
    return {
        "order_no": order.order_no,
        "attempt_id": attempt_id,
        "status": order.status,
        "outcome": outcome,
        "issue_id": issue_id,
    }

"""Moving an order through its states: the one function that changes `orders.status`,
the timeline entry every move leaves, and the issues (abnormal orders) an order raises.

A move is a conditional UPDATE (`WHERE status = :from`), so two actors racing for the same
order (a payment callback and the close-unpaid job, say) cannot both win.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from selfmart.audit import service as audit
from selfmart.errors import Conflict
from selfmart.iam.actor import Actor
from selfmart.kit import aftercommit
from selfmart.kit.time import utcnow
from selfmart.models import Order, OrderEvent, OrderIssue
from selfmart.orders import live, statemachine
from selfmart.orders.statemachine import OrderStatus

S = OrderStatus

#: The timestamp column a status sets when it is reached.
STATUS_TIMESTAMPS: dict[OrderStatus, str] = {
    S.PAID: "paid_at",
    S.COMPLETED: "completed_at",
    S.CANCELLED: "ended_at",
    S.CLOSED: "ended_at",
    S.REFUNDED: "ended_at",
}

ISSUE_KINDS = (
    "payment_failed",
    "stock_short",
    "price_mismatch",
    "amount_mismatch",
    "refund_failed",
)


def notify_live(session: AsyncSession) -> None:
    if not session.info.get("orders.live_pending"):
        session.info["orders.live_pending"] = True

        async def wake() -> None:
            session.info.pop("orders.live_pending", None)
            live.hub.wake()

        aftercommit.on_commit(session, wake)


def add_event(
    session: AsyncSession,
    order: Order,
    *,
    actor: Actor,
    kind: str,
    reason: str,
    from_status: str | None = None,
    to_status: str | None = None,
    note: str | None = None,
    data: dict[str, Any] | None = None,
) -> OrderEvent:
    """Put one entry on the order's timeline (and so on the live feed)."""
    event = OrderEvent(
        order_id=order.id,
        store_id=order.store_id,
        occurred_at=utcnow(),
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        actor_type=actor.kind,
        actor_id=actor.audit_id,
        actor_name=actor.name,
        reason=reason,
        note=note,
        data=data or {},
    )
    session.add(event)
    notify_live(session)
    return event


async def transition(
    session: AsyncSession,
    order: Order,
    to: OrderStatus,
    *,
    actor: Actor,
    reason: str,
    note: str | None = None,
    data: dict[str, Any] | None = None,
    audit_action: str | None = None,
) -> OrderEvent:
    """Move `order` to `to`, or raise IllegalTransition (409) naming both states.

    Writes the timeline entry and the audit entry in the caller's transaction."""
    current = OrderStatus(order.status)
    statemachine.check(current, to)
    now = utcnow()
    values: dict[str, Any] = {"status": to.value, "updated_at": now}
    if (column := STATUS_TIMESTAMPS.get(to)) is not None:
        values[column] = now
    result = await session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status == current.value)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        # Someone else moved it first: judge the move from where the order really is.
        actual = await session.scalar(select(Order.status).where(Order.id == order.id))
        if actual is None or actual == current.value:
            raise Conflict("The order changed meanwhile; try again", field="status")
        set_committed_value(order, "status", actual)
        statemachine.check(str(actual), to)
        return await transition(
            session,
            order,
            to,
            actor=actor,
            reason=reason,
            note=note,
            data=data,
            audit_action=audit_action,
        )
    for key, value in values.items():
        set_committed_value(order, key, value)
    event = add_event(
        session,
        order,
        actor=actor,
        kind="transition",
        reason=reason,
        from_status=current.value,
        to_status=to.value,
        note=note,
        data=data,
    )
    await audit.record(
        session,
        actor,
        audit_action or f"order.{to.value}",
        "order",
        order.id,
        store_id=order.store_id,
        before={"status": current.value},
        after={"status": to.value},
        note=note or reason,
    )
    if to in (S.CLOSED, S.CANCELLED) and order.member_id is not None:
        # points spent and the coupon redeemed on an order that ended unpaid come back
        from selfmart.members import coupons, redeem

        await redeem.settle(session, order, actor=actor)
        await coupons.settle_order(session, order, actor=actor)
    return event


async def open_issue(
    session: AsyncSession,
    order: Order,
    kind: str,
    *,
    actor: Actor,
    detail: dict[str, Any] | None = None,
    stage: str = "person",
) -> OrderIssue:
    """Raise an abnormal-order issue; an open one of the same kind is reused, not doubled."""
    if kind not in ISSUE_KINDS:
        raise ValueError(f"unknown issue kind {kind}")
    existing = await session.scalar(
        select(OrderIssue).where(
            OrderIssue.order_id == order.id, OrderIssue.kind == kind, OrderIssue.status == "open"
        )
    )
    if existing is not None:
        existing.detail = {**existing.detail, **(detail or {})}
        return existing
    issue = OrderIssue(
        order_id=order.id,
        store_id=order.store_id,
        kind=kind,
        status="open",
        stage=stage,
        detail=detail or {},
        opened_at=utcnow(),
        next_auto_at=utcnow() if stage == "auto" else None,
    )
    session.add(issue)
    await session.flush()
    await _bump_open_issues(session, order, +1)
    add_event(session, order, actor=actor, kind="issue", reason=f"issue.{kind}", data=detail)
    return issue


async def resolve_issue(
    session: AsyncSession,
    order: Order,
    issue: OrderIssue,
    *,
    actor: Actor,
    resolution: str,
    note: str | None = None,
) -> None:
    if issue.status != "open":
        return
    result = await session.execute(
        update(OrderIssue)
        .where(OrderIssue.id == issue.id, OrderIssue.status == "open")
        .values(
            status="resolved", resolved_at=utcnow(), resolution=resolution, resolved_by=actor.name
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return  # someone else settled it first
    await session.refresh(issue)
    if note:
        issue.note = note
    await _bump_open_issues(session, order, -1)
    add_event(
        session,
        order,
        actor=actor,
        kind="issue",
        reason=f"issue.{issue.kind}.resolved",
        note=note,
        data={"issue_id": issue.id, "resolution": resolution},
    )


async def _bump_open_issues(session: AsyncSession, order: Order, delta: int) -> None:
    new = await session.scalar(
        update(Order)
        .where(Order.id == order.id)
        .values(open_issues=Order.open_issues + delta, updated_at=utcnow())
        .returning(Order.open_issues)
        .execution_options(synchronize_session=False)
    )
    set_committed_value(order, "open_issues", new)

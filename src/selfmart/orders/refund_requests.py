"""Refund requests: a refund above its requester's limit is kept as a request that someone
whose limit covers it approves (the refund is then made, as the approver) or rejects with a
note. Every step is audited and on the order's timeline; a request is decided once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.errors import ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.kit.pagination import PageParams
from selfmart.kit.time import utcnow
from selfmart.models import Order, OrderIssue, Refund, Store
from selfmart.models.order import RefundRequest
from selfmart.orders import lifecycle, refunds
from selfmart.orders.exceptions import RefundRequestDecided, RefundRequestNotFound
from selfmart.orders.schemas import RefundBody

#: body["kind"] of a request to give back an abnormal order's difference (not tied to lines)
DIFFERENCE = "difference"
#: body["kind"] of a request to cancel a paid abnormal order's lines (refunded, written off)
CANCEL_LINES = "cancel_lines"


def covers(actor: Actor, amount_fen: int) -> bool:
    return actor.refund_limit_fen is None or amount_fen <= actor.refund_limit_fen


async def create(
    session: AsyncSession, order: Order, body: RefundBody, *, actor: Actor
) -> RefundRequest:
    """Ask for a refund to be approved (the order's row is held by the caller). The refund is
    priced and checked now as it would be made, so a request that could never work is refused
    at once; one pending request per order."""
    _specs, amount = await refunds.plan(session, order, body)
    return await _store(
        session, order, body.model_dump(mode="json"), amount, reason=body.reason, actor=actor
    )


async def _store(
    session: AsyncSession,
    order: Order,
    body: dict[str, Any],
    amount: int,
    *,
    reason: str,
    actor: Actor,
) -> RefundRequest:
    pending = await session.scalar(
        select(RefundRequest.id).where(
            RefundRequest.order_id == order.id, RefundRequest.status == "pending"
        )
    )
    if pending is not None:
        raise RefundRequestDecided(
            "A refund request of this order is already waiting for approval",
            field="order_id",
            reason="pending_request",
        )
    request = RefundRequest(
        order_id=order.id,
        store_id=order.store_id,
        status="pending",
        amount_fen=amount,
        body=body,
        reason=reason,
        requested_at=utcnow(),
        requested_by_id=actor.audit_id,
        requested_by=actor.name,
        requester_limit_fen=actor.refund_limit_fen,
    )
    session.add(request)
    await session.flush()
    await audit.record(
        session,
        actor,
        "order.refund_approval.request",
        "order",
        order.id,
        store_id=order.store_id,
        after={
            "request_id": request.id,
            "amount_fen": amount,
            "limit_fen": actor.refund_limit_fen,
            "body": request.body,
        },
        note=reason,
    )
    lifecycle.add_event(
        session,
        order,
        actor=actor,
        kind="refund",
        reason="refund_approval_requested",
        note=reason,
        data={"request_id": request.id, "amount_fen": amount},
    )
    return request


async def create_for_difference(
    session: AsyncSession,
    order: Order,
    issue: OrderIssue,
    amount: int,
    *,
    note: str | None,
    reference: str | None,
    actor: Actor,
) -> RefundRequest:
    """Ask for an abnormal order's difference (price or amount mismatch) to be given back; on
    approval the issue's refund_difference is carried out by the approver."""
    body: dict[str, Any] = {
        "kind": DIFFERENCE,
        "issue_id": issue.id,
        "reason": f"{issue.kind}: difference refunded",
        "note": note,
        "reference": reference,
    }
    return await _store(session, order, body, amount, reason=body["reason"], actor=actor)


async def create_for_cancel_lines(
    session: AsyncSession,
    order: Order,
    issue: OrderIssue,
    line_ids: list[int],
    amount: int,
    *,
    note: str | None,
    actor: Actor,
) -> RefundRequest:
    """Ask for a paid abnormal order's lines to be cancelled (their refund is `amount`); on
    approval the issue's cancel_lines is carried out by the approver."""
    body: dict[str, Any] = {
        "kind": CANCEL_LINES,
        "issue_id": issue.id,
        "line_ids": line_ids,
        "reason": note or "lines cancelled: not on the shelf",
        "note": note,
    }
    return await _store(session, order, body, amount, reason=body["reason"], actor=actor)


def _visible(stmt: Any, actor: Actor) -> Any:
    """Requests of the actor's stores that the actor may decide, or asked for themselves."""
    if actor.store_ids is not None:
        stmt = stmt.where(RefundRequest.store_id.in_(actor.store_ids))
    if actor.refund_limit_fen is not None:
        stmt = stmt.where(
            or_(
                RefundRequest.amount_fen <= actor.refund_limit_fen,
                RefundRequest.requested_by_id == actor.audit_id,
            )
        )
    return stmt


async def queue(
    session: AsyncSession,
    actor: Actor,
    params: PageParams,
    *,
    status: str = "pending",
    order_id: int | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Requests, oldest first (pending) or newest decided first."""
    stmt = _visible(
        select(
            RefundRequest,
            Order.order_no,
            Order.status.label("order_status"),
            Store.name.label("store_name"),
            Store.timezone.label("store_timezone"),
        )
        .join(Order, Order.id == RefundRequest.order_id)
        .join(Store, Store.id == RefundRequest.store_id)
        .where(RefundRequest.status == status),
        actor,
    )
    if order_id is not None:
        stmt = stmt.where(RefundRequest.order_id == order_id)
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    if status == "pending":
        stmt = stmt.order_by(RefundRequest.requested_at, RefundRequest.id)
    else:
        stmt = stmt.order_by(RefundRequest.decided_at.desc(), RefundRequest.id.desc())
    rows = (await session.execute(stmt.limit(params.size).offset(params.offset))).all()
    items = []
    for row in rows:
        item = present(row.RefundRequest, actor)
        item.update(
            order_no=row.order_no,
            order_status=row.order_status,
            store_name=row.store_name,
            store_timezone=row.store_timezone,
        )
        items.append(item)
    return items, int(total or 0)


def present(request: RefundRequest, actor: Actor) -> dict[str, Any]:
    data = {c.key: getattr(request, c.key) for c in RefundRequest.__table__.columns}
    data["can_decide"] = request.status == "pending" and covers(actor, request.amount_fen)
    return data


async def get_for_actor(session: AsyncSession, request_id: int, actor: Actor) -> RefundRequest:
    stmt = select(RefundRequest).where(RefundRequest.id == request_id)
    if actor.store_ids is not None:
        stmt = stmt.where(RefundRequest.store_id.in_(actor.store_ids))
    request = await session.scalar(stmt)
    if request is None:
        raise RefundRequestNotFound(field="request_id")
    return request


async def _claim(
    session: AsyncSession, request: RefundRequest, status: str, note: str | None, actor: Actor
) -> Order:
    """Hold the order, then move the request out of pending exactly once (409 if someone
    decided it first: two approvals at once refund once)."""
    refunds.check_limit(actor, request.amount_fen)
    order = await session.get_one(
        Order, request.order_id, with_for_update=True, populate_existing=True
    )
    result = await session.execute(
        update(RefundRequest)
        .where(RefundRequest.id == request.id, RefundRequest.status == "pending")
        .values(
            status=status,
            decided_at=utcnow(),
            decided_by_id=actor.audit_id,
            decided_by=actor.name,
            decision_note=note,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise RefundRequestDecided(field="request_id", reason="already_decided")
    await session.refresh(request)
    return order


async def approve(
    session: AsyncSession, request: RefundRequest, *, note: str | None, actor: Actor
) -> RefundRequest:
    """Make the refund asked for, as the approver (their limit must cover it)."""
    order = await _claim(session, request, "approved", note, actor)
    await audit.record(
        session,
        actor,
        "order.refund_approval.approve",
        "order",
        order.id,
        store_id=order.store_id,
        before={"request_id": request.id, "status": "pending"},
        after={"request_id": request.id, "status": "approved", "amount_fen": request.amount_fen},
        note=note,
    )
    lifecycle.add_event(
        session,
        order,
        actor=actor,
        kind="refund",
        reason="refund_approval_approved",
        note=note,
        data={
            "request_id": request.id,
            "amount_fen": request.amount_fen,
            "requested_by": request.requested_by,
        },
    )
    if request.body.get("kind") == DIFFERENCE:
        request.refund_id = await _refund_difference(session, order, request, actor=actor)
    elif request.body.get("kind") == CANCEL_LINES:
        request.refund_id = await _cancel_lines(session, order, request, actor=actor)
    else:
        record = await refunds.refund(
            session, order, RefundBody.model_validate(request.body), actor=actor
        )
        request.refund_id = record.id
    await session.flush()
    return request


async def _refund_difference(
    session: AsyncSession, order: Order, request: RefundRequest, *, actor: Actor
) -> int | None:
    """The abnormal order's refund_difference, carried out by the approver; 409 if the issue
    was settled meanwhile (the request is then rejected, not approved)."""
    from selfmart.orders import issues

    issue = await _open_issue(session, request)
    before = {r.id for r in await _order_refunds(session, order.id)}
    await issues.refund_difference(
        session,
        order,
        issue,
        note=request.body.get("note"),
        reference=request.body.get("reference"),
        actor=actor,
    )
    made = [r.id for r in await _order_refunds(session, order.id) if r.id not in before]
    return made[-1] if made else None


async def _cancel_lines(
    session: AsyncSession, order: Order, request: RefundRequest, *, actor: Actor
) -> int | None:
    """The abnormal order's cancel_lines, carried out by the approver; 409 if the issue was
    settled meanwhile (the request is then rejected, not approved)."""
    from selfmart.orders import issues

    issue = await _open_issue(session, request)
    before = {r.id for r in await _order_refunds(session, order.id)}
    await issues.cancel_lines(
        session,
        order,
        issue,
        [int(i) for i in request.body["line_ids"]],
        note=request.body.get("note"),
        actor=actor,
    )
    made = [r.id for r in await _order_refunds(session, order.id) if r.id not in before]
    return made[-1] if made else None


async def _open_issue(session: AsyncSession, request: RefundRequest) -> OrderIssue:
    issue = await session.get(OrderIssue, int(request.body["issue_id"]), populate_existing=True)
    if issue is None or issue.status != "open":
        raise RefundRequestDecided(
            "The abnormal order was settled meanwhile; reject this request",
            field="request_id",
            reason="issue_resolved",
        )
    return issue


async def _order_refunds(session: AsyncSession, order_id: int) -> list[Refund]:
    return list((await session.scalars(select(Refund).where(Refund.order_id == order_id))).all())


async def reject(
    session: AsyncSession, request: RefundRequest, *, note: str | None, actor: Actor
) -> RefundRequest:
    if not note or not note.strip():
        raise ValidationFailed("Say why the refund is rejected", field="note")
    order = await _claim(session, request, "rejected", note, actor)
    await audit.record(
        session,
        actor,
        "order.refund_approval.reject",
        "order",
        order.id,
        store_id=order.store_id,
        before={"request_id": request.id, "status": "pending"},
        after={"request_id": request.id, "status": "rejected", "amount_fen": request.amount_fen},
        note=note,
    )
    lifecycle.add_event(
        session,
        order,
        actor=actor,
        kind="refund",
        reason="refund_approval_rejected",
        note=note,
        data={"request_id": request.id, "amount_fen": request.amount_fen},
    )
    return request

"""Abnormal orders, worked to an end: the queue, the actions that fit each kind of issue, and
the automatic rules that run before anyone is bothered."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.errors import ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.kit.pagination import PageParams
from selfmart.kit.time import utcnow
from selfmart.models import Order, OrderIssue, OrderLine, Payment, Store
from selfmart.models.order import RefundRequest
from selfmart.orders import lifecycle, statemachine
from selfmart.orders.exceptions import ActionNotAllowed, IssueNotFound, refused
from selfmart.orders.schemas import IssueAction
from selfmart.orders.statemachine import OrderStatus
from selfmart.payments import channels

S = OrderStatus

#: The actions that fit each kind of issue, in the order the console offers them.
ACTIONS: dict[str, tuple[str, ...]] = {
    "payment_failed": ("requery_payment", "retry_payment", "remind", "close"),
    "stock_short": ("substitute_lines", "cancel_lines", "write_off", "close"),
    "price_mismatch": ("refund_difference", "write_off", "close"),
    "amount_mismatch": ("requery_payment", "refund_difference", "remind", "write_off", "close"),
    "refund_failed": ("requery_payment", "close"),
}
#: Automatic re-queries before an issue goes to a person, and the pause between them.
AUTO_ATTEMPTS = 3
AUTO_BACKOFF = timedelta(minutes=1)
#: A payment retried from the queue waits this long again before the close-unpaid job.
RETRY_PAYMENT_WINDOW = timedelta(minutes=15)

AnySelect = Select[*tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What decides which actions can work on an order's issues right now."""

    status: str
    total_fen: int
    paid_fen: int
    refunded_fen: int
    terminal_total_fen: int | None
    has_phone: bool
    #: the channel of the order's latest payment (the one a re-query asks about)
    payment_channel: str | None
    #: a refund of this order waits for approval (refund_requests)
    refund_pending: bool = False
    #: how the latest payment was made when it went through a merchant account on a platform
    #: (code, qr, h5, card); None for a manual/test channel payment or none at all
    platform_mode: str | None = None
    #: linked to a member, who can be reminded by a member message
    has_member: bool = False

    @classmethod
    def of(
        cls,
        order: Order,
        payment_channel: str | None,
        *,
        refund_pending: bool = False,
        platform_mode: str | None = None,
    ) -> OrderFacts:
        return cls(
            status=order.status,
            total_fen=order.total_fen,
            paid_fen=order.paid_fen,
            refunded_fen=order.refunded_fen,
            terminal_total_fen=order.terminal_total_fen,
            has_phone=bool(order.customer_phone),
            payment_channel=payment_channel,
            refund_pending=refund_pending,
            platform_mode=platform_mode,
            has_member=order.member_id is not None,
        )


async def order_facts(session: AsyncSession, order_ids: Iterable[int]) -> dict[int, OrderFacts]:
    """The facts of these orders, in two queries (the orders; each one's latest payment)."""
    ids = sorted(set(order_ids))
    if not ids:
        return {}
    latest = (
        select(func.max(Payment.id)).where(Payment.order_id.in_(ids)).group_by(Payment.order_id)
    )
    rows = (
        await session.execute(
            select(Payment.order_id, Payment.channel, Payment.account_id, Payment.mode).where(
                Payment.id.in_(latest)
            )
        )
    ).all()
    channels_by_order = {row.order_id: row.channel for row in rows}
    modes = {row.order_id: row.mode or "code" for row in rows if row.account_id is not None}
    pending = set(
        (
            await session.scalars(
                select(RefundRequest.order_id).where(
                    RefundRequest.order_id.in_(ids), RefundRequest.status == "pending"
                )
            )
        ).all()
    )
    orders = (await session.scalars(select(Order).where(Order.id.in_(ids)))).all()
    return {
        o.id: OrderFacts.of(
            o,
            channels_by_order.get(o.id),
            refund_pending=o.id in pending,
            platform_mode=modes.get(o.id),
        )
        for o in orders
    }


def difference_fen(kind: str, facts: OrderFacts) -> int:
    """The money a refund_difference gives back (0: none)."""
    left = facts.paid_fen - facts.refunded_fen
    if kind == "price_mismatch":
        if facts.terminal_total_fen is None or facts.terminal_total_fen >= facts.total_fen:
            return 0
        return max(0, min(facts.total_fen - facts.terminal_total_fen, left))
    if kind == "amount_mismatch":
        return max(0, left - facts.total_fen)
    return 0


#: Why an action cannot work now: a stable reason code (the console translates it) and words.
Refusal = tuple[str, str]


def refusal(kind: str, action: str, facts: OrderFacts) -> Refusal | None:
    """Why `action` cannot work on an open `kind` issue of an order like `facts` (None: it can).

    The queue offers only the actions this allows, and acting checks it again under the
    order's lock, so what the console offers and what the server accepts are one rule."""
    if action not in ACTIONS.get(kind, ()):
        return "not_for_kind", f"{action} does not fit a {kind} issue"
    status = facts.status
    owed = facts.total_fen - facts.paid_fen
    if action == "requery_payment":
        if facts.payment_channel is None:
            return "no_payment", "This order has no payment to re-query"
        if not _queryable(facts.payment_channel):
            return (
                "channel_not_queryable",
                f"The {facts.payment_channel} channel has no platform to ask",
            )
    elif action == "retry_payment":
        if not statemachine.can_move(status, S.AWAITING_PAYMENT):
            return "order_state", f"A {status} order cannot wait for payment again"
        if facts.platform_mode in channels.CUSTOMER_PRESENT_MODES:
            return (
                "needs_customer",
                "A payment-code or card payment needs the customer at the terminal: they pay "
                "again there (the terminal reopens the order), or send them a reminder",
            )
    elif action == "remind":
        if owed <= 0 or status not in (*statemachine.UNPAID_STATES, *statemachine.PAID_STATES):
            return "nothing_owed", "Nothing is owed on this order"
        if not (facts.has_phone or facts.has_member):
            return "no_customer_phone", "This order has no customer phone to text"
    elif action == "substitute_lines":
        if status not in (S.AWAITING_PAYMENT, S.PAYMENT_FAILED, S.OUT_OF_STOCK):
            return "order_state", f"Lines of a {status} order cannot be replaced"
    elif action == "cancel_lines":
        if status not in (
            S.AWAITING_PAYMENT,
            S.PAYMENT_FAILED,
            S.OUT_OF_STOCK,
            *statemachine.REFUNDABLE_STATES,
        ):
            return "order_state", f"Lines of a {status} order cannot be cancelled"
        if facts.refund_pending and status in statemachine.REFUNDABLE_STATES:
            return "pending_request", "A refund of this order is waiting for approval"
    elif action == "refund_difference":
        if difference_fen(kind, facts) <= 0:
            return "no_difference", "There is no difference to refund"
        if facts.refund_pending:
            return "pending_request", "A refund of this order is waiting for approval"
    return None


def _queryable(channel: str) -> bool:
    if channel in channels.PLATFORM_CHANNELS:
        return True  # asked through the payment's merchant account
    try:
        return channels.get(channel).queryable
    except ValidationFailed:  # a channel no longer registered
        return False


def allowed_actions(issue: OrderIssue, facts: OrderFacts | None) -> list[str]:
    if issue.status != "open" or facts is None:
        return []
    return [a for a in ACTIONS.get(issue.kind, ()) if refusal(issue.kind, a, facts) is None]


def present(issue: OrderIssue, facts: OrderFacts | None, now: datetime) -> dict[str, Any]:
    data = {c.key: getattr(issue, c.key) for c in OrderIssue.__table__.columns}
    end = issue.resolved_at or now
    data["waiting_seconds"] = max(0, int((end - issue.opened_at).total_seconds()))
    data["actions"] = allowed_actions(issue, facts)
    data["difference_fen"] = (
        difference_fen(issue.kind, facts)
        if facts is not None and "refund_difference" in ACTIONS.get(issue.kind, ())
        else None
    )
    return data


async def settle(
    session: AsyncSession, order: Order, kind: str, *, actor: Actor, resolution: str
) -> None:
    """Resolve the open issue of `kind` on the order, if there is one (the cause went away)."""
    issue = await session.scalar(
        select(OrderIssue).where(
            OrderIssue.order_id == order.id, OrderIssue.kind == kind, OrderIssue.status == "open"
        )
    )
    if issue is not None:
        await lifecycle.resolve_issue(session, order, issue, actor=actor, resolution=resolution)


async def settle_all(session: AsyncSession, order: Order, *, actor: Actor, resolution: str) -> None:
    for issue in (
        await session.scalars(
            select(OrderIssue).where(OrderIssue.order_id == order.id, OrderIssue.status == "open")
        )
    ).all():
        await lifecycle.resolve_issue(session, order, issue, actor=actor, resolution=resolution)


# ---------------------------------------------------------------- the queue


def _queue_statement(
    actor: Actor,
    *,
    status: str,
    kinds: list[str],
    store_ids: list[int],
    stage: str | None,
) -> AnySelect:
    stmt = (
        select(
            OrderIssue,
            Order.order_no,
            Order.status.label("order_status"),
            Order.total_fen,
            Store.code.label("store_code"),
            Store.name.label("store_name"),
            Store.timezone.label("store_timezone"),
        )
        .join(Order, Order.id == OrderIssue.order_id)
        .join(Store, Store.id == OrderIssue.store_id)
        .where(OrderIssue.status == status)
    )
    if actor.store_ids is not None:
        stmt = stmt.where(OrderIssue.store_id.in_(actor.store_ids))
    if kinds:
        stmt = stmt.where(OrderIssue.kind.in_(kinds))
    if store_ids:
        stmt = stmt.where(OrderIssue.store_id.in_(store_ids))
    if stage:
        stmt = stmt.where(OrderIssue.stage == stage)
    return stmt


async def queue(
    session: AsyncSession,
    actor: Actor,
    params: PageParams,
    *,
    status: str = "open",
    kinds: list[str] | None = None,
    store_ids: list[int] | None = None,
    stage: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Issues, longest waiting first."""
    stmt = _queue_statement(
        actor, status=status, kinds=kinds or [], store_ids=store_ids or [], stage=stage
    )
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = (
        await session.execute(
            stmt.order_by(OrderIssue.opened_at, OrderIssue.id)
            .limit(params.size)
            .offset(params.offset)
        )
    ).all()
    now = utcnow()
    facts = await order_facts(session, (row.OrderIssue.order_id for row in rows))
    items = []
    for row in rows:
        item = present(row.OrderIssue, facts.get(row.OrderIssue.order_id), now)
        item.update(
            order_no=row.order_no,
            order_status=row.order_status,
            total_fen=row.total_fen,
            store_code=row.store_code,
            store_name=row.store_name,
            store_timezone=row.store_timezone,
        )
        items.append(item)
    return items, int(total or 0)


async def get_for_actor(session: AsyncSession, issue_id: int, actor: Actor) -> OrderIssue:
    stmt = select(OrderIssue).where(OrderIssue.id == issue_id)
    if actor.store_ids is not None:
        stmt = stmt.where(OrderIssue.store_id.in_(actor.store_ids))
    issue = await session.scalar(stmt)
    if issue is None:
        raise IssueNotFound("Abnormal order not found", field="issue_id")
    return issue


# ---------------------------------------------------------------- acting on an issue


async def act(
    session: AsyncSession, issue: OrderIssue, body: IssueAction, *, actor: Actor
) -> OrderIssue:
    """Carry out one action on an open issue; every action is audited.

    The order's row is locked first and the issue read again under the lock: two people (or
    a double click) acting on the same issue at once take turns, and the second finds it
    settled (409) instead of, say, refunding the difference twice."""
    if body.action not in ACTIONS.get(issue.kind, ()):
        raise refused(
            "not_for_kind",
            f"{body.action} does not fit a {issue.kind} issue "
            f"(try: {', '.join(ACTIONS.get(issue.kind, ()))})",
        )
    order = await session.get_one(
        Order, issue.order_id, with_for_update=True, populate_existing=True
    )
    await session.refresh(issue)
    if issue.status != "open":
        raise refused("issue_resolved", "This abnormal order is already resolved", "issue_id")
    facts = (await order_facts(session, [order.id]))[order.id]
    why = refusal(issue.kind, body.action, facts)
    if why is not None:
        raise refused(*why)
    await audit.record(
        session,
        actor,
        f"order.issue.{body.action}",
        "order",
        order.id,
        store_id=order.store_id,
        after={"issue_id": issue.id, "kind": issue.kind, "action": body.action},
        note=body.note,
    )
    await _HANDLERS[body.action](session, order, issue, body, actor)
    await session.flush()
    await session.refresh(issue)
    return issue


def _need_note(body: IssueAction) -> str:
    if not body.note:
        raise ValidationFailed("Say why in a note", field="note")
    return body.note


async def _close(
    session: AsyncSession, order: Order, issue: OrderIssue, body: IssueAction, actor: Actor
) -> None:
    note = _need_note(body)
    await lifecycle.resolve_issue(session, order, issue, actor=actor, resolution="close", note=note)


async def _write_off(
    session: AsyncSession, order: Order, issue: OrderIssue, body: IssueAction, actor: Actor
) -> None:
    note = _need_note(body)
    await lifecycle.resolve_issue(
        session, order, issue, actor=actor, resolution="write_off", note=note
    )


async def _retry_payment(
    session: AsyncSession, order: Order, issue: OrderIssue, body: IssueAction, actor: Actor
) -> None:
    """Reopen the order's payment window; when its latest payment was a QR or phone-page
    payment on a platform, also start a fresh attempt there (same channel and mode, a new
    out_trade_no, the amount still owed): the terminal's or phone page's next read shows its
    new QR / page. Payment-code and card payments are refused earlier (`needs_customer`)."""
    latest = await session.scalar(
        select(Payment)
        .where(Payment.order_id == order.id, Payment.account_id.is_not(None))
        .order_by(Payment.id.desc())
        .limit(1)
    )
    await lifecycle.transition(
        session,
        order,
        S.AWAITING_PAYMENT,
        actor=actor,
        reason="retry_payment",
        note=body.note,
        audit_action="order.retry_payment",
    )
    order.expires_at = utcnow() + RETRY_PAYMENT_WINDOW
    await lifecycle.resolve_issue(
        session, order, issue, actor=actor, resolution="retry_payment", note=body.note
    )
    if latest is None or latest.mode not in ("qr", "h5"):
        return  # a manual or test channel payment (or a JSAPI one, which needs the payer's
        # openid): reopening is all that can be done; the customer pays when they come back
    from selfmart.payments import attempts as platform_attempts

    # Commits the reopened order with the new attempt before the platform is called (see
    # payments.attempts); an unreachable platform leaves the attempt pending for the job.
    await platform_attempts.pay(
        session,
        order_no=order.order_no,
        store_id=order.store_id,
        cmd=platform_attempts.PayCommand(
            attempt_id=f"issue{issue.id}-retry",
            channel=latest.channel,
            mode="qr" if latest.mode == "qr" else "h5",
        ),
        actor=actor,
    )


async def requery(session: AsyncSession, order: Order, issue: OrderIssue, actor: Actor) -> str:
    """Ask the channel what became of the order's latest payment; apply what it says.

    Returns the channel's status (succeeded, failed, pending, unknown)."""
    from selfmart.orders import service as orders

    payment = await session.scalar(
        select(Payment).where(Payment.order_id == order.id).order_by(Payment.id.desc()).limit(1)
    )
    if payment is None:
        raise refused("no_payment", "This order has no payment to re-query")
    if not _queryable(payment.channel):
        raise refused(
            "channel_not_queryable", f"The {payment.channel} channel has no platform to ask"
        )
    if payment.account_id is not None:
        # A platform payment: asked through its merchant account; the answer is applied as
        # a callback's would be (paid, failed, amount mismatch, paid twice).
        from selfmart.payments import attempts as platform_attempts

        answer = await platform_attempts.query_locked(session, order, payment, actor=actor)
    else:
        answer = await channels.get(payment.channel).query(payment.channel_txn_id, order.order_no)
    await session.execute(
        update(OrderIssue)
        .where(OrderIssue.id == issue.id)
        .values(
            auto_attempts=OrderIssue.auto_attempts + 1,
            detail={**issue.detail, "last_query": answer.status},
        )
        .execution_options(synchronize_session=False)
    )
    lifecycle.add_event(
        session,
        order,
        actor=actor,
        kind="payment",
        reason="requery",
        data={"payment_id": payment.id, "answer": answer.status},
    )
    if (
        payment.account_id is None
        and answer.status == "succeeded"
        and payment.status != "succeeded"
    ):
        payment.status = "succeeded"
        payment.succeeded_at = answer.paid_at or utcnow()
        payment.amount_fen = answer.amount_fen or payment.amount_fen
        payment.channel_txn_id = answer.channel_txn_id or payment.channel_txn_id
        await session.flush()
        await orders.apply_payment(session, order, payment, actor=actor, reason="requery")
    return answer.status


async def _requery(
    session: AsyncSession, order: Order, issue: OrderIssue, body: IssueAction, actor: Actor
) -> None:
    await requery(session, order, issue, actor)


async def _refund_difference(
    session: AsyncSession, order: Order, issue: OrderIssue, body: IssueAction, actor: Actor
) -> None:
    from selfmart.orders import refund_requests

    amount = difference_fen(issue.kind, OrderFacts.of(order, None))
    if amount <= 0:
        raise refused("no_difference", "There is no difference to refund")
    if not refund_requests.covers(actor, amount):
        # Above the actor's limit: the refund waits for someone whose limit covers it; the
        # issue stays open (and says so) until that person approves or rejects it.
        request = await refund_requests.create_for_difference(
            session, order, issue, amount, note=body.note, reference=body.reference, actor=actor
        )
        issue.detail = {**issue.detail, "refund_request_id": request.id}
        return
    await refund_difference(
        session, order, issue, note=body.note, reference=body.reference, actor=actor
    )


async def refund_difference(
    session: AsyncSession,
    order: Order,
    issue: OrderIssue,
    *,
    note: str | None,
    reference: str | None,
    actor: Actor,
) -> None:
    """Give the difference back now and settle the issue (the order's row is held).

    The issue is settled in the same transaction that records the refund, before the platform
    is asked: a second click, or a crash before the answer, cannot refund it twice. A refund
    the platform refuses opens a refund_failed issue instead."""
    from selfmart.orders import refunds

    amount = difference_fen(issue.kind, OrderFacts.of(order, None))
    if amount <= 0:
        raise refused("no_difference", "There is no difference to refund")
    await lifecycle.resolve_issue(
        session, order, issue, actor=actor, resolution="refund_difference", note=note
    )
    await refunds.refund_amount(
        session,
        order,
        amount,
        reason=f"{issue.kind}: difference refunded",
        note=note,
        reference=reference,
        actor=actor,
    )


async def _remind(
    session: AsyncSession, order: Order, issue: OrderIssue, body: IssueAction, actor: Actor
) -> None:
    from selfmart.orders import service as orders

    # The issue stays open: it settles when the money arrives.
    await orders.remind(session, order, via=body.via, note=body.note, actor=actor)


async def _cancel_lines(
    session: AsyncSession, order: Order, issue: OrderIssue, body: IssueAction, actor: Actor
) -> None:
    from selfmart.orders import lines, refund_requests, refunds

    line_ids = body.line_ids or await _short_line_ids(session, issue, order)
    if order.status in statemachine.REFUNDABLE_STATES:
        # Paid: cancelling refunds the lines, so a refund above the actor's limit waits for
        # someone whose limit covers it; the issue stays open until they approve or reject.
        refund = await lines.cancel_refund_body(session, order, line_ids, note=body.note)
        _specs, amount = await refunds.plan(session, order, refund)
        if not refund_requests.covers(actor, amount):
            request = await refund_requests.create_for_cancel_lines(
                session, order, issue, line_ids, amount, note=body.note, actor=actor
            )
            issue.detail = {**issue.detail, "refund_request_id": request.id}
            return
    await cancel_lines(session, order, issue, line_ids, note=body.note, actor=actor)


async def cancel_lines(
    session: AsyncSession,
    order: Order,
    issue: OrderIssue,
    line_ids: list[int],
    *,
    note: str | None,
    actor: Actor,
) -> None:
    """Cancel the lines now and settle the issue (the order's row is held)."""
    from selfmart.orders import lines

    await lines.cancel_lines(session, order, line_ids, note=note, actor=actor)
    await lifecycle.resolve_issue(
        session, order, issue, actor=actor, resolution="cancel_lines", note=note
    )


async def _short_line_ids(session: AsyncSession, issue: OrderIssue, order: Order) -> list[int]:
    """Without line ids, a stock-short issue cancels the lines the shelf could not cover."""
    short = {int(x["product_id"]) for x in issue.detail.get("lines", []) if "product_id" in x}
    ids = (
        await session.scalars(
            select(OrderLine.id)
            .where(OrderLine.order_id == order.id, OrderLine.product_id.in_(short))
            .order_by(OrderLine.line_no)
        )
    ).all()
    if not ids:
        raise ValidationFailed("Name the lines to cancel", field="line_ids")
    return list(ids)


async def _substitute_lines(
    session: AsyncSession, order: Order, issue: OrderIssue, body: IssueAction, actor: Actor
) -> None:
    from selfmart.orders import lines

    if not body.substitutes:
        raise ValidationFailed("Say which product replaces which line", field="substitutes")
    await lines.substitute_lines(session, order, body.substitutes, note=body.note, actor=actor)
    await lifecycle.resolve_issue(
        session, order, issue, actor=actor, resolution="substitute_lines", note=body.note
    )


_HANDLERS: dict[str, Any] = {
    "remind": _remind,
    "cancel_lines": _cancel_lines,
    "substitute_lines": _substitute_lines,
    "close": _close,
    "write_off": _write_off,
    "retry_payment": _retry_payment,
    "requery_payment": _requery,
    "refund_difference": _refund_difference,
}


# ---------------------------------------------------------------- automatic rules


async def run_automatic_rules(session: AsyncSession, *, actor: Actor, limit: int = 100) -> int:
    """Re-query the platform for issues still in the automatic stage; after AUTO_ATTEMPTS
    answers that settle nothing, hand the issue to a person. Returns how many were worked."""
    now = utcnow()
    due = (
        await session.scalars(
            select(OrderIssue)
            .where(
                OrderIssue.status == "open",
                OrderIssue.stage == "auto",
                OrderIssue.next_auto_at <= now,
            )
            .order_by(OrderIssue.next_auto_at)
            .limit(limit)
        )
    ).all()
    worked = 0
    for issue in due:
        # The order first, then the issue, as a person's action takes them; an order someone
        # holds right now (a person acting, another runner) is left for the next run.
        order = await session.scalar(
            select(Order)
            .where(Order.id == issue.order_id)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        if order is None:
            continue
        await session.refresh(issue)
        if issue.status != "open" or issue.stage != "auto":
            continue  # settled or handed over meanwhile
        if issue.next_auto_at is None or issue.next_auto_at > now:
            continue  # another runner worked it meanwhile
        worked += 1
        try:
            status = await requery(session, order, issue, actor)
        except ActionNotAllowed:
            status = "not_queryable"
        await session.refresh(issue)
        if issue.status == "open":
            to_person = status == "not_queryable" or issue.auto_attempts >= AUTO_ATTEMPTS
            issue.stage = "person" if to_person else "auto"
            issue.next_auto_at = None if to_person else now + AUTO_BACKOFF * issue.auto_attempts
    await session.flush()
    return worked

"""The payments domain's background jobs: pending payments with no callback are asked about
on the platform (and closed or reversed there once past their deadline), and pending refunds
are asked about (or sent again, if they never reached the platform) until they settle."""

from __future__ import annotations

import functools
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import Actor, job_actor
from selfmart.jobs import runtime
from selfmart.jobs.registry import Every, task
from selfmart.kit import aftercommit
from selfmart.kit.time import utcnow
from selfmart.models import Payment, PaymentAccount, Refund
from selfmart.payments import accounts, attempts, refunds, twophase

QUERY_PAYMENTS = "payments.query_pending"
QUERY_REFUNDS = "payments.query_refunds"
#: A pending attempt is asked about once it has been quiet this long (callbacks come first).
QUIET = timedelta(seconds=20)
BATCH = 100


async def pending_payments(session: AsyncSession) -> list[int]:
    at = utcnow()
    rows = await session.scalars(
        select(Payment.id)
        .where(
            Payment.status == "pending",
            Payment.account_id.is_not(None),
            or_(
                Payment.updated_at.is_(None),
                Payment.updated_at <= at - QUIET,
                Payment.expires_at <= at,
            ),
        )
        .order_by(Payment.id)
        .limit(BATCH)
    )
    return list(rows.all())


async def query_payments(actor: Actor) -> int:
    """Ask about each quiet pending attempt (its own transaction each): returns how many."""
    async with runtime.sessionmaker()() as session:
        ids = await pending_payments(session)
    for payment_id in ids:
        async with runtime.sessionmaker()() as session:
            await attempts.refresh(session, payment_id, actor=actor)
            await aftercommit.run_pending(session)
    return len(ids)


@task(QUERY_PAYMENTS, schedule=[Every(30)])
async def query_pending() -> int:
    """Every 30 s: pending payments no callback settled are asked about on the platform."""
    return await query_payments(job_actor(QUERY_PAYMENTS))


async def pending_refunds(session: AsyncSession) -> list[int]:
    """Pending platform refunds, except one sent moments ago whose answer may be on its way."""
    at = utcnow()
    rows = await session.scalars(
        select(Refund.id)
        .where(
            Refund.status == "pending",
            Refund.account_id.is_not(None),
            or_(
                Refund.updated_at.is_not(None),
                Refund.created_at <= at - QUIET,
            ),
        )
        .order_by(Refund.id)
        .limit(BATCH)
    )
    return list(rows.all())


async def query_refunds(actor: Actor) -> int:
    """Settle each pending platform refund (its own transaction each): returns how many settled.

    A refund the platform never answered (the process died between recording and sending it,
    or the platform could not be reached) is sent again under the same `out_refund_no`: the
    platforms treat it as the same refund, so it is made once whether or not the first
    request arrived. One the platform did answer (processing) is asked about, and sent again
    likewise if the platform says it has no such refund (it answered a system error)."""
    async with runtime.sessionmaker()() as session:
        ids = await pending_refunds(session)
    settled = 0
    for refund_id in ids:
        async with runtime.sessionmaker()() as session:
            settled += await settle_refund(session, refund_id, actor=actor)
            await session.commit()
            await aftercommit.run_pending(session)
    return settled


async def settle_refund(session: AsyncSession, refund_id: int, *, actor: Actor) -> bool:
    """One pending platform refund sent again (if it never reached the platform) or asked
    about, and a final answer applied; commits on the way (`twophase`). Whether it settled."""
    refund = await session.get(Refund, refund_id)
    assert refund is not None
    if not refund.raw_response:
        refund = await refunds.send(session, refund_id, actor=actor)
        return refund.status != "pending"
    payment = await session.get(Payment, refund.payment_id)
    account = await session.get(PaymentAccount, refund.account_id)
    if payment is None or account is None or not refund.out_refund_no:
        return False
    ask = functools.partial(
        accounts.open_platform(account).query_refund,
        payment.out_trade_no or "",
        refund.out_refund_no,
        started_at=refund.created_at,
    )
    outcome = await twophase.call_outside(session, ask)
    answer = outcome.answer
    if answer is not None and answer.not_found:
        # The platform never took it (its answer to the request was a system error, or lost):
        # no refusal, so it is sent again under the same number, as the platforms say to.
        refund = await refunds.send(session, refund_id, actor=actor)
        return refund.status != "pending"
    if answer is None or answer.status not in ("succeeded", "failed"):
        return False
    order = await twophase.relock_order(session, refund.order_id)
    refund = await session.get(Refund, refund_id, populate_existing=True)
    assert refund is not None
    return await refunds.apply_answer(session, order, refund, answer, actor=actor) == "applied"


@task(refunds.SEND_REFUND_JOB)
async def send_refund(refund_id: int) -> bool:
    """One refund recorded after a callback (the extra of a double payment, a payment after its
    order closed), sent off the callback's path (`refunds.send_after_commit`); asked about
    instead if it was sent already. Whether it settled."""
    actor = job_actor(refunds.SEND_REFUND_JOB)
    async with runtime.sessionmaker()() as session:
        refund = await session.get(Refund, refund_id)
        if refund is None or refund.status != "pending":
            return False
        settled = await settle_refund(session, refund_id, actor=actor)
        await session.commit()
        await aftercommit.run_pending(session)
    return settled


@task(QUERY_REFUNDS, schedule=[Every(60)])
async def query_pending_refunds() -> int:
    """Every minute: pending refunds are asked about until the platform settles them."""
    return await query_refunds(job_actor(QUERY_REFUNDS))

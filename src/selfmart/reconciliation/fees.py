"""The fee rate agreed with each platform per merchant account (basis points), against which
every bill line's fee is checked."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.iam.actor import Actor
from selfmart.kit.time import utcnow
from selfmart.models import PaymentAccount, ReconciliationFeeRate
from selfmart.payments import accounts


async def rate_of(session: AsyncSession, account_id: int) -> int | None:
    """The account's rate in basis points; None when none is configured (fees unchecked)."""
    rate: int | None = await session.scalar(
        select(ReconciliationFeeRate.rate_bp).where(ReconciliationFeeRate.account_id == account_id)
    )
    return rate


async def list_rates(session: AsyncSession, account_ids: list[int]) -> list[ReconciliationFeeRate]:
    rows = await session.scalars(
        select(ReconciliationFeeRate)
        .where(ReconciliationFeeRate.account_id.in_(account_ids))
        .order_by(ReconciliationFeeRate.account_id)
    )
    return list(rows.all())


async def list_all(session: AsyncSession) -> list[ReconciliationFeeRate]:
    """Every configured rate (one per merchant account: a short table)."""
    rows = await session.scalars(
        select(ReconciliationFeeRate).order_by(ReconciliationFeeRate.account_id)
    )
    return list(rows.all())


async def visible_rates(session: AsyncSession, *, actor: Actor) -> list[ReconciliationFeeRate]:
    """The rates of the accounts `actor` may see."""
    visible = await accounts.list_accounts(session, actor=actor)
    ids = [a.id for a in visible if actor.store_ids is None or a.store_id in actor.store_ids]
    return await list_rates(session, ids)


async def adopt_sandbox_rates(
    session: AsyncSession, channels: list[str], *, actor: Actor
) -> list[ReconciliationFeeRate]:
    """The chain-wide accounts of `channels` (those set up against our payment sandboxes) get
    the fee rate each sandbox charges, so that their reconciliation checks the fees."""
    from selfmart.payments.sandboxes import fee_rates

    rates = fee_rates()
    made = await session.scalars(
        select(PaymentAccount).where(
            PaymentAccount.store_id.is_(None), PaymentAccount.channel.in_(channels)
        )
    )
    return [
        await set_rate(session, account, rates[account.channel], actor=actor)
        for account in made.all()
    ]


async def set_rate(
    session: AsyncSession, account: PaymentAccount, rate_bp: int, *, actor: Actor
) -> ReconciliationFeeRate:
    row = await session.get(ReconciliationFeeRate, account.id, with_for_update=True)
    before = None if row is None else {"rate_bp": row.rate_bp}
    if row is None:
        row = ReconciliationFeeRate(account_id=account.id, rate_bp=rate_bp, updated_at=utcnow())
        session.add(row)
    else:
        row.rate_bp = rate_bp
        row.updated_at = utcnow()
    await audit.record(
        session,
        actor,
        "reconciliation.fee_rate",
        "payment_account",
        account.id,
        store_id=account.store_id,
        before=before,
        after={"rate_bp": rate_bp},
        label=account.name or f"{account.channel} {account.merchant_id}",
    )
    await session.flush()
    return row

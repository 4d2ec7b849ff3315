"""Reading reconciliation runs: lists with filters, the accounts a daily run covers, and
totals per day and channel (the bills', the platforms' trailers, ours)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import Actor
from selfmart.models import PaymentAccount, ReconciliationRun
from selfmart.payments import accounts


def scoped_runs(stmt: Any, actor: Actor) -> Any:
    """Runs of the accounts `actor` may reconcile: every account for a user of all stores,
    otherwise only their stores' own accounts. A chain account's bill holds every store's
    money, so it is not shown to someone who sees only some stores."""
    stmt = stmt.join(PaymentAccount, PaymentAccount.id == ReconciliationRun.account_id)
    if actor.store_ids is not None:
        stmt = stmt.where(PaymentAccount.store_id.in_(actor.store_ids))
    return stmt


async def account_for(session: AsyncSession, account_id: int, *, actor: Actor) -> PaymentAccount:
    """The account if `actor` may reconcile it (as `scoped_runs`); otherwise not found."""
    account = await accounts.get_account(session, account_id, actor=actor, for_update=True)
    if actor.store_ids is not None and account.store_id not in actor.store_ids:
        raise accounts.PaymentAccountNotFound(f"No payment account {account_id}")
    return account


async def list_runs(
    session: AsyncSession,
    *,
    actor: Actor,
    date_from: date | None = None,
    date_to: date | None = None,
    channel: str | None = None,
    account_id: int | None = None,
    status: str | None = None,
) -> list[ReconciliationRun]:
    stmt = scoped_runs(select(ReconciliationRun), actor)
    conditions = []
    if date_from is not None:
        conditions.append(ReconciliationRun.bill_date >= date_from)
    if date_to is not None:
        conditions.append(ReconciliationRun.bill_date <= date_to)
    if channel is not None:
        conditions.append(ReconciliationRun.channel == channel)
    if account_id is not None:
        conditions.append(ReconciliationRun.account_id == account_id)
    if status is not None:
        conditions.append(ReconciliationRun.status == status)
    if conditions:
        stmt = stmt.where(and_(*conditions))
    rows = await session.scalars(
        stmt.order_by(ReconciliationRun.bill_date.desc(), ReconciliationRun.id)
    )
    return list(rows.all())


async def accounts_to_reconcile(
    session: AsyncSession, account_id: int | None = None
) -> list[PaymentAccount]:
    """The platform accounts a daily run covers (enabled ones, or the one asked for)."""
    stmt = select(PaymentAccount).where(PaymentAccount.channel != "manual")
    if account_id is not None:
        stmt = stmt.where(PaymentAccount.id == account_id)
    else:
        stmt = stmt.where(PaymentAccount.enabled.is_(True))
    return list((await session.scalars(stmt.order_by(PaymentAccount.id))).all())


async def totals(
    session: AsyncSession,
    *,
    actor: Actor,
    date_from: date | None = None,
    date_to: date | None = None,
    channel: str | None = None,
) -> list[dict[str, Any]]:
    """Per bill day and channel: the bills' gross, refunds, fees and net, the platforms'
    trailer totals beside them (None where a bill gives none), and ours."""
    out: dict[tuple[date, str], dict[str, Any]] = {}
    for run in await list_runs(
        session, actor=actor, date_from=date_from, date_to=date_to, channel=channel
    ):
        if run.status != "reconciled" and run.status != "no_bill":
            continue
        row = out.setdefault(
            (run.bill_date, run.channel),
            {
                "bill_date": run.bill_date,
                "channel": run.channel,
                "runs": 0,
                "differences": 0,
                "bill_gross_fen": 0,
                "bill_refund_fen": 0,
                "bill_fee_fen": 0,
                "trailer_gross_fen": None,
                "trailer_refund_fen": None,
                "trailer_fee_fen": None,
                "our_gross_fen": 0,
                "our_refund_fen": 0,
                "expected_fee_fen": None,
            },
        )
        row["runs"] += 1
        row["differences"] += run.difference_count
        for name in ("bill_gross_fen", "bill_refund_fen", "bill_fee_fen"):
            row[name] += getattr(run, name)
        row["our_gross_fen"] += run.our_gross_fen
        row["our_refund_fen"] += run.our_refund_fen
        for name in (
            "trailer_gross_fen",
            "trailer_refund_fen",
            "trailer_fee_fen",
            "expected_fee_fen",
        ):
            value = getattr(run, name)
            if value is not None:
                row[name] = (row[name] or 0) + value
    for row in out.values():
        row["bill_net_fen"] = row["bill_gross_fen"] - row["bill_refund_fen"] - row["bill_fee_fen"]
        row["our_net_fen"] = (
            row["our_gross_fen"] - row["our_refund_fen"] - (row["expected_fee_fen"] or 0)
        )
    return sorted(out.values(), key=lambda r: (r["bill_date"], r["channel"]), reverse=True)

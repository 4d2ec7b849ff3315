"""Reading reconciliation runs: lists with filters, the accounts a daily run covers, and
totals per day and channel (the bills', the platforms' trailers, ours)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import Actor
from selfmart.models import PaymentAccount, ReconciliationItem, ReconciliationRun
from selfmart.payments import accounts
from selfmart.reconciliation import fees
from selfmart.reconciliation.matching import DUPLICATE_LINE


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
    out: dict[tuple[date, str, str], dict[str, Any]] = {}
    for run in await list_runs(
        session, actor=actor, date_from=date_from, date_to=date_to, channel=channel
    ):
        if run.status != "reconciled" and run.status != "no_bill":
            continue
        row = out.setdefault(
            (run.bill_date, run.channel, run.kind),
            {
                "bill_date": run.bill_date,
                "channel": run.channel,
                "kind": run.kind,
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
    return sorted(
        out.values(),
        key=lambda r: (r["bill_date"], r["channel"], r["kind"] == "trade"),
        reverse=True,
    )


async def visible_accounts(session: AsyncSession, *, actor: Actor) -> list[PaymentAccount]:
    """The platform accounts whose runs `actor` may see (as `scoped_runs`)."""
    stmt = select(PaymentAccount).where(PaymentAccount.channel != "manual")
    if actor.store_ids is not None:
        stmt = stmt.where(PaymentAccount.store_id.in_(actor.store_ids))
    return list((await session.scalars(stmt.order_by(PaymentAccount.id))).all())


async def open_counts(session: AsyncSession, run_ids: list[int]) -> dict[int, tuple[int, int]]:
    """Per run: (open differences, differences held for the next day's bill)."""
    out: dict[int, tuple[int, int]] = {}
    for i in range(0, len(run_ids), 500):
        rows = await session.execute(
            select(
                ReconciliationItem.run_id,
                func.sum(case((ReconciliationItem.state == "open", 1), else_=0)),
                func.sum(case((ReconciliationItem.state == "pending", 1), else_=0)),
            )
            .where(
                ReconciliationItem.run_id.in_(run_ids[i : i + 500]),
                ReconciliationItem.state.in_(("open", "pending")),
            )
            .group_by(ReconciliationItem.run_id)
        )
        for run_id, open_, held in rows:
            out[int(run_id)] = (int(open_ or 0), int(held or 0))
    return out


def day_status(run: ReconciliationRun | None, unsettled: int) -> str:
    """A calendar cell: not_run, refused (the bill could not be read), open (differences to
    work: open, or held for the next day's bill), no_bill or matched (nothing to work).
    The rule `check-money` applies too: a held difference leaves its day unsettled until the
    next day's bill carries it (then it is no difference) or opens it."""
    if run is None:
        return "not_run"
    if run.status == "refused":
        return run.status
    if unsettled:
        return "open"
    return run.status if run.status == "no_bill" else "matched"


async def calendar(
    session: AsyncSession, *, actor: Actor, date_from: date, date_to: date
) -> dict[str, Any]:
    """Every visible account × day of [date_from, date_to] with its status; days without a
    run are `not_run`."""
    accounts_ = await visible_accounts(session, actor=actor)
    found = [
        r
        for r in await list_runs(session, actor=actor, date_from=date_from, date_to=date_to)
        if r.kind == "trade"
    ]
    counts = await open_counts(session, [r.id for r in found])
    by_key = {(r.account_id, r.bill_date): r for r in found}
    cells = []
    day = date_from
    while day <= date_to:
        for account in accounts_:
            run = by_key.get((account.id, day))
            open_, held = counts.get(run.id, (0, 0)) if run is not None else (0, 0)
            cells.append(
                {
                    "account_id": account.id,
                    "bill_date": day,
                    "status": day_status(run, open_ + held),
                    "run_id": None if run is None else run.id,
                    "open": open_,
                    "held": held,
                    "differences": 0 if run is None else run.difference_count,
                    "last_error": None if run is None else run.last_error,
                }
            )
        day += timedelta(days=1)
    return {
        "accounts": [
            {
                "id": a.id,
                "channel": a.channel,
                "name": a.name,
                "store_id": a.store_id,
                "merchant_id": a.merchant_id,
            }
            for a in accounts_
        ],
        "cells": cells,
    }


_AMOUNT = ReconciliationItem.bill_amount_fen


async def fee_report(
    session: AsyncSession,
    *,
    actor: Actor,
    date_from: date | None = None,
    date_to: date | None = None,
    channel: str | None = None,
    store_id: int | None = None,
) -> list[dict[str, Any]]:
    """The bills' fees per day, channel, account and store, beside what the configured rate
    makes of the same lines (None where no rate is configured)."""
    stmt = scoped_runs(
        select(
            ReconciliationRun.bill_date,
            ReconciliationRun.channel,
            ReconciliationRun.account_id,
            ReconciliationItem.store_id,
            func.count(),
            func.sum(case((ReconciliationItem.kind == "payment", _AMOUNT), else_=0)),
            func.sum(case((ReconciliationItem.kind == "refund", _AMOUNT), else_=0)),
            func.sum(ReconciliationItem.bill_fee_fen),
            func.sum(ReconciliationItem.expected_fee_fen),
            func.count(ReconciliationItem.expected_fee_fen),
            func.sum(case((ReconciliationItem.difference == "fee_differs", 1), else_=0)),
        ).join(ReconciliationItem, ReconciliationItem.run_id == ReconciliationRun.id),
        actor,
    ).where(  # a duplicate line's money is the first line's, counted there
        ReconciliationItem.line_no.is_not(None), ReconciliationItem.difference != DUPLICATE_LINE
    )  # fmt: skip
    if date_from is not None:
        stmt = stmt.where(ReconciliationRun.bill_date >= date_from)
    if date_to is not None:
        stmt = stmt.where(ReconciliationRun.bill_date <= date_to)
    if channel is not None:
        stmt = stmt.where(ReconciliationRun.channel == channel)
    if store_id is not None:
        stmt = stmt.where(ReconciliationItem.store_id == store_id)
    stmt = stmt.group_by(
        ReconciliationRun.bill_date,
        ReconciliationRun.channel,
        ReconciliationRun.account_id,
        ReconciliationItem.store_id,
    ).order_by(
        ReconciliationRun.bill_date.desc(),
        ReconciliationRun.channel,
        ReconciliationRun.account_id,
        ReconciliationItem.store_id,
    )
    rows = list((await session.execute(stmt)).all())
    rates = {r.account_id: r.rate_bp for r in await fees.list_rates(
        session, sorted({int(r[2]) for r in rows}))}  # fmt: skip
    out = []
    for day, chan, account_id, store, lines, gross, refunds, fee, expected, rated, off in rows:
        fee_fen = int(fee or 0)
        expected_fen = int(expected or 0) if rated else None
        out.append(
            {
                "bill_date": day,
                "channel": chan,
                "account_id": int(account_id),
                "store_id": None if store is None else int(store),
                "lines": int(lines),
                "gross_fen": int(gross or 0),
                "refund_fen": int(refunds or 0),
                "fee_fen": fee_fen,
                "rate_bp": rates.get(int(account_id)),
                "expected_fee_fen": expected_fen,
                "fee_gap_fen": None if expected_fen is None else fee_fen - expected_fen,
                "fee_differs": int(off or 0),
            }
        )
    return out

"""`selfmart check-money`: the money ties out. Per store and day (the orders' day in the
store's zone), what the orders say they were paid less refunded equals the payments captured
less the refunds given for them; and every reconciled bill day's differences are matched,
carried into the next day's bill, or resolved with a note."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import (
    Order,
    Payment,
    PaymentAccount,
    ReconciliationItem,
    ReconciliationRun,
    Refund,
    Store,
)
from selfmart.reconciliation.matching import MATCHED
from selfmart.reconciliation.runs import DONE

#: how a difference may stand for its day to tie out
SETTLED = ("carried", "resolved")


@dataclass
class StoreDay:
    store_id: int
    store_code: str
    day: date
    orders_paid_fen: int = 0
    orders_refunded_fen: int = 0
    captured_fen: int = 0
    refunded_fen: int = 0

    @property
    def ties(self) -> bool:
        return (
            self.orders_paid_fen - self.orders_refunded_fen == self.captured_fen - self.refunded_fen
        )

    def describe(self) -> str:
        return (
            f"MISMATCH store={self.store_code} (id {self.store_id}) day={self.day}: "
            f"orders paid {self.orders_paid_fen} - refunded {self.orders_refunded_fen} = "
            f"{self.orders_paid_fen - self.orders_refunded_fen} fen, but payments captured "
            f"{self.captured_fen} - refunds given {self.refunded_fen} = "
            f"{self.captured_fen - self.refunded_fen} fen"
        )


@dataclass
class OpenDay:
    account_id: int
    account: str
    channel: str
    bill_date: date
    #: difference class -> count, of those neither matched, carried nor resolved with a note
    open: dict[str, int] = field(default_factory=dict)
    #: of those, held for the next day's bill (ours only near midnight, not yet carried)
    held: int = 0

    def describe(self) -> str:
        classes = ", ".join(f"{k} {v}" for k, v in sorted(self.open.items()))
        held = f"; {self.held} held for the next day's bill" if self.held else ""
        return (
            f"UNRESOLVED {self.channel} account={self.account} (id {self.account_id}) "
            f"day={self.bill_date}: {sum(self.open.values())} difference(s) not resolved "
            f"with a note ({classes}{held})"
        )


@dataclass
class Report:
    store_days: int = 0
    bill_days: int = 0
    mismatches: list[StoreDay] = field(default_factory=list)
    unresolved: list[OpenDay] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.unresolved

    def lines(self) -> list[str]:
        return [m.describe() for m in self.mismatches] + [u.describe() for u in self.unresolved]


async def _store_days(session: AsyncSession, day: date | None) -> list[StoreDay]:
    stores = {s.id: s for s in (await session.scalars(select(Store))).all()}
    orders = select(Order.id, Order.store_id, Order.created_at, Order.paid_fen, Order.refunded_fen)
    if day is not None:
        # every zone's day lies within a day either side of UTC's
        start = datetime.combine(day, time(0), tzinfo=ZoneInfo("UTC")) - timedelta(days=1)
        orders = orders.where(Order.created_at >= start, Order.created_at < start + timedelta(3))
    where: dict[int, tuple[int, date]] = {}
    days: dict[tuple[int, date], StoreDay] = {}
    for order_id, store_id, created_at, paid, refunded in await session.execute(orders):
        store = stores[store_id]
        local = created_at.astimezone(ZoneInfo(store.timezone or "Asia/Shanghai")).date()
        if day is not None and local != day:
            continue
        key = (store_id, local)
        where[order_id] = key
        row = days.get(key)
        if row is None:
            row = days[key] = StoreDay(store_id, store.code, local)
        row.orders_paid_fen += paid
        row.orders_refunded_fen += refunded
    captured = select(Payment.order_id, func.sum(Payment.amount_fen)).where(
        Payment.status == "succeeded"
    )
    given = select(Refund.order_id, func.sum(Refund.amount_fen)).where(Refund.status == "succeeded")
    for order_id, amount in await session.execute(captured.group_by(Payment.order_id)):
        if order_id in where:
            days[where[order_id]].captured_fen += int(amount or 0)
    for order_id, amount in await session.execute(given.group_by(Refund.order_id)):
        if order_id in where:
            days[where[order_id]].refunded_fen += int(amount or 0)
    return sorted(days.values(), key=lambda d: (d.day, d.store_code))


async def _bill_days(session: AsyncSession, day: date | None) -> tuple[int, list[OpenDay]]:
    runs = select(ReconciliationRun, PaymentAccount).join(
        PaymentAccount, PaymentAccount.id == ReconciliationRun.account_id
    )
    # A day the platform had no bill for still has ours only to account for (the calendar's
    # rule: see reports.day_status).
    runs = runs.where(ReconciliationRun.status.in_(DONE))
    if day is not None:
        runs = runs.where(ReconciliationRun.bill_date == day)
    found = (await session.execute(runs)).all()
    by_run = {run.id: (run, account) for run, account in found}
    items = (
        select(
            ReconciliationItem.run_id,
            ReconciliationItem.difference,
            func.count(),
            func.sum(case((ReconciliationItem.state == "pending", 1), else_=0)),
        )
        .where(
            ReconciliationItem.run_id.in_(list(by_run)),
            ReconciliationItem.difference != MATCHED,
            # resolved without a note does not count as resolved
            ~(
                ReconciliationItem.state.in_(SETTLED)
                & (
                    (ReconciliationItem.state == "carried")
                    | (func.length(func.coalesce(ReconciliationItem.note, "")) > 0)
                )
            ),
        )
        .group_by(ReconciliationItem.run_id, ReconciliationItem.difference)
    )
    open_: dict[int, dict[str, int]] = defaultdict(dict)
    held: dict[int, int] = defaultdict(int)
    if by_run:
        for run_id, difference, count, pending in await session.execute(items):
            open_[run_id][difference] = int(count)
            held[run_id] += int(pending or 0)
    out = []
    for run_id, classes in open_.items():
        run, account = by_run[run_id]
        out.append(
            OpenDay(
                account.id,
                account.name or account.merchant_id,
                account.channel,
                run.bill_date,
                classes,
                held[run_id],
            )
        )
    out.sort(key=lambda o: (o.bill_date, o.account_id))
    return len(by_run), out


async def check_money(session: AsyncSession, *, day: date | None = None) -> Report:
    """Everything that does not tie out, on `day` or on every day."""
    store_days = await _store_days(session, day)
    bill_days, unresolved = await _bill_days(session, day)
    return Report(
        store_days=len(store_days),
        bill_days=bill_days,
        mismatches=[d for d in store_days if not d.ties],
        unresolved=unresolved,
    )

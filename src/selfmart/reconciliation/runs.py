"""Reconciliation runs: download one account's bill for one day, read it, match every line
against our payments and refunds, and write the result, replacing any earlier run of the same
bill in the caller's transaction (so the same bill twice doubles nothing)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.errors import ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.kit.time import utcnow
from selfmart.models import (
    Payment,
    PaymentAccount,
    ReconciliationItem,
    ReconciliationRun,
    Refund,
)
from selfmart.payments import accounts
from selfmart.payments.platform import PlatformAccount, PlatformError
from selfmart.reconciliation import fees
from selfmart.reconciliation.bills import (
    BEIJING,
    BillLine,
    BillRefused,
    FundFlow,
    ParsedBill,
    parse,
    parse_fundflow,
)
from selfmart.reconciliation.matching import MATCHED, OURS_ONLY, REFUND_DIFFERS, Ours, judge

Opener = Callable[[PaymentAccount], PlatformAccount]
#: ids per IN (...) list when looking our records up
CHUNK = 500
#: the run states a later day's bill counts as "in" for a held ours-only difference
DONE = ("reconciled", "no_bill")
#: the bills each channel's platform gives per day
KINDS: dict[str, tuple[str, ...]] = {"wechat": ("trade", "fundflow")}


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The platform's bill day (Beijing) as a UTC interval [start, end)."""
    start = datetime.combine(day, time(0), tzinfo=BEIJING)
    return start, start + timedelta(days=1)


def _chunks(values: Iterable[str | int]) -> Iterable[list[Any]]:
    items = sorted(set(values), key=str)
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


async def _get_or_create(
    session: AsyncSession, account: PaymentAccount, day: date, kind: str, actor: Actor
) -> ReconciliationRun:
    stmt = select(ReconciliationRun).where(
        ReconciliationRun.account_id == account.id,
        ReconciliationRun.bill_date == day,
        ReconciliationRun.kind == kind,
    )
    run: ReconciliationRun | None = await session.scalar(stmt.with_for_update())
    if run is None:
        # Two first runs of one bill at once: the second's insert waits for the first's commit,
        # fails on the unique key, and takes the first's run (locked) instead of a 500.
        try:
            async with session.begin_nested():
                run = ReconciliationRun(
                    account_id=account.id,
                    channel=account.channel,
                    bill_date=day,
                    kind=kind,
                    status="refused",
                    attempts=0,
                    started_at=utcnow(),
                    line_count=0,
                    difference_count=0,
                    bill_gross_fen=0,
                    bill_refund_fen=0,
                    bill_fee_fen=0,
                    our_gross_fen=0,
                    our_refund_fen=0,
                    actor_name=actor.name,
                )
                session.add(run)
                await session.flush()
        except IntegrityError:
            run = await session.scalar(stmt.with_for_update())
            if run is None:
                raise
    return run


async def reconcile(
    session: AsyncSession,
    account: PaymentAccount,
    day: date,
    kind: str = "trade",
    *,
    actor: Actor,
    opener: Opener | None = None,
) -> ReconciliationRun:
    """Reconcile `account`'s `kind` bill of `day`. A download or file that cannot be read is
    recorded on the run (`last_error`) and changes nothing else; returns the run."""
    if kind not in KINDS.get(account.channel, ("trade",)):
        raise ValidationFailed(f"{account.channel} has no {kind} bill", field="kind")
    run = await _get_or_create(session, account, day, kind, actor)
    run.attempts += 1
    run.started_at = utcnow()
    run.actor_name = actor.name
    platform = (opener or accounts.open_platform)(account)
    flow: FundFlow | None = None
    parsed: ParsedBill | None = None
    try:
        data = await platform.download_bill(day, "trade" if kind == "trade" else "fundflow")
        if data is not None and kind == "fundflow":
            flow = parse_fundflow(account.channel, data)
        elif data is not None:
            parsed = parse(account.channel, data, merchant_id=account.merchant_id, bill_date=day)
    except (PlatformError, BillRefused) as exc:
        reason = (
            f"download failed ({exc.code}): {exc}" if isinstance(exc, PlatformError) else str(exc)
        )
        run.last_error = reason[:500]
        run.last_error_at = utcnow()
        await audit.record(
            session,
            actor,
            "reconciliation.refuse",
            "reconciliation_run",
            run.id,
            after={"bill_date": day.isoformat(), "account_id": account.id, "error": reason},
            label=f"{account.channel} {day.isoformat()}",
        )
        await session.flush()
        return run
    if kind == "fundflow":
        await _fund_flow(session, run, account, day, flow)
    else:
        await _replace(session, run, account, day, parsed)
    run.status = "no_bill" if data is None else "reconciled"
    run.file_sha256 = None if data is None else hashlib.sha256(data).hexdigest()
    run.file_size = None if data is None else len(data)
    run.last_error = None
    run.last_error_at = None
    run.finished_at = utcnow()
    if kind != "fundflow":
        await _settle_held(session, run, account, day)
    await audit.record(
        session,
        actor,
        "reconciliation.run",
        "reconciliation_run",
        run.id,
        after={
            "bill_date": day.isoformat(),
            "account_id": account.id,
            "status": run.status,
            "lines": run.line_count,
            "differences": run.difference_count,
        },
        label=f"{account.channel} {day.isoformat()}",
    )
    await session.flush()
    return run


@dataclass
class _Found:
    payments_by_txn: dict[str, Payment]
    payments_by_no: dict[str, Payment]
    refunds_by_ref: dict[str, Refund]
    refunds_by_no: dict[str, Refund]


async def _look_up(session: AsyncSession, account: PaymentAccount, lines: list[BillLine]) -> _Found:
    found = _Found({}, {}, {}, {})
    pay_txns = [x.transaction_id for x in lines if x.kind == "payment" and x.transaction_id]
    pay_nos = [x.out_trade_no for x in lines if x.kind == "payment" and x.out_trade_no]
    for chunk in _chunks(pay_txns):
        for p in await session.scalars(
            select(Payment).where(
                Payment.channel == account.channel, Payment.channel_txn_id.in_(chunk)
            )
        ):
            found.payments_by_txn[p.channel_txn_id or ""] = p
    for chunk in _chunks(pay_nos):
        for p in await session.scalars(
            select(Payment).where(Payment.account_id == account.id, Payment.out_trade_no.in_(chunk))
        ):
            found.payments_by_no[p.out_trade_no or ""] = p
    ref_ids = [x.refund_id for x in lines if x.kind == "refund" and x.refund_id]
    ref_nos = [x.out_refund_no for x in lines if x.kind == "refund" and x.out_refund_no]
    for chunk in _chunks(ref_ids):
        for r in await session.scalars(
            select(Refund).where(
                Refund.channel == account.channel, Refund.channel_refund_id.in_(chunk)
            )
        ):
            found.refunds_by_ref[r.channel_refund_id or ""] = r
    for chunk in _chunks(ref_nos):
        for r in await session.scalars(
            select(Refund).where(Refund.account_id == account.id, Refund.out_refund_no.in_(chunk))
        ):
            found.refunds_by_no[r.out_refund_no or ""] = r
    return found


def _ours_payment(p: Payment) -> Ours:
    return Ours(p.id, p.order_id, p.store_id, p.amount_fen, p.status)


def _ours_refund(r: Refund) -> Ours:
    return Ours(r.id, r.order_id, r.store_id, r.amount_fen, r.status, payment_id=r.payment_id)


def _line_doc(line: BillLine) -> dict[str, str]:
    return dict(line.raw)


async def _matched_elsewhere(
    session: AsyncSession, run: ReconciliationRun, column: Any, ids: Sequence[int]
) -> set[int]:
    """Of `ids`, those a bill line of another run of this account already accounts for."""
    out: set[int] = set()
    for chunk in _chunks(ids):
        rows = await session.scalars(
            select(column)
            .join(ReconciliationRun, ReconciliationRun.id == ReconciliationItem.run_id)
            .where(
                ReconciliationRun.account_id == run.account_id,
                ReconciliationRun.kind == run.kind,
                ReconciliationRun.id != run.id,
                ReconciliationItem.line_no.is_not(None),
                column.in_(chunk),
            )
        )
        out.update(int(x) for x in rows)
    return out


async def _next_day_in(session: AsyncSession, run: ReconciliationRun) -> bool:
    found = await session.scalar(
        select(ReconciliationRun.id).where(
            ReconciliationRun.account_id == run.account_id,
            ReconciliationRun.kind == run.kind,
            ReconciliationRun.bill_date == run.bill_date + timedelta(days=1),
            ReconciliationRun.status.in_(DONE),
        )
    )
    return found is not None


async def _replace(
    session: AsyncSession,
    run: ReconciliationRun,
    account: PaymentAccount,
    day: date,
    parsed: ParsedBill | None,
) -> None:
    lines = [] if parsed is None else parsed.lines
    rate = await fees.rate_of(session, account.id)
    found = await _look_up(session, account, lines)
    items: list[dict[str, Any]] = []
    seen_payments: set[int] = set()
    seen_refunds: set[int] = set()
    for line in lines:
        payment: Payment | None = None
        refund: Refund | None = None
        if line.kind == "payment":
            payment = found.payments_by_txn.get(line.transaction_id) or found.payments_by_no.get(
                line.out_trade_no
            )
            ours = None if payment is None else _ours_payment(payment)
        else:
            refund = found.refunds_by_ref.get(line.refund_id) or found.refunds_by_no.get(
                line.out_refund_no
            )
            ours = None if refund is None else _ours_refund(refund)
        verdict = judge(line, ours, rate)
        if payment is not None:
            seen_payments.add(payment.id)
        if refund is not None:
            seen_refunds.add(refund.id)
        items.append(
            {
                "difference": verdict.difference,
                "state": "ok" if verdict.difference == MATCHED else "open",
                "kind": line.kind,
                "line_no": line.line_no,
                "transaction_id": line.transaction_id or None,
                "out_trade_no": line.out_trade_no or None,
                "out_refund_no": line.out_refund_no or None,
                "refund_ref": line.refund_id or None,
                "payment_id": None if payment is None else payment.id,
                "refund_id": None if refund is None else refund.id,
                "order_id": None if ours is None else ours.order_id,
                "store_id": None if ours is None else ours.store_id,
                "our_amount_fen": None if ours is None else ours.amount_fen,
                "our_status": None if ours is None else ours.status,
                "bill_amount_fen": line.amount_fen,
                "bill_status": line.status,
                "bill_fee_fen": line.fee_fen,
                "expected_fee_fen": verdict.expected_fee_fen,
                "occurred_at": line.occurred_at,
                "detail": verdict.detail,
                "line": _line_doc(line),
            }
        )
    # Ours on the day that the bill does not have: held until the next day's bill is in,
    # since a payment near midnight may be in that one; never one a bill already holds.
    start, end = day_bounds(day)
    our_payments = list(
        await session.scalars(
            select(Payment).where(
                Payment.account_id == account.id,
                Payment.status == "succeeded",
                Payment.succeeded_at >= start,
                Payment.succeeded_at < end,
            )
        )
    )
    our_refunds = list(
        await session.scalars(
            select(Refund).where(
                Refund.account_id == account.id,
                Refund.status == "succeeded",
                Refund.completed_at >= start,
                Refund.completed_at < end,
            )
        )
    )
    missing_p = [p for p in our_payments if p.id not in seen_payments]
    missing_r = [r for r in our_refunds if r.id not in seen_refunds]
    billed_p = await _matched_elsewhere(
        session, run, ReconciliationItem.payment_id, [p.id for p in missing_p]
    )
    billed_r = await _matched_elsewhere(
        session, run, ReconciliationItem.refund_id, [r.id for r in missing_r]
    )
    held = "open" if await _next_day_in(session, run) else "pending"
    for p in missing_p:
        if p.id in billed_p:
            continue
        items.append(
            _ours_only_item("payment", held, p.id, None, p.order_id, p.store_id, p.amount_fen)
            | {"out_trade_no": p.out_trade_no, "transaction_id": p.channel_txn_id,
               "occurred_at": p.succeeded_at, "detail": "paid here; not in the platform's bill"}
        )  # fmt: skip
    for r in missing_r:
        if r.id in billed_r:
            continue
        items.append(
            _ours_only_item(
                "refund", held, r.payment_id, r.id, r.order_id, r.store_id, r.amount_fen
            )
            | {"difference": REFUND_DIFFERS, "out_refund_no": r.out_refund_no,
               "refund_ref": r.channel_refund_id, "occurred_at": r.completed_at,
               "detail": "refunded here; not in the platform's bill"}
        )  # fmt: skip

    kept = await _resolutions(session, run)
    alerted = await _alerted(session, run)
    await session.execute(delete(ReconciliationItem).where(ReconciliationItem.run_id == run.id))
    for item in items:
        item["run_id"] = run.id
        item["alerted_at"] = None
        if item["state"] != "ok":
            item["alerted_at"] = alerted.get(_key(item))
        previous = kept.get(_key(item))
        if previous is not None and item["state"] != "ok":
            item.update(previous)
    if items:
        await session.execute(insert(ReconciliationItem), items)

    pay_lines = [x for x in lines if x.kind == "payment"]
    ref_lines = [x for x in lines if x.kind == "refund"]
    run.line_count = len(lines)
    run.difference_count = sum(1 for x in items if x["difference"] != MATCHED)
    run.bill_gross_fen = sum(x.amount_fen for x in pay_lines)
    run.bill_refund_fen = sum(x.amount_fen for x in ref_lines)
    run.bill_fee_fen = sum(x.fee_fen for x in lines)
    trailer = None if parsed is None else parsed.trailer
    run.trailer_count = None if trailer is None else trailer.count
    run.trailer_gross_fen = None if trailer is None else trailer.gross_fen
    run.trailer_refund_fen = None if trailer is None else trailer.refund_fen
    run.trailer_fee_fen = None if trailer is None else trailer.fee_fen
    run.our_gross_fen = sum(
        int(x["our_amount_fen"] or 0)
        for x in items
        if x["kind"] == "payment" and x["our_status"] == "succeeded"
    )
    run.our_refund_fen = sum(
        int(x["our_amount_fen"] or 0)
        for x in items
        if x["kind"] == "refund" and x["our_status"] == "succeeded"
    )
    run.expected_fee_fen = (
        None
        if rate is None
        else sum(int(x["expected_fee_fen"] or 0) for x in items if x["line_no"] is not None)
    )


async def _fund_flow(
    session: AsyncSession,
    run: ReconciliationRun,
    account: PaymentAccount,
    day: date,
    flow: FundFlow | None,
) -> None:
    """A fund-flow bill is checked by totals: the money that moved on the account (trade
    income, refunds, fees) beside what we took and gave back that day. Its trailer gives only
    money in and out: in is the trailer's gross; out is checked against the lines when read."""
    start, end = day_bounds(day)
    our_gross = await session.scalar(
        select(func.coalesce(func.sum(Payment.amount_fen), 0)).where(
            Payment.account_id == account.id,
            Payment.status == "succeeded",
            Payment.succeeded_at >= start,
            Payment.succeeded_at < end,
        )
    )
    our_refund = await session.scalar(
        select(func.coalesce(func.sum(Refund.amount_fen), 0)).where(
            Refund.account_id == account.id,
            Refund.status == "succeeded",
            Refund.completed_at >= start,
            Refund.completed_at < end,
        )
    )
    await session.execute(delete(ReconciliationItem).where(ReconciliationItem.run_id == run.id))
    run.line_count = 0 if flow is None else flow.count
    run.difference_count = 0
    run.bill_gross_fen = 0 if flow is None else flow.income_fen
    run.bill_refund_fen = 0 if flow is None else flow.refund_fen
    run.bill_fee_fen = 0 if flow is None else flow.fee_fen
    run.trailer_count = None if flow is None else flow.count
    run.trailer_gross_fen = None if flow is None else flow.trailer_income_fen
    run.trailer_refund_fen = None
    run.trailer_fee_fen = None
    run.our_gross_fen = int(our_gross or 0)
    run.our_refund_fen = int(our_refund or 0)
    run.expected_fee_fen = None


def _ours_only_item(
    kind: str,
    state: str,
    payment_id: int | None,
    refund_id: int | None,
    order_id: int,
    store_id: int,
    amount_fen: int,
) -> dict[str, Any]:
    return {
        "difference": OURS_ONLY,
        "state": state,
        "kind": kind,
        "line_no": None,
        "transaction_id": None,
        "out_trade_no": None,
        "out_refund_no": None,
        "refund_ref": None,
        "payment_id": payment_id,
        "refund_id": refund_id,
        "order_id": order_id,
        "store_id": store_id,
        "our_amount_fen": amount_fen,
        "our_status": "succeeded",
        "bill_amount_fen": None,
        "bill_status": None,
        "bill_fee_fen": None,
        "expected_fee_fen": None,
        "occurred_at": None,
        "detail": "",
        "line": {},
    }


def _key(item: dict[str, Any]) -> tuple[Any, ...]:
    return (
        item["difference"],
        item["kind"],
        item["payment_id"],
        item["refund_id"],
        item["transaction_id"],
        item["out_refund_no"],
    )


_RESOLUTION = ("state", "resolution", "note", "resolved_by", "resolved_at")


async def _resolutions(
    session: AsyncSession, run: ReconciliationRun
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The resolved differences of the run being replaced, by what they are about, so that a
    rerun keeps a person's decision on a difference that is still there."""
    rows = await session.scalars(
        select(ReconciliationItem).where(
            ReconciliationItem.run_id == run.id, ReconciliationItem.state == "resolved"
        )
    )
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        doc = {c: getattr(row, c) for c in ("difference", "kind", "payment_id", "refund_id",
                                            "transaction_id", "out_refund_no")}  # fmt: skip
        out[_key(doc)] = {c: getattr(row, c) for c in _RESOLUTION}
    return out


async def _alerted(session: AsyncSession, run: ReconciliationRun) -> dict[tuple[Any, ...], Any]:
    """When each difference of the run being replaced was alerted, by what it is about, so
    that a rerun does not alert the same difference again."""
    rows = await session.scalars(
        select(ReconciliationItem).where(
            ReconciliationItem.run_id == run.id, ReconciliationItem.alerted_at.is_not(None)
        )
    )
    out: dict[tuple[Any, ...], Any] = {}
    for row in rows:
        doc = {c: getattr(row, c) for c in ("difference", "kind", "payment_id", "refund_id",
                                            "transaction_id", "out_refund_no")}  # fmt: skip
        out[_key(doc)] = row.alerted_at
    return out


async def _settle_held(
    session: AsyncSession, run: ReconciliationRun, account: PaymentAccount, day: date
) -> None:
    """The day before's held ours-only differences, now that this day's bill is in: carried
    when this bill has them (a payment across midnight), open when it does not."""
    before = await session.scalar(
        select(ReconciliationRun).where(
            ReconciliationRun.account_id == account.id,
            ReconciliationRun.kind == run.kind,
            ReconciliationRun.bill_date == day - timedelta(days=1),
        )
    )
    if before is None:
        return
    held = list(
        await session.scalars(
            select(ReconciliationItem).where(
                ReconciliationItem.run_id == before.id, ReconciliationItem.state == "pending"
            )
        )
    )
    if not held:
        return
    here = await session.execute(
        select(ReconciliationItem.payment_id, ReconciliationItem.refund_id).where(
            ReconciliationItem.run_id == run.id, ReconciliationItem.line_no.is_not(None)
        )
    )
    payments: set[int] = set()
    refunds: set[int] = set()
    for payment_id, refund_id in here:
        if refund_id is not None:
            refunds.add(refund_id)
        elif payment_id is not None:
            payments.add(payment_id)
    for item in held:
        found = (
            (item.refund_id in refunds) if item.kind == "refund" else (item.payment_id in payments)
        )
        if found:
            item.state = "carried"
            item.detail = f"in the bill of {day.isoformat()}"
            before.difference_count -= 1
        else:
            item.state = "open"
    await session.flush()

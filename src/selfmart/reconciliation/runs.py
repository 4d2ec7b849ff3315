"""Reconciliation runs: download one account's bill for one day, read it, match every line
against our payments and refunds, and write the result, replacing any earlier run of the same
bill in the caller's transaction (so the same bill twice doubles nothing)."""

from __future__ import annotations

import asyncio
import hashlib
import mmap
import operator
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, BinaryIO, cast

from sqlalchemy import (
    JSON,
    Column,
    CursorResult,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    and_,
    any_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.schema import CreateTable

from selfmart.audit import service as audit
from selfmart.db import JSONDoc, UTCDateTime
from selfmart.errors import ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.kit.hotsql import HotStatement, fetch_plain, insert_rows
from selfmart.kit.time import utcnow
from selfmart.models import (
    Payment,
    PaymentAccount,
    ReconciliationItem,
    ReconciliationRun,
    Refund,
)
from selfmart.payments import accounts
from selfmart.payments.platform import BillKind, PlatformAccount, PlatformError
from selfmart.reconciliation import fees
from selfmart.reconciliation.bills import (
    BEIJING,
    BillLine,
    BillRefused,
    FundFlow,
    StreamedBill,
    Trailer,
    check_totals,
    parse_fundflow,
    release,
    stream,
)
from selfmart.reconciliation.matching import (
    DUPLICATE_LINE,
    MATCHED,
    OURS_ONLY,
    REFUND_DIFFERS,
    SETTLED,
    Ours,
    expected_fee,
    judge,
)

Opener = Callable[[PaymentAccount], PlatformAccount]
#: bill lines read, looked up and written at a time (one query per kind of id for each)
LINES = 5_000
#: the run states a later day's bill counts as "in" for a held ours-only difference
DONE = ("reconciled", "no_bill")
#: the bills each channel's platform gives per day
KINDS: dict[str, tuple[str, ...]] = {"wechat": ("trade", "fundflow")}


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The platform's bill day (Beijing) as a UTC interval [start, end)."""
    start = datetime.combine(day, time(0), tzinfo=BEIJING)
    return start, start + timedelta(days=1)


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
    with tempfile.TemporaryFile(prefix="selfmart-bill-") as file:
        return await _reconcile_from(session, run, account, day, kind, actor, platform, file)


async def _download(
    platform: PlatformAccount, day: date, kind: str, file: BinaryIO
) -> bytes | mmap.mmap | None:
    """The bill in `file` (on disk, mapped: the pages read are the file's, not the process's
    own), or None for the platform's "no bill". A platform that can write it as it arrives
    does; otherwise its bytes are written there."""
    bill_kind: BillKind = "trade" if kind == "trade" else "fundflow"
    to_file = getattr(platform, "download_bill_to", None)
    if to_file is not None:
        if not await to_file(day, file, bill_kind):
            return None
    else:
        data = await platform.download_bill(day, bill_kind)
        if data is None:
            return None
        file.write(data)
    file.flush()
    if file.tell() == 0:
        return b""  # an empty file cannot be mapped; it is refused as no bill at all
    return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)


def _sha256(data: bytes | mmap.mmap) -> str:
    digest = hashlib.sha256()
    for start in range(0, len(data), 1 << 20):
        digest.update(data[start : start + (1 << 20)])
        release(data, start, start + (1 << 20))
    return digest.hexdigest()


async def _reconcile_from(
    session: AsyncSession,
    run: ReconciliationRun,
    account: PaymentAccount,
    day: date,
    kind: str,
    actor: Actor,
    platform: PlatformAccount,
    file: BinaryIO,
) -> ReconciliationRun:
    flow: FundFlow | None = None
    streamed: StreamedBill | None = None
    try:
        data = await _download(platform, day, kind, file)
        if data is not None and kind == "fundflow":
            flow = parse_fundflow(account.channel, data[:])
        elif data is not None:
            streamed = stream(
                account.channel, data, merchant_id=account.merchant_id, bill_date=day, chunk=LINES
            )
    except (PlatformError, BillRefused) as exc:
        reason = (
            f"download failed ({exc.code}): {exc}" if isinstance(exc, PlatformError) else str(exc)
        )
        await _refuse(session, run, account, day, actor, reason)
        return run
    if kind == "fundflow":
        await _fund_flow(session, run, account, day, flow)
    else:
        # The lines are written as they are read: a broken line further on, or lines that do
        # not add up to the bill's own totals (checked after the last), undo them all (the
        # savepoint), so that the previous result stays whole and nothing is half-written.
        try:
            async with session.begin_nested():
                totals = await _replace(session, run, account, day, streamed)
        except BillRefused as exc:
            await _refuse(session, run, account, day, actor, str(exc))
            return run
        totals.apply(run)
    run.status = "no_bill" if data is None else "reconciled"
    run.file_sha256 = None if data is None else _sha256(data)
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


async def _refuse(
    session: AsyncSession,
    run: ReconciliationRun,
    account: PaymentAccount,
    day: date,
    actor: Actor,
    reason: str,
) -> None:
    """Record that `day`'s bill could not be read; nothing else changes."""
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


#: our payment's or refund's columns matching reads, by what a bill line names it by
_PAYMENT = (Payment.id, Payment.order_id, Payment.store_id, Payment.amount_fen, Payment.status)
_REFUND = (Refund.id, Refund.order_id, Refund.store_id, Refund.amount_fen, Refund.status,
           Refund.payment_id)  # fmt: skip


def _lookup(columns: tuple[Any, ...], key: Any, scope: Any) -> HotStatement:
    """Our records whose `key` is one of `:values` (and whose `scope` column is `:scope`): the
    values as one parameter, whatever their number (a chunk's 5,000 ids): `= ANY(array)` on
    PostgreSQL, the values of a JSON array elsewhere (SQLite's json_each), rather than an IN
    list of thousands of parameters built and bound on every chunk."""
    head = select(key, *columns).where(scope == bindparam("scope"))
    each = func.json_each(bindparam("values", type_=JSON)).table_valued("value")
    return HotStatement(
        head.where(key == any_(bindparam("values", type_=ARRAY(String)))),
        other=head.where(key.in_(select(each.c.value))),
    )


#: the look-ups by each kind of id a bill line names ours by
_BY_TXN = _lookup(_PAYMENT, Payment.channel_txn_id, Payment.channel)
_BY_NO = _lookup(_PAYMENT, Payment.out_trade_no, Payment.account_id)
_BY_REF = _lookup(_REFUND, Refund.channel_refund_id, Refund.channel)
_BY_REFUND_NO = _lookup(_REFUND, Refund.out_refund_no, Refund.account_id)


async def _ours_by(
    session: AsyncSession, lookup: HotStatement, scope: Any, values: list[str]
) -> dict[str, Ours]:
    """Our records whose key is one of `values` (within `scope`), by that key. Run on the
    driver (compiled once; the columns read are plain ids, amounts and text): SQLAlchemy's
    statement and row machinery cost several times SQLite's own work on 5,000 rows."""
    if not values:
        return {}
    rows = await fetch_plain(session, lookup, {"scope": scope, "values": values})
    return {row[0]: Ours(*row[1:]) for row in rows}


async def _look_up(
    session: AsyncSession, account: PaymentAccount, lines: list[BillLine]
) -> list[Ours | None]:
    """Our payment or refund of each line (None: we have none), by the platform's id, else by
    our number: one query per kind of id for the whole chunk."""
    pays = [x for x in lines if x.kind == "payment"]
    refs = [x for x in lines if x.kind == "refund"]
    by_txn = await _ours_by(
        session, _BY_TXN, account.channel,
        sorted({x.transaction_id for x in pays if x.transaction_id}),
    )  # fmt: skip
    by_no = await _ours_by(
        session, _BY_NO, account.id,
        sorted({x.out_trade_no for x in pays if x.out_trade_no and x.transaction_id not in by_txn}),
    )  # fmt: skip
    by_ref = await _ours_by(
        session, _BY_REF, account.channel,
        sorted({x.refund_id for x in refs if x.refund_id}),
    )  # fmt: skip
    by_refund_no = await _ours_by(
        session, _BY_REFUND_NO, account.id,
        sorted({x.out_refund_no for x in refs if x.out_refund_no and x.refund_id not in by_ref}),
    )  # fmt: skip
    return [
        (by_txn.get(x.transaction_id) or by_no.get(x.out_trade_no))
        if x.kind == "payment"
        else (by_ref.get(x.refund_id) or by_refund_no.get(x.out_refund_no))
        for x in lines
    ]


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


_ITEMS = cast(Table, ReconciliationItem.__table__)
#: the item columns a run writes (with its run_id), in this order
_COLUMNS = (
    "difference", "state", "kind", "line_no", "transaction_id", "out_trade_no", "out_refund_no",
    "refund_ref", "payment_id", "refund_id", "order_id", "store_id", "our_amount_fen",
    "our_status", "bill_amount_fen", "bill_status", "bill_fee_fen", "expected_fee_fen",
    "occurred_at", "detail", "line", "alerted_at", "resolution", "note", "resolved_by",
    "resolved_at",
)  # fmt: skip


@dataclass
class _Totals:
    """A run's figures, added up chunk by chunk as its items are written."""

    rate: int | None
    trailer: Trailer | None = None
    lines: int = 0
    differences: int = 0
    bill_gross: int = 0
    bill_refund: int = 0
    bill_fee: int = 0
    our_gross: int = 0
    our_refund: int = 0
    expected_fee: int = 0

    def add(self, item: Mapping[str, Any], sign: int = 1) -> None:
        """Count `item` in (`sign` -1: out again)."""
        if item["difference"] != MATCHED:
            self.differences += sign
        if item["our_status"] == "succeeded":
            if item["kind"] == "payment":
                self.our_gross += sign * int(item["our_amount_fen"] or 0)
            else:
                self.our_refund += sign * int(item["our_amount_fen"] or 0)
        if item["line_no"] is not None:
            self.lines += sign
            if item["kind"] == "payment":
                self.bill_gross += sign * item["bill_amount_fen"]
            else:
                self.bill_refund += sign * item["bill_amount_fen"]
            self.bill_fee += sign * item["bill_fee_fen"]
            self.expected_fee += sign * int(item["expected_fee_fen"] or 0)

    def check_trailer(self) -> None:
        """Refuse a bill whose lines do not add up to its own totals (a truncated or altered
        file), naming what the totals say and what the lines add up to. Run on every line
        read, duplicates included: the platform's totals count what it wrote."""
        if self.trailer is not None:
            found = {"lines": self.lines, "gross": self.bill_gross,
                     "refunds": self.bill_refund, "fees": self.bill_fee}  # fmt: skip
            check_totals(self.trailer, found)

    def apply(self, run: ReconciliationRun) -> None:
        run.line_count = self.lines
        run.difference_count = self.differences
        run.bill_gross_fen = self.bill_gross
        run.bill_refund_fen = self.bill_refund
        run.bill_fee_fen = self.bill_fee
        trailer = self.trailer
        run.trailer_count = None if trailer is None else trailer.count
        run.trailer_gross_fen = None if trailer is None else trailer.gross_fen
        run.trailer_refund_fen = None if trailer is None else trailer.refund_fen
        run.trailer_fee_fen = None if trailer is None else trailer.fee_fen
        run.our_gross_fen = self.our_gross
        run.our_refund_fen = self.our_refund
        run.expected_fee_fen = None if self.rate is None else self.expected_fee


#: what a person (or the alerting) adds to a difference: nothing yet, on a new item
_UNWORKED: dict[str, Any] = dict.fromkeys(
    ("alerted_at", "resolution", "note", "resolved_by", "resolved_at")
)
_ROW = operator.itemgetter(*_COLUMNS)


def _line_item(line: BillLine, ours: Ours | None, rate: int | None) -> dict[str, Any]:
    verdict = judge(line, ours, rate)
    refund = line.kind == "refund"
    return {
        "difference": verdict.difference,
        "state": "ok" if verdict.difference == MATCHED else "open",
        "kind": line.kind,
        "line_no": line.line_no,
        "transaction_id": line.transaction_id or None,
        "out_trade_no": line.out_trade_no or None,
        "out_refund_no": line.out_refund_no or None,
        "refund_ref": line.refund_id or None,
        "payment_id": None if ours is None or refund else ours.id,
        "refund_id": ours.id if ours is not None and refund else None,
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
        # The line as written is kept for a difference (its drill-down shows it); a matched
        # line's figures are in the columns, and a million of them would be a GB a day.
        "line": {} if verdict.difference == MATCHED else dict(line.raw),
        **_UNWORKED,
    }


def _line_rows(
    lines: list[BillLine], found: list[Ours | None], rate: int | None, writer: _Writer
) -> list[tuple[Any, ...]]:
    """The items of a chunk's lines as rows of `_COLUMNS`, counted in the totals. Nearly every
    line of a day's bill is matched: such a line's row is built straight from the line and
    ours (what `_line_item` and `judge` would give it, the totals counted as `_Totals.add`
    counts a matched item), without an item dict per line; any other goes through them."""
    totals = writer.totals
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    lines_n = gross = refunds = fees = expected = our_gross = our_refund = 0
    for line, ours in zip(lines, found, strict=True):
        if (
            ours is None
            or ours.status != "succeeded"
            or line.status != SETTLED
            or ours.amount_fen != line.amount_fen
        ):
            append(writer.row(_line_item(line, ours, rate)))
            continue
        fee = expected_fee(line.amount_fen, rate)
        refund = line.kind == "refund"
        if fee is not None and refund:
            fee = -fee
        if fee is not None and fee != line.fee_fen:
            append(writer.row(_line_item(line, ours, rate)))
            continue
        lines_n += 1
        fees += line.fee_fen
        expected += fee or 0
        if refund:
            refunds += line.amount_fen
            our_refund += line.amount_fen
        else:
            gross += line.amount_fen
            our_gross += line.amount_fen
        append((
            MATCHED, "ok", line.kind, line.line_no, line.transaction_id or None,
            line.out_trade_no or None, line.out_refund_no or None, line.refund_id or None,
            None if refund else ours.id, ours.id if refund else None, ours.order_id,
            ours.store_id, ours.amount_fen, ours.status, line.amount_fen, line.status,
            line.fee_fen, fee, line.occurred_at, "", _NO_LINE, None, None, None, None, None,
        ))  # fmt: skip
    totals.lines += lines_n
    totals.bill_gross += gross
    totals.bill_refund += refunds
    totals.bill_fee += fees
    totals.expected_fee += expected
    totals.our_gross += our_gross
    totals.our_refund += our_refund
    return rows


#: a matched line's `line` (its figures are in the columns)
_NO_LINE: dict[str, str] = {}


class _Writer:
    """Items written a chunk at a time, a person's resolution (and the alert already sent) of a
    difference that is still there carried over from the result being replaced."""

    def __init__(
        self,
        session: AsyncSession,
        run: ReconciliationRun,
        totals: _Totals,
        kept: dict[tuple[Any, ...], dict[str, Any]],
        alerted: dict[tuple[Any, ...], Any],
    ) -> None:
        self.session, self.run, self.totals = session, run, totals
        self.kept, self.alerted = kept, alerted

    def row(self, item: dict[str, Any]) -> tuple[Any, ...]:
        """`item` as a row of `_COLUMNS`, counted in the totals, with the resolution (and
        the alert already sent) of the same difference in the result being replaced."""
        if item["state"] != "ok":
            item["alerted_at"] = self.alerted.get(_key(item))
            previous = self.kept.get(_key(item))
            if previous is not None:
                item.update(previous)
        self.totals.add(item)
        return cast(tuple[Any, ...], _ROW(item))

    async def write(self, items: list[dict[str, Any]]) -> None:
        await self.write_rows([self.row(item) for item in items])

    async def write_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert rows of `_COLUMNS` (already counted in the totals)."""
        if not rows:
            return
        # A column with one value in every row of the chunk (a matched line's state, class,
        # status, empty note and drawing, ...: most of them) is sent and processed once, as a
        # shared value, not once per row: on PostgreSQL one array fewer to encode, on SQLite
        # one value fewer to convert and bind per row.
        shared: dict[str, Any] = {"run_id": self.run.id}
        varying: list[str] = []
        columns: list[tuple[Any, ...]] = []
        for name, values in zip(_COLUMNS, zip(*rows, strict=True), strict=True):
            first = values[0]
            if values.count(first) == len(values) and _same_type(values, first):
                shared[name] = first
            else:
                varying.append(name)
                columns.append(values)
        if not varying:  # one row (or all alike): the rows still need a column to be rows
            varying.append("line_no")
            columns.append((shared.pop("line_no"),) * len(rows))
        await insert_rows(
            self.session, _ITEMS, varying, list(zip(*columns, strict=True)), shared=shared,
            copy=True,
        )  # fmt: skip


def _same_type(values: tuple[Any, ...], first: Any) -> bool:
    """Whether every value is of `first`'s type (`count` takes 1 == 1.0 == True as one; only
    None equals None, only a str a str)."""
    kind = type(first)
    return first is None or kind is str or len(set(map(type, values))) == 1


async def _replace(
    session: AsyncSession,
    run: ReconciliationRun,
    account: PaymentAccount,
    day: date,
    streamed: StreamedBill | None,
) -> _Totals:
    """Replace the run's items: every bill line (read, looked up, judged and written a chunk
    at a time, so memory does not grow with the bill), then ours of the day no bill has.
    Raises `BillRefused` at a broken line, having written part: the caller undoes it."""
    totals = _Totals(rate=await fees.rate_of(session, account.id))
    writer = _Writer(session, run, totals, await _resolutions(session, run),
                     await _alerted(session, run))  # fmt: skip
    await session.execute(delete(ReconciliationItem).where(ReconciliationItem.run_id == run.id))
    if streamed is not None:
        totals.trailer = streamed.trailer
        await _lines(session, account, streamed, writer, totals.rate)
        totals.check_trailer()
        await _duplicates(session, run, writer)
    await _ours_only(session, run, account, day, writer)
    return totals


async def _lines(
    session: AsyncSession,
    account: PaymentAccount,
    streamed: StreamedBill,
    writer: _Writer,
    rate: int | None,
) -> None:
    """Every bill line looked up, judged and written, a chunk at a time. Reading a chunk is
    CPU work in this thread; looking it up and writing it is the database's (SQLite's thread,
    the PostgreSQL server) and is done while the next chunk is read; the session does one
    thing at a time, and nothing is left running when a line is refused."""
    writing: asyncio.Future[None] | None = None
    reading: asyncio.Future[list[BillLine] | None] | None = None
    chunks = streamed.chunks
    try:
        while True:
            # Read in a worker thread, so that this loop goes on with the chunk being written
            # (several statements, each awaited) while the next one is read.
            reading = asyncio.ensure_future(asyncio.to_thread(next, chunks, None))
            if writing is not None:
                await writing
            lines = await reading
            if lines is None:
                break
            writing = asyncio.ensure_future(_chunk(session, account, lines, writer, rate))
    except BaseException:
        for pending in (reading, writing):
            if pending is not None and not pending.done():
                await asyncio.wait([pending])
            if pending is not None and pending.done() and not pending.cancelled():
                pending.exception()  # seen: the error being raised is the one to report
        raise


async def _chunk(
    session: AsyncSession,
    account: PaymentAccount,
    lines: list[BillLine],
    writer: _Writer,
    rate: int | None,
) -> None:
    """One chunk's lines looked up, judged and written. On SQLite a payment line that matches
    our payment by the platform's id (nearly all of a day's bill) is matched in SQL
    (`_match_in_sql`); the others, and every line on PostgreSQL, are looked up here and judged
    by `matching.judge`."""
    rest = lines
    if session.get_bind().dialect.name == "sqlite":
        rest = await _match_in_sql(session, account, lines, writer, rate)
    if rest:
        found = await _look_up(session, account, rest)
        await writer.write_rows(_line_rows(rest, found, rate, writer))


#: a chunk's payment lines, staged for matching in SQL (a temporary table of the connection:
#: not in the models' metadata, so no migration has it)
_STAGE = Table(
    "reconciliation_stage",
    MetaData(),
    Column("pos", Integer, primary_key=True),
    Column("line_no", Integer),
    Column("transaction_id", String(64)),
    Column("out_trade_no", String(64)),
    Column("amount_fen", Integer),
    Column("fee_fen", Integer),
    Column("status", String(32)),
    Column("occurred_at", UTCDateTime()),
    prefixes=["TEMPORARY"],
)
_STAGED = ("pos", "line_no", "transaction_id", "out_trade_no", "amount_fen", "fee_fen", "status",
           "occurred_at")  # fmt: skip


def _matched_in_sql(rate: int | None) -> tuple[Any, Any]:
    """The staged lines that match our payment (found by the platform's id within the channel;
    both succeeded, the same amount, the fee the configured rate gives): the join, and the
    fee expected (NULL without a rate), as `matching.judge` and `expected_fee` have them."""
    st = _STAGE.c
    expected: Any = null() if rate is None else (st.amount_fen * rate + 5_000) // 10_000
    on = and_(
        Payment.channel == bindparam("channel"),
        Payment.channel_txn_id == st.transaction_id,
        Payment.status == "succeeded",
        Payment.amount_fen == st.amount_fen,
        st.status == SETTLED,
        # `//` truncates in SQL and floors in Python: alike for a positive amount
        st.amount_fen >= 0,
    )
    if rate is not None:
        on = and_(on, st.fee_fen == expected)
    return on, expected


def _match_statement(rate: int | None) -> Any:
    """INSERT ... SELECT of the matched items of the staged lines, in the lines' order: each
    column what `_line_rows` writes for a matched payment line."""
    st = _STAGE.c
    on, expected = _matched_in_sql(rate)
    values: dict[str, Any] = {
        "run_id": bindparam("run_id"),
        "difference": literal(MATCHED), "state": literal("ok"), "kind": literal("payment"),
        "line_no": st.line_no, "transaction_id": st.transaction_id,
        "out_trade_no": st.out_trade_no, "out_refund_no": null(), "refund_ref": null(),
        "payment_id": Payment.id, "refund_id": null(), "order_id": Payment.order_id,
        "store_id": Payment.store_id, "our_amount_fen": Payment.amount_fen,
        "our_status": Payment.status, "bill_amount_fen": st.amount_fen,
        "bill_status": st.status, "bill_fee_fen": st.fee_fen, "expected_fee_fen": expected,
        "occurred_at": st.occurred_at, "detail": literal(""),
        "line": bindparam("no_line", _NO_LINE, type_=JSONDoc),
        **dict.fromkeys(("alerted_at", "resolution", "note", "resolved_by", "resolved_at"),
                        null()),
    }  # fmt: skip
    source = select(*values.values()).select_from(_STAGE.join(Payment, on)).order_by(st.pos)
    return insert(_ITEMS).from_select(list(values), source)


def _unmatched_statement(rate: int | None) -> Any:
    """The positions of the staged lines the match statement did not match."""
    on, _ = _matched_in_sql(rate)
    return select(_STAGE.c.pos).where(~select(Payment.id).where(on).exists())


async def _match_in_sql(
    session: AsyncSession,
    account: PaymentAccount,
    lines: list[BillLine],
    writer: _Writer,
    rate: int | None,
) -> list[BillLine]:
    """Write the items of `lines` whose payment lines match ours by the platform's id, in SQL:
    staged in a temporary table, joined with our payments, inserted by one INSERT ... SELECT,
    so that no payment of ours is read into Python for them and no item row is built here (on
    SQLite that was most of what a chunk cost beyond its parsing, and it was done with the GIL
    held, a row at a time). Counted in the totals as `_line_rows` counts them. Returns the lines
    left to look up and judge one by one (refunds, lines without the platform's id, lines that
    are not a match), in the chunk's order.

    The items are then not written in the lines' order (the matched first); `_duplicates`
    orders by line number. SQLite only: on PostgreSQL the look-up and the COPY are the
    server's work, beside the parsing, and the goal was met without it (×1.8 at a million
    lines); staging there (COPY into a temporary table) is not measured."""
    staged = [x for x in lines if x.kind == "payment" and x.transaction_id]
    if not staged:
        return lines
    conn = await session.connection()
    await conn.execute(CreateTable(_STAGE, if_not_exists=True))
    await conn.execute(delete(_STAGE))
    await insert_rows(
        session, _STAGE, _STAGED,
        [(i, x.line_no, x.transaction_id, x.out_trade_no or None, x.amount_fen, x.fee_fen,
          x.status, x.occurred_at) for i, x in enumerate(staged)],
    )  # fmt: skip
    params = {"run_id": writer.run.id, "channel": account.channel}
    done = await conn.execute(_match_statement(rate), params)
    matched = cast(CursorResult[Any], done).rowcount
    left: set[int] = set()
    if matched != len(staged):
        left = {row[0] for row in await conn.execute(_unmatched_statement(rate), params)}
    await conn.execute(delete(_STAGE))
    totals = writer.totals
    gross = fees = expected = 0
    for i, x in enumerate(staged):
        if i not in left:
            gross += x.amount_fen
            fees += x.fee_fen
            expected += expected_fee(x.amount_fen, rate) or 0
    totals.lines += matched
    totals.bill_gross += gross
    totals.our_gross += gross
    totals.bill_fee += fees
    totals.expected_fee += expected
    if not left and matched == len(lines):
        return []
    done_ids = {id(x) for i, x in enumerate(staged) if i not in left}
    return [x for x in lines if id(x) not in done_ids]


async def _duplicates(session: AsyncSession, run: ReconciliationRun, writer: _Writer) -> None:
    """Each bill line that repeats an earlier one (the same payment, or the same refund) made a
    difference of its own, "duplicate line", naming the first line, and counted out of the
    totals: the money is matched and counted once. Found in SQL over the lines written (a
    set of every id seen would grow with the bill)."""
    item = _ITEMS.c
    ref = func.coalesce(item.refund_ref, item.out_refund_no, "")
    lines = (item.run_id == run.id, item.line_no.is_not(None), item.transaction_id.is_not(None))
    repeated = (
        select(item.kind, item.transaction_id, ref.label("ref"))
        .where(*lines)
        .group_by(item.kind, item.transaction_id, ref)
        .having(func.count() > 1)
        .subquery()
    )
    # The first of each: the lowest line number (then the first written: a UnionPay archive's
    # files each count their lines from 1), not the lowest id, since a chunk's lines matched
    # in SQL are written before those judged one by one. Ranked only within the repeated.
    by, order = (item.kind, item.transaction_id, ref), (item.line_no, item.id)
    ranked = (
        select(item.id, func.row_number().over(partition_by=by, order_by=order).label("nth"),
               func.first_value(item.line_no).over(partition_by=by, order_by=order)
               .label("first_line"))
        .join(repeated, and_(item.kind == repeated.c.kind,
                             item.transaction_id == repeated.c.transaction_id,
                             ref == repeated.c.ref))
        .where(*lines)
        .subquery()
    )  # fmt: skip
    rows = (
        await session.execute(
            select(_ITEMS, ranked.c.first_line)
            .join(ranked, item.id == ranked.c.id)
            .where(ranked.c.nth > 1)
            .order_by(item.id)
        )  # fmt: skip
    ).mappings()
    for found in rows:
        row = dict(found)
        writer.totals.add(row, sign=-1)
        key = _key(row | {"difference": DUPLICATE_LINE})
        what = "refund" if row["kind"] == "refund" else "payment"
        changes = {
            "difference": DUPLICATE_LINE,
            "state": "open",
            "detail": f"the same {what} as line {row['first_line']}; not counted again",
            "alerted_at": writer.alerted.get(key),
            **writer.kept.get(key, {}),
        }
        writer.totals.differences += 1
        await session.execute(update(_ITEMS).where(item.id == row["id"]).values(**changes))


async def _pages(
    session: AsyncSession, stmt: Select[*tuple[Any, ...]], id_: Any
) -> AsyncIterator[list[Any]]:
    """The rows of `stmt`, `LINES` at a time, in the order of `id_` (a page starts after the
    last id of the one before, so that what is written between pages changes nothing)."""
    after = 0
    while True:
        page = list(await session.execute(stmt.where(id_ > after).order_by(id_).limit(LINES)))
        if not page:
            return
        yield page
        after = page[-1].id


async def _ours_only(
    session: AsyncSession,
    run: ReconciliationRun,
    account: PaymentAccount,
    day: date,
    writer: _Writer,
) -> None:
    """Ours on the day that no bill has (an anti-join against the lines written, in pages):
    held until the next day's bill is in, since a payment near midnight may be in that one;
    never one a bill line of any run of this account already accounts for."""
    start, end = day_bounds(day)
    held = "open" if await _next_day_in(session, run) else "pending"
    billed = (
        select(ReconciliationItem.id)
        .join(ReconciliationRun, ReconciliationRun.id == ReconciliationItem.run_id)
        .where(
            ReconciliationRun.account_id == run.account_id,
            ReconciliationRun.kind == run.kind,
            ReconciliationItem.line_no.is_not(None),
        )
    )
    payments = select(
        Payment.id, Payment.order_id, Payment.store_id, Payment.amount_fen, Payment.out_trade_no,
        Payment.channel_txn_id, Payment.succeeded_at,
    ).where(
        Payment.account_id == account.id,
        Payment.status == "succeeded",
        Payment.succeeded_at >= start,
        Payment.succeeded_at < end,
        ~billed.where(ReconciliationItem.payment_id == Payment.id).exists(),
    )  # fmt: skip
    async for page in _pages(session, payments, Payment.id):
        await writer.write([
            _ours_only_item("payment", held, p.id, None, p.order_id, p.store_id, p.amount_fen)
            | {"out_trade_no": p.out_trade_no, "transaction_id": p.channel_txn_id,
               "occurred_at": p.succeeded_at, "detail": "paid here; not in the platform's bill"}
            for p in page
        ])  # fmt: skip
    refunds = select(
        Refund.id, Refund.payment_id, Refund.order_id, Refund.store_id, Refund.amount_fen,
        Refund.out_refund_no, Refund.channel_refund_id, Refund.completed_at,
    ).where(
        Refund.account_id == account.id,
        Refund.status == "succeeded",
        Refund.completed_at >= start,
        Refund.completed_at < end,
        ~billed.where(ReconciliationItem.refund_id == Refund.id).exists(),
    )  # fmt: skip
    async for page in _pages(session, refunds, Refund.id):
        await writer.write([
            _ours_only_item(
                "refund", held, r.payment_id, r.id, r.order_id, r.store_id, r.amount_fen
            )
            | {"difference": REFUND_DIFFERS, "out_refund_no": r.out_refund_no,
               "refund_ref": r.channel_refund_id, "occurred_at": r.completed_at,
               "detail": "refunded here; not in the platform's bill"}
            for r in page
        ])  # fmt: skip


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
        **_UNWORKED,
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
    when this bill has them (a payment across midnight), open when it does not. In SQL, so
    that neither day's items are loaded."""
    before = await session.scalar(
        select(ReconciliationRun).where(
            ReconciliationRun.account_id == account.id,
            ReconciliationRun.kind == run.kind,
            ReconciliationRun.bill_date == day - timedelta(days=1),
        )
    )
    if before is None:
        return
    held = _ITEMS
    here = aliased(ReconciliationItem)
    in_this_bill = (
        select(here.id)
        .where(
            here.run_id == run.id,
            here.line_no.is_not(None),
            or_(
                and_(held.c.kind == "refund", here.refund_id == held.c.refund_id),
                and_(
                    held.c.kind != "refund",
                    here.refund_id.is_(None),
                    here.payment_id == held.c.payment_id,
                ),
            ),
        )
        .exists()
    )
    pending = (held.c.run_id == before.id, held.c.state == "pending")
    carried = await session.execute(
        update(held)
        .where(*pending, in_this_bill)
        .values(state="carried", detail=f"in the bill of {day.isoformat()}")
    )
    await session.execute(update(held).where(*pending).values(state="open"))
    before.difference_count -= cast(CursorResult[Any], carried).rowcount
    await session.flush()

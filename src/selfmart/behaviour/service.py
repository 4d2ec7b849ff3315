"""Storing terminals' business events (idempotent per terminal and event id), and searching
and exporting the business log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Select, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.behaviour.schemas import BatchReply, BehaviourEventIn, BehaviourFilter
from selfmart.errors import ErrorDetail, ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.kit import prune as prune_rows
from selfmart.kit import searchlog
from selfmart.kit.pagination import LOG_COUNT_CAP, PageParams, paginate
from selfmart.kit.tabular import csv_bytes, xlsx_bytes
from selfmart.kit.time import utcnow
from selfmart.models import BehaviourEvent

_events = cast(Table, BehaviourEvent.__table__)


class ExportTooLarge(searchlog.ExportTooLarge):
    message, noun = "Too many events to export; narrow the filters", "events"


def _batch_problems(
    events: Sequence[BehaviourEventIn], now: datetime, skew: timedelta
) -> list[ErrorDetail]:
    """What is wrong with a batch as a whole, each problem naming its event by index."""
    problems: list[ErrorDetail] = []
    seen: dict[str, int] = {}
    for i, event in enumerate(events):
        first = seen.setdefault(event.event_id, i)
        if first != i:
            problems.append(
                ErrorDetail(
                    field=f"events.{i}.event_id",
                    reason="duplicate_in_batch",
                    message=f"event_id {event.event_id} is also event {first} of this batch",
                )
            )
        if event.occurred_at > now + skew:
            problems.append(
                ErrorDetail(
                    field=f"events.{i}.occurred_at",
                    reason="in_the_future",
                    message="occurred_at is later than the server's clock allows",
                )
            )
    return problems


async def ingest(
    session: AsyncSession,
    *,
    terminal_id: int,
    store_id: int,
    events: Sequence[BehaviourEventIn],
    clock_skew_seconds: int,
) -> BatchReply:
    """Store a batch: all of it or (any event wrong) none of it. An event whose id the
    terminal sent before is a duplicate and changes nothing (a resent batch doubles nothing)."""
    now = utcnow()
    problems = _batch_problems(events, now, timedelta(seconds=clock_skew_seconds))
    if problems:
        raise ValidationFailed("Some events of the batch are not valid", details=problems)
    rows: list[dict[str, Any]] = [
        {
            "store_id": store_id,
            "terminal_id": terminal_id,
            "received_at": now,
            **e.model_dump(),
        }
        for e in events
    ]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(_events)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["terminal_id", "event_id"])
        .returning(_events.c.id)
    )
    accepted = len((await session.execute(stmt)).all())
    return BatchReply(accepted=accepted, duplicates=len(rows) - accepted)


def _query(actor: Actor, f: BehaviourFilter) -> Select[BehaviourEvent]:
    stmt = searchlog.scoped(select(BehaviourEvent), BehaviourEvent.store_id, actor.store_ids)
    stmt = searchlog.in_range(stmt, BehaviourEvent.occurred_at, f.since, f.until)
    if f.store_id is not None:
        stmt = stmt.where(BehaviourEvent.store_id == f.store_id)
    if f.terminal_id is not None:
        stmt = stmt.where(BehaviourEvent.terminal_id == f.terminal_id)
    if f.kind:
        stmt = stmt.where(BehaviourEvent.kind == f.kind)
    if f.session_id:
        stmt = stmt.where(BehaviourEvent.session_id == f.session_id)
    if f.order_no:
        stmt = stmt.where(BehaviourEvent.order_no == f.order_no)
    stmt = searchlog.containing(
        stmt,
        f.q,
        (
            BehaviourEvent.barcode,
            BehaviourEvent.order_no,
            BehaviourEvent.session_id,
            BehaviourEvent.reason,
            BehaviourEvent.event_id,
        ),
    )
    return stmt.order_by(BehaviourEvent.occurred_at.desc(), BehaviourEvent.id.desc())


async def search(
    session: AsyncSession, actor: Actor, f: BehaviourFilter, params: PageParams
) -> tuple[list[BehaviourEvent], int]:
    """One page of the events of the actor's stores that match `f`, newest first."""
    return await paginate(session, _query(actor, f), params, count_cap=LOG_COUNT_CAP)


HEADERS = {
    "zh": [
        "时间",
        "门店ID",
        "终端ID",
        "事件",
        "事件ID",
        "会话",
        "订单号",
        "条码",
        "数量",
        "金额(分)",
        "支付方式",
        "原因",
        "接收时间",
    ],
    "en": [
        "Time",
        "Store ID",
        "Terminal ID",
        "Kind",
        "Event ID",
        "Session",
        "Order no.",
        "Barcode",
        "Qty",
        "Amount (fen)",
        "Method",
        "Reason",
        "Received",
    ],
}


async def export(
    session: AsyncSession,
    actor: Actor,
    f: BehaviourFilter,
    *,
    fmt: str,
    lang: str,
    timezone: str,
    max_rows: int,
) -> bytes:
    """Every event matching `f` as a file (xlsx or csv), times in `timezone`, newest first."""
    stmt = _query(actor, f)
    await searchlog.check_export_size(session, stmt, max_rows, ExportTooLarge)
    zone = ZoneInfo(timezone)

    def when(t: datetime) -> str:
        return t.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")

    rows = [
        [
            when(e.occurred_at),
            e.store_id,
            e.terminal_id,
            e.kind,
            e.event_id,
            e.session_id,
            e.order_no,
            e.barcode,
            e.qty,
            e.amount_fen,
            e.method,
            e.reason,
            when(e.received_at),
        ]
        for e in (await session.scalars(stmt)).all()
    ]
    headers = HEADERS["en" if lang == "en" else "zh"]
    return csv_bytes(headers, rows) if fmt == "csv" else xlsx_bytes(headers, rows, "events")


async def prune(
    sessionmaker: async_sessionmaker[AsyncSession], *, before: datetime, batch: int
) -> int:
    """Delete the events that happened before `before`, in batches (kit.prune)."""
    deleted, _ = await prune_rows.delete_older(
        sessionmaker, _events, "occurred_at", before, batch=batch
    )
    return deleted

"""Order lines partitioned by month on PostgreSQL, for chains with years of data.

`selfmart partition-order-lines` turns `order_lines` into a table partitioned by range of
`created_at` (when the line was written), one partition per calendar month (UTC) from the
oldest line to `MONTHS_AHEAD` months from now, and a default partition for anything outside.
Run again (and daily by the job `orders.partitions_ahead`), it only adds the months coming up.
docs/analytics.md says when it is worth it.

What changes with it, and why: a partitioned table's primary key and unique constraints must
include the partition column, so the key becomes `(id, created_at)` and `(order_id, line_no)`
becomes `(order_id, line_no, created_at)`; the refund lines' foreign key to the order lines is
dropped (PostgreSQL cannot point one at part of such a key) — the refund service already checks
that every refunded line belongs to the refunded order, under the order's lock. Every other
index and foreign key is recreated as it was, by its own definition read from the catalog.

The conversion runs in one transaction holding an exclusive lock on the table (the lines are
copied once): turn maintenance mode on first, and take a backup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import utcnow

TABLE = "order_lines"
OLD = "order_lines_unpartitioned"
DEFAULT_PARTITION = "order_lines_default"
#: Partitions made ahead of time, so new lines never land in the default partition.
MONTHS_AHEAD = 12


class PartitioningUnsupported(Exception):
    """Asked of a database that has no partitions (SQLite)."""


@dataclass
class Outcome:
    converted: bool = False
    lines: int = 0
    created: list[str] = field(default_factory=list)
    dropped_foreign_keys: list[str] = field(default_factory=list)


def _month(d: date) -> date:
    return date(d.year, d.month, 1)


def _next(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{TABLE}_{month:%Y_%m}"


def _bound(month: date) -> str:
    return f"'{month.isoformat()} 00:00:00+00'"


async def is_partitioned(session: AsyncSession) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return False
    kind = await session.scalar(
        text(
            "SELECT CAST(c.relkind AS text) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = :t AND n.nspname = current_schema()"
        ),
        {"t": TABLE},
    )
    return bool(kind == "p")


async def _months_present(session: AsyncSession) -> set[date]:
    rows = await session.execute(
        text(
            "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'order_lines'::regclass"
        ),
        {"t": TABLE},
    )
    present = set()
    for (bound,) in rows:
        # FOR VALUES FROM ('2026-12-01 00:00:00+00') TO (...); the default says DEFAULT
        if bound and "FROM ('" in bound:
            present.add(date.fromisoformat(bound.split("FROM ('", 1)[1][:10]))
    return present


async def _add_month(session: AsyncSession, month: date) -> str:
    """The month's partition; lines of it already in the default partition move into it."""
    name = partition_name(month)
    lo, hi = _bound(month), _bound(_next(month))
    in_default = await session.scalar(
        text(
            f"SELECT count(*) FROM {DEFAULT_PARTITION} "
            f"WHERE created_at >= {lo} AND created_at < {hi}"
        )
    )
    if not in_default:
        await session.execute(
            text(f"CREATE TABLE {name} PARTITION OF {TABLE} FOR VALUES FROM ({lo}) TO ({hi})")
        )
        return name
    await session.execute(text(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS)"))
    await session.execute(
        text(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "
            f"WHERE created_at >= {lo} AND created_at < {hi} RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved"
        )
    )
    await session.execute(
        text(f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM ({lo}) TO ({hi})")
    )
    return name


async def ensure_months(session: AsyncSession, *, now: datetime | None = None) -> list[str]:
    """Partitions up to MONTHS_AHEAD months from now; returns those it made."""
    current = _month((now or utcnow()).astimezone(UTC).date())
    present = await _months_present(session)
    made = []
    month = current
    for _ in range(MONTHS_AHEAD + 1):
        if month not in present:
            made.append(await _add_month(session, month))
        month = _next(month)
    return made


async def partition(session: AsyncSession, *, now: datetime | None = None) -> Outcome:
    """Convert `order_lines` to monthly partitions (or, if it already is, add months ahead)."""
    if session.get_bind().dialect.name != "postgresql":
        raise PartitioningUnsupported(
            "Order lines can be partitioned on PostgreSQL only (SQLite has no partitions)"
        )
    if await is_partitioned(session):
        return Outcome(created=await ensure_months(session, now=now))

    await session.execute(text(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE"))
    out = Outcome(converted=True)
    constraints = (
        await session.execute(
            text(
                "SELECT conname, CAST(contype AS text), pg_get_constraintdef(oid) "
                "FROM pg_constraint WHERE conrelid = 'order_lines'::regclass ORDER BY conname"
            ),
            {"t": TABLE},
        )
    ).all()
    indexes = (
        await session.execute(
            text(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i "
                "WHERE i.schemaname = current_schema() AND i.tablename = :t AND NOT EXISTS ("
                "  SELECT 1 FROM pg_constraint c "
                "  WHERE c.conindid = CAST(quote_ident(i.indexname) AS regclass)"
                "  AND c.conrelid = 'order_lines'::regclass"
                ") ORDER BY i.indexname"
            ),
            {"t": TABLE},
        )
    ).all()
    referencing = (
        await session.execute(
            text(
                "SELECT conname, CAST(conrelid AS regclass)::text FROM pg_constraint "
                "WHERE confrelid = 'order_lines'::regclass AND contype = 'f' ORDER BY conname"
            ),
            {"t": TABLE},
        )
    ).all()
    sequence = await session.scalar(text(f"SELECT pg_get_serial_sequence('{TABLE}', 'id')"))

    for name, table in referencing:
        await session.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
        out.dropped_foreign_keys.append(f"{table}.{name}")
    await session.execute(text(f"ALTER TABLE {TABLE} RENAME TO {OLD}"))
    for name, _kind, _definition in constraints:
        await session.execute(text(f'ALTER TABLE {OLD} RENAME CONSTRAINT "{name}" TO "{name}_old"'))
    for name, _definition in indexes:
        await session.execute(text(f'ALTER INDEX "{name}" RENAME TO "{name}_old"'))

    await session.execute(
        text(
            f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING DEFAULTS) PARTITION BY RANGE (created_at)"
        )
    )
    if sequence:
        await session.execute(text(f"ALTER SEQUENCE {sequence} OWNED BY {TABLE}.id"))
    for name, kind, definition in constraints:
        if kind in ("p", "u"):  # the partition column joins every key
            definition = definition.replace(")", ", created_at)", 1)
        if kind in ("p", "u", "f", "c"):
            await session.execute(text(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}'))
    for _name, definition in indexes:
        await session.execute(text(definition))

    await session.execute(text(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {TABLE} DEFAULT"))
    oldest = await session.scalar(text(f"SELECT min(created_at) FROM {OLD}"))
    current = _month((now or utcnow()).astimezone(UTC).date())
    month = _month(oldest.astimezone(UTC).date()) if oldest is not None else current
    while month < current:
        out.created.append(await _add_month(session, month))
        month = _next(month)
    out.created.extend(await ensure_months(session, now=now))
    await session.execute(text(f"INSERT INTO {TABLE} SELECT * FROM {OLD}"))
    out.lines = int(await session.scalar(text(f"SELECT count(*) FROM {TABLE}")) or 0)
    await session.execute(text(f"DROP TABLE {OLD}"))
    await session.execute(text(f"ANALYZE {TABLE}"))
    return out

"""kit.hotsql: statements run on the driver connection stay inside the session's transaction,
see and are seen by the session's own statements, get their parameters processed as
SQLAlchemy would, and fail as SQLAlchemy statements fail. On SQLite every statement but
`fetch_plain`'s takes the SQLAlchemy path; the same assertions hold there."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta, timezone
from typing import cast

import pytest
from sqlalchemy import Table, bindparam, func, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from selfmart.db import JSONDoc, UTCDateTime, make_sessionmaker
from selfmart.kit import hotsql
from selfmart.kit.hotsql import HotStatement
from selfmart.models import AuditLog, Tag

tags = cast(Table, Tag.__table__)

INSERT_TAG = HotStatement(
    insert(tags)
    .values(name=bindparam("name"), created_at=bindparam("at"))
    .returning(tags.c.id, tags.c.name)
)
COUNT_TAGS = HotStatement(select(func.count()).where(tags.c.name.like(bindparam("prefix"))))


def _prefix() -> str:
    return f"hot{uuid.uuid4().hex[:8]}"


async def _count(engine: AsyncEngine, prefix: str) -> int:
    async with make_sessionmaker(engine)() as s:
        return int(await s.scalar(select(func.count()).where(tags.c.name.like(f"{prefix}%"))) or 0)


async def test_first_statement_begins_the_transaction_and_rollback_undoes_all(
    engine: AsyncEngine, backend: str
) -> None:
    prefix = _prefix()
    now = datetime.now(UTC)
    async with make_sessionmaker(engine)() as s:
        # Nothing has begun at the driver yet: the statement goes through SQLAlchemy's DBAPI
        # adapter (PostgreSQL) or SQLAlchemy itself (SQLite), which begins the transaction.
        assert await hotsql._driver(s) is None
        (first,) = await hotsql.fetch(s, INSERT_TAG, {"name": f"{prefix}-1", "at": now})
        # Now inside the transaction: on PostgreSQL the next one runs on the driver.
        assert (await hotsql._driver(s) is not None) == (backend == "postgresql")
        (second,) = await hotsql.fetch(s, INSERT_TAG, {"name": f"{prefix}-2", "at": now})
        assert second[0] > first[0]
        assert second[1] == f"{prefix}-2"
        # The session's own statements see the driver's writes, and the other way round.
        seen = await s.scalar(select(func.count()).where(tags.c.name.like(f"{prefix}%")))
        assert seen == 2
        await s.execute(insert(tags).values(name=f"{prefix}-3", created_at=now))
        (row,) = await hotsql.fetch(s, COUNT_TAGS, {"prefix": f"{prefix}%"})
        assert row[0] == 3
        # Not committed: no one else sees them.
        assert await _count(engine, prefix) == 0
        await s.rollback()
    assert await _count(engine, prefix) == 0


async def test_commit_keeps_the_driver_writes(engine: AsyncEngine) -> None:
    prefix = _prefix()
    now = datetime.now(UTC)
    factory = make_sessionmaker(engine)
    async with factory() as s:
        await s.execute(select(1))
        await hotsql.fetch(s, INSERT_TAG, {"name": f"{prefix}-1", "at": now})
        await s.commit()
        # A second transaction on the same session: the connection is looked up again.
        await s.execute(select(1))
        await hotsql.fetch(s, INSERT_TAG, {"name": f"{prefix}-2", "at": now})
        await s.rollback()
    try:
        assert await _count(engine, prefix) == 1
    finally:
        async with factory() as s:
            await s.execute(tags.delete().where(tags.c.name.like(f"{prefix}%")))
            await s.commit()


async def test_parameters_are_processed_by_their_types(engine: AsyncEngine, backend: str) -> None:
    doc = bindparam("doc", type_=JSONDoc)
    at = bindparam("at", type_=UTCDateTime())
    if backend == "postgresql":
        probe = text("SELECT CAST(:doc AS jsonb) ->> 'a', CAST(:at AS timestamptz)")
    else:
        probe = text("SELECT json_extract(:doc, '$.a'), :at")
    hot = HotStatement(probe.bindparams(doc, at))
    shanghai = datetime(2026, 12, 5, 20, 0, tzinfo=timezone(timedelta(hours=8)))
    async with make_sessionmaker(engine)() as s:
        await s.execute(select(1))  # begin, so PostgreSQL takes the driver path
        ((a, when),) = await hotsql.fetch(s, hot, {"doc": {"a": "饮料"}, "at": shanghai})
        assert a == "饮料"  # the dict went in as JSON
        if backend == "postgresql":
            assert when == shanghai  # the same instant
        else:
            assert when == "2026-12-05 12:00:00.000000"  # stored as naive UTC
        with pytest.raises(StatementError, match="naive datetime"):
            await hotsql.fetch(s, hot, {"doc": {}, "at": datetime(2026, 12, 5, 12, 0)})  # noqa: DTZ001


@pytest.mark.parametrize("bulk", [False, True, "copy"])
async def test_a_constraint_violation_is_an_integrity_error(
    engine: AsyncEngine, backend: str, bulk: bool | str
) -> None:
    """Through `fetch`, or `insert_rows` given the same name twice (by COPY on PostgreSQL)."""
    name = _prefix()
    now = datetime.now(UTC)
    async with make_sessionmaker(engine)() as s:
        await s.execute(select(1))
        if bulk:
            rows = [(name,), (name,)]
            attempt: Awaitable[object] = hotsql.insert_rows(
                s, tags, ("name",), rows, shared={"created_at": now}, copy=bulk == "copy"
            )
        else:
            await hotsql.fetch(s, INSERT_TAG, {"name": name, "at": now})
            attempt = hotsql.fetch(s, INSERT_TAG, {"name": name, "at": now})
        with pytest.raises(IntegrityError) as caught:
            await attempt
        if backend == "postgresql":
            assert caught.value.orig.sqlstate == "23505"  # type: ignore[union-attr]
        await s.rollback()
        # The session is usable again after the failed statement.
        await s.execute(select(1))
        (row,) = await hotsql.fetch(s, COUNT_TAGS, {"prefix": f"{name}%"})
        assert row[0] == 0
        await s.rollback()


async def test_a_number_the_column_cannot_hold_fails_as_sqlalchemy_reports_it(
    engine: AsyncEngine, backend: str
) -> None:
    """The API's error handler turns this failure into a 422 naming the parameter
    (errors.out_of_range reads the driver's message); the driver path must raise it alike."""
    by_id = HotStatement(select(tags.c.id).where(tags.c.id == bindparam("id")))
    async with make_sessionmaker(engine)() as s:
        await s.execute(select(1))
        if backend == "postgresql":
            with pytest.raises(DBAPIError, match=r"query argument \$1: 1099511627776"):
                await hotsql.fetch(s, by_id, {"id": 2**40})
        else:
            assert await hotsql.fetch(s, by_id, {"id": 2**40}) == []
        await s.rollback()


@pytest.mark.parametrize("first", [True, False])
async def test_errors_read_the_same_on_the_first_statement_and_later(
    engine: AsyncEngine, backend: str, first: bool
) -> None:
    """The request's first statement takes another path on PostgreSQL (the DBAPI adapter,
    which begins the transaction) than the later ones (the driver): both fail alike."""
    name = _prefix()
    factory = make_sessionmaker(engine)
    async with factory() as s:
        await hotsql.fetch(s, INSERT_TAG, {"name": name, "at": datetime.now(UTC)})
        await s.commit()
    try:
        by_id = HotStatement(select(tags.c.id).where(tags.c.id == bindparam("id")))
        async with factory() as s:
            if not first:
                await s.execute(select(1))
            with pytest.raises(IntegrityError) as caught:
                await hotsql.fetch(s, INSERT_TAG, {"name": name, "at": datetime.now(UTC)})
            if backend == "postgresql":
                orig = caught.value.orig
                assert getattr(orig, "sqlstate", None) == "23505"
            await s.rollback()
            if not first:
                await s.execute(select(1))
            if backend == "postgresql":
                with pytest.raises(DBAPIError, match=r"query argument \$1: 1099511627776"):
                    await hotsql.fetch(s, by_id, {"id": 2**40})
            await s.rollback()
    finally:
        async with factory() as s:
            await s.execute(tags.delete().where(tags.c.name == name))
            await s.commit()


audit_logs = cast(Table, AuditLog.__table__)


@pytest.mark.parametrize("copy", [False, True])
async def test_insert_rows_returns_the_ids_in_the_rows_order_and_processes_every_value(
    engine: AsyncEngine, copy: bool
) -> None:
    """Without ids, `copy` takes the rows by COPY on PostgreSQL: the same rows land."""
    prefix = _prefix()
    shanghai = datetime(2026, 12, 5, 20, 0, tzinfo=timezone(timedelta(hours=8)))
    # Names out of alphabetical order, so an id list sorted by anything but position fails.
    names = [f"{prefix}-{n}" for n in ("c", "a", "d", "b")]
    async with make_sessionmaker(engine)() as s:
        await s.execute(select(1))
        ids = await hotsql.insert_rows(
            s,
            tags,
            ("name", "color"),
            [(n, None if i % 2 else f"#{i}") for i, n in enumerate(names)],
            shared={"created_at": shanghai},
            ids=True,
        )
        assert len(ids) == 4
        rows = (await s.execute(select(Tag).where(Tag.id.in_(ids)))).scalars().all()
        by_id = {t.id: t for t in rows}
        assert [by_id[i].name for i in ids] == names
        assert [by_id[i].color for i in ids] == ["#0", None, "#2", None]
        # The shared datetime went through UTCDateTime once: the same instant on every row.
        assert {by_id[i].created_at for i in ids} == {shanghai}
        # Without ids: nothing is returned, the rows are there all the same.
        assert (
            await hotsql.insert_rows(
                s,
                tags,
                ("name",),
                [(f"{prefix}-e",)],
                shared={"created_at": shanghai},
                copy=copy,
            )  # fmt: skip
            == []
        )
        (row,) = await hotsql.fetch(s, COUNT_TAGS, {"prefix": f"{prefix}%"})
        assert row[0] == 5
        # JSON documents are serialised per row; what every row shares is stored in each.
        await hotsql.insert_rows(
            s,
            audit_logs,
            ("entity_id", "changes"),
            [(f"{prefix}-1", {"name": {"before": None, "after": "饮料"}}), (f"{prefix}-2", {})],
            shared={
                "occurred_at": shanghai,
                "actor_type": "system",
                "actor_id": None,
                "actor_name": "system",
                "action": "tag.create",
                "entity_type": "tag",
            },
            copy=copy,
        )
        entries = (
            await s.scalars(
                select(AuditLog)
                .where(AuditLog.entity_id.like(f"{prefix}%"))
                .order_by(AuditLog.entity_id)
            )
        ).all()
        assert [(e.entity_id, e.changes, e.occurred_at) for e in entries] == [
            (f"{prefix}-1", {"name": {"before": None, "after": "饮料"}}, shanghai),
            (f"{prefix}-2", {}, shanghai),
        ]
        assert {(e.action, e.actor_name, e.actor_id) for e in entries} == {
            ("tag.create", "system", None)
        }
        await s.rollback()
    assert await _count(engine, prefix) == 0


async def test_insert_rows_wants_every_column_a_core_insert_would_default(
    engine: AsyncEngine,
) -> None:
    """A Core INSERT fills a left-out column's Python default (Tag.created_at: now); the
    driver-level INSERT would leave it NULL, so it refuses instead of storing something else."""
    async with make_sessionmaker(engine)() as s:
        with pytest.raises(ValueError, match=r"created_at"):
            await hotsql.insert_rows(s, tags, ("name",), [(_prefix(),)])
        assert await hotsql.insert_rows(s, tags, ("name",), []) == []


@pytest.mark.parametrize("copy", [False, True])
async def test_insert_rows_stores_shared_values_as_given(engine: AsyncEngine, copy: bool) -> None:
    """What every row shares is written into SQLite's statement (and left out of PostgreSQL's
    COPY when NULL): text with quotes, parameter marks and a comment marker, and NULL land as
    given."""
    prefix = _prefix()
    at = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    odd = "O'Brien's ''tag'' ? :x %s; -- DROP TABLE tags"
    async with make_sessionmaker(engine)() as s:
        await s.execute(select(1))
        await hotsql.insert_rows(
            s,
            audit_logs,
            ("entity_id", "changes"),
            [(f"{prefix}-1", {"a": 1}), (f"{prefix}-2", {})],
            shared={
                "occurred_at": at,
                "actor_type": "system",
                "actor_id": None,
                "actor_name": odd,
                "action": "tag.create",
                "entity_type": "tag",
                "request_id": None,
            },
            copy=copy,
        )
        entries = (
            await s.scalars(
                select(AuditLog)
                .where(AuditLog.entity_id.like(f"{prefix}%"))
                .order_by(AuditLog.entity_id)
            )
        ).all()
        assert [
            (e.entity_id, e.changes, e.actor_name, e.actor_id, e.occurred_at) for e in entries
        ] == [
            (f"{prefix}-1", {"a": 1}, odd, None, at),
            (f"{prefix}-2", {}, odd, None, at),
        ]
        await s.rollback()


async def test_fetch_plain_sees_the_transaction_and_fails_as_sqlalchemy_does(
    engine: AsyncEngine,
) -> None:
    """On SQLite it runs on the driver connection beneath the session: what the session wrote
    in its transaction is seen, the rows are plain values, an error is SQLAlchemy's."""
    prefix = _prefix()
    async with make_sessionmaker(engine)() as s:
        await s.execute(insert(tags).values(name=f"{prefix}-a", created_at=datetime.now(UTC)))
        rows = await hotsql.fetch_plain(s, COUNT_TAGS, {"prefix": f"{prefix}%"})
        assert [tuple(r) for r in rows] == [(1,)]
        with pytest.raises(DBAPIError):
            await hotsql.fetch_plain(s, HotStatement(text("SELECT nope FROM tags")), {})
        await s.rollback()
    assert await _count(engine, prefix) == 0

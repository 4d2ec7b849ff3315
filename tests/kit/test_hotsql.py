"""kit.hotsql: statements run on the driver connection stay inside the session's transaction,
see and are seen by the session's own statements, get their parameters processed as
SQLAlchemy would, and fail as SQLAlchemy statements fail. On SQLite every statement takes the
SQLAlchemy path; the same assertions hold there."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import cast

import pytest
from sqlalchemy import Table, bindparam, func, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from selfmart.db import JSONDoc, UTCDateTime, make_sessionmaker
from selfmart.kit import hotsql
from selfmart.kit.hotsql import HotStatement
from selfmart.models import Tag

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


async def test_a_constraint_violation_is_an_integrity_error(
    engine: AsyncEngine, backend: str
) -> None:
    name = _prefix()
    now = datetime.now(UTC)
    async with make_sessionmaker(engine)() as s:
        await s.execute(select(1))
        await hotsql.fetch(s, INSERT_TAG, {"name": name, "at": now})
        with pytest.raises(IntegrityError) as caught:
            await hotsql.fetch(s, INSERT_TAG, {"name": name, "at": now})
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

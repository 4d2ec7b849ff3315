"""Log retention: the nightly prune deletes exactly what is older than each log's setting
(security events and changes of the audit log each by their own), in short batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.kit import prune
from selfmart.models import AuditLog, BehaviourEvent, LoginLog
from selfmart.retention import service as retention
from tests.audit.helpers import add_entry
from tests.builders import make_store
from tests.support import settings_for
from tests.terminals.builders import make_terminal

#: Long before anything other tests write, so only this test's rows are that old.
NOW = datetime(2001, 6, 1, tzinfo=UTC)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


async def _ids(session: AsyncSession, model: Any, column: Any) -> set[int]:
    rows = await session.scalars(select(model.id).where(column < datetime(2002, 1, 1, tzinfo=UTC)))
    return set(rows.all())


async def test_each_log_keeps_exactly_what_its_setting_says(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], db_url: str
) -> None:
    settings = settings_for(
        db_url,
        retention_audit_days=100,
        retention_security_days=30,
        retention_business_days=10,
        retention_login_days=20,
        retention_batch_rows=2,
    )
    store = await make_store(session)
    terminal = await make_terminal(session, store)
    keep: dict[str, set[int]] = {"audit": set(), "business": set(), "login": set()}
    gone: dict[str, set[int]] = {"audit": set(), "business": set(), "login": set()}

    # changes: kept 100 days; one exactly at the cutoff stays (older than, not as old as)
    for days, into in ((100.01, gone), (150, gone), (100, keep), (99, keep), (31, keep)):
        entry = await add_entry(session, ago(days), action="product.update")
        into["audit"].add(entry.id)
    # security events: kept 30 days, though changes of the same age stay
    for days, into in ((31, gone), (99, gone), (29, keep), (30, keep)):
        entry = await add_entry(session, ago(days), action="security.denied")
        into["audit"].add(entry.id)
    rotation = await add_entry(session, ago(45), action="terminal.rotate_key")
    gone["audit"].add(rotation.id)
    for i, (days, into) in enumerate(((11, gone), (10.5, gone), (12, gone), (9, keep))):
        event = BehaviourEvent(
            store_id=store.id,
            terminal_id=terminal.id,
            event_id=f"R-{i}",
            kind="session_start",
            occurred_at=ago(days),
            received_at=ago(days),
            data={},
        )
        session.add(event)
        await session.flush()
        into["business"].add(event.id)
    for days, into in ((21, gone), (19, keep)):
        row = LoginLog(created_at=ago(days), username="x", success=False, reason="bad_password")
        session.add(row)
        await session.flush()
        into["login"].add(row.id)
    await session.commit()

    counts = await retention.prune_logs(sessionmaker, settings, now=NOW)
    assert counts == {"audit": 2, "security": 3, "business": 3, "login": 1}
    session.expunge_all()  # SQLite may give a deleted row's id to the next insert

    assert await _ids(session, AuditLog, AuditLog.occurred_at) == keep["audit"]
    assert await _ids(session, BehaviourEvent, BehaviourEvent.occurred_at) == keep["business"]
    assert await _ids(session, LoginLog, LoginLog.created_at) == keep["login"]
    pruned = select(AuditLog).where(AuditLog.action == retention.ACTION)
    [entry] = (await session.scalars(pruned)).all()
    assert entry.actor_type == "job"
    assert entry.changes["business"]["after"] == 3

    # nothing left to prune: no second entry
    assert await retention.prune_logs(sessionmaker, settings, now=NOW) == {
        "audit": 0,
        "security": 0,
        "business": 0,
        "login": 0,
    }
    n = await session.scalar(select(func.count()).where(AuditLog.action == retention.ACTION))
    assert n == 1


async def test_pruning_goes_in_batches_of_the_set_size(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    old = [(await add_entry(session, ago(400 + i))).id for i in range(5)]
    young = (await add_entry(session, ago(1))).id
    await session.commit()
    table = cast(Table, AuditLog.__table__)
    cutoff = ago(300)
    assert await prune.delete_older(sessionmaker, table, "occurred_at", cutoff, batch=2) == (
        5,
        3,  # 2 + 2 + 1: the short batch says it was the last
    )
    assert await _ids(session, AuditLog, AuditLog.occurred_at) == {young}
    assert not set(old) & await _ids(session, AuditLog, AuditLog.occurred_at)
    # a multiple of the batch size takes one more, empty, transaction to know it is done
    for i in range(4):
        await add_entry(session, ago(500 + i))
    await session.commit()
    assert await prune.delete_older(sessionmaker, table, "occurred_at", cutoff, batch=2) == (4, 3)

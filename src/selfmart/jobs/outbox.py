"""The transactional outbox: side effects recorded with the business change, carried out after.

`enqueue(session, topic, payload)` writes an OutboxEvent in the caller's transaction and asks
for a dispatch right after commit (a rolled-back transaction leaves neither the row nor the
kick). A periodic sweep dispatches whatever a kick missed (a crash between commit and kick, a
runtime that was not running, a retry that came due). Each event is claimed with a lease so
several workers never run it at the same time; a handler that raises is retried with
exponential backoff, and after `outbox_max_attempts` the event is marked failed.

Delivery is at least once: a handler may run again if its worker dies mid-way, so handlers
must be idempotent (check the state they are about to change).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.config import Settings
from selfmart.jobs import runtime
from selfmart.jobs.registry import discover
from selfmart.kit import aftercommit
from selfmart.kit.time import utcnow
from selfmart.models import OutboxEvent

log = logging.getLogger(__name__)

#: The job that dispatches events (kicked after commit, and by the sweep).
DISPATCH_JOB = "outbox.dispatch"


@dataclass(frozen=True, slots=True)
class Failure:
    """What a failure hook is told about a failed attempt."""

    error: str
    attempt: int
    final: bool
    retry_at: datetime | None


Handler = Callable[[AsyncSession, dict[str, Any]], Awaitable[None]]
FailureHook = Callable[[AsyncSession, dict[str, Any], Failure], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Topic:
    handler: Handler
    on_failure: FailureHook | None


_TOPICS: dict[str, _Topic] = {}


def handler(topic: str, *, on_failure: FailureHook | None = None) -> Callable[[Handler], Handler]:
    """Register the handler of `topic`. It runs in its own transaction (committed with the
    event marked done); `on_failure` runs in the transaction that records a failed attempt."""

    def deco(fn: Handler) -> Handler:
        known = _TOPICS.get(topic)
        if known is not None and known.handler.__qualname__ != fn.__qualname__:
            raise ValueError(f"outbox topic {topic!r} has two handlers")
        _TOPICS[topic] = _Topic(fn, on_failure)
        return fn

    return deco


def topics() -> list[str]:
    discover()
    return sorted(_TOPICS)


class _Kick:
    """One after-commit callback per transaction, carrying every event id it enqueued."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    async def __call__(self) -> None:
        await runtime.kick(DISPATCH_JOB, list(self.ids))


async def enqueue(
    session: AsyncSession,
    topic: str,
    payload: Mapping[str, Any],
    *,
    delay: timedelta | None = None,
) -> OutboxEvent:
    """Record `topic` with a JSON `payload` (ids and plain values) in the caller's transaction;
    it is dispatched after commit (or after `delay`, by the sweep)."""
    discover()
    if topic not in _TOPICS:
        raise LookupError(f"no outbox handler for topic {topic!r}")
    now = utcnow()
    event = OutboxEvent(
        topic=topic,
        payload=dict(payload),
        status="pending",
        created_at=now,
        available_at=now + delay if delay else now,
        attempts=0,
    )
    session.add(event)
    await session.flush()
    if not delay:
        kick = next((c for c in aftercommit.pending(session) if isinstance(c, _Kick)), None)
        if kick is None:
            kick = _Kick()
            aftercommit.on_commit(session, kick)
        kick.ids.append(event.id)
    return event


def backoff(attempt: int, settings: Settings) -> timedelta:
    """The wait after failed attempt number `attempt` (1-based)."""
    seconds = settings.outbox_retry_base_seconds * 2 ** max(attempt - 1, 0)
    return timedelta(seconds=min(seconds, settings.outbox_retry_max_seconds))


async def _claim(
    session: AsyncSession,
    *,
    ids: Sequence[int] | None,
    now: datetime,
    lease_until: datetime,
    limit: int,
) -> list[int]:
    """Take up to `limit` due events: push their availability to the lease's end and count the
    attempt, in one statement. Another worker's concurrent claim skips them: PostgreSQL skips
    the rows we lock; on SQLite writes are serialised and the condition is re-checked."""
    due = (OutboxEvent.status == "pending") & (OutboxEvent.available_at <= now)
    pick = select(OutboxEvent.id).where(due)
    if ids is not None:
        pick = pick.where(OutboxEvent.id.in_(ids))
    pick = pick.order_by(OutboxEvent.available_at, OutboxEvent.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    stmt = (
        update(OutboxEvent)
        .where(OutboxEvent.id.in_(pick.scalar_subquery()), due)
        .values(available_at=lease_until, attempts=OutboxEvent.attempts + 1)
        .returning(OutboxEvent.id)
        .execution_options(synchronize_session=False)
    )
    claimed = list((await session.scalars(stmt)).all())
    return sorted(claimed)


@dataclass
class DispatchReport:
    done: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)

    @property
    def claimed(self) -> int:
        return len(self.done) + len(self.retrying) + len(self.failed)


async def dispatch(
    ids: Sequence[int] | None = None, *, now: datetime | None = None, limit: int = 100
) -> DispatchReport:
    """Claim and run due events (only `ids` when given), each in its own transaction."""
    discover()
    rt = runtime.current()
    now = now or utcnow()
    report = DispatchReport()
    if ids is not None and not ids:
        return report
    async with rt.sessionmaker() as session:
        claimed = await _claim(
            session,
            ids=ids,
            now=now,
            lease_until=now + timedelta(seconds=rt.settings.outbox_lease_seconds),
            limit=limit,
        )
        await session.commit()
    for event_id in claimed:
        outcome = await _run_one(rt, event_id, now)
        getattr(report, outcome).append(event_id)
    return report


async def sweep(*, now: datetime | None = None, batch: int = 200, max_batches: int = 20) -> int:
    """Dispatch everything due, batch after batch; returns how many events were claimed."""
    total = 0
    for _ in range(max_batches):
        report = await dispatch(None, now=now, limit=batch)
        total += report.claimed
        if report.claimed < batch:
            break
    return total


async def _run_one(rt: runtime.Runtime, event_id: int, now: datetime) -> str:
    async with rt.sessionmaker() as session:
        event = await session.get(OutboxEvent, event_id)
        if event is None or event.status != "pending":
            return "done"
        topic = _TOPICS.get(event.topic)
        payload = dict(event.payload)
        try:
            if topic is None:
                raise LookupError(f"no outbox handler for topic {event.topic!r}")
            await topic.handler(session, payload)
            event.status = "done"
            event.done_at = utcnow()
            event.last_error = None
            await session.commit()
        except Exception as exc:
            aftercommit.discard(session)
            await session.rollback()
            error = f"{type(exc).__name__}: {exc}"[:2000]
            return await _record_failure(rt, event_id, payload, topic, error, now)
    await aftercommit.run_pending(session)
    return "done"


async def _record_failure(
    rt: runtime.Runtime,
    event_id: int,
    payload: dict[str, Any],
    topic: _Topic | None,
    error: str,
    now: datetime,
) -> str:
    async with rt.sessionmaker() as session:
        event = await session.get(OutboxEvent, event_id)
        if event is None:
            return "failed"
        final = event.attempts >= rt.settings.outbox_max_attempts
        retry_at = None if final else now + backoff(event.attempts, rt.settings)
        event.last_error = error
        if final:
            event.status = "failed"
        else:
            assert retry_at is not None
            event.available_at = retry_at
        if topic is not None and topic.on_failure is not None:
            failure = Failure(error=error, attempt=event.attempts, final=final, retry_at=retry_at)
            try:
                async with session.begin_nested():
                    await topic.on_failure(session, payload, failure)
            except Exception:
                log.exception("outbox failure hook of %s failed", event.topic)
        topic_name, attempts = event.topic, event.attempts
        await session.commit()
    log.warning(
        "outbox event %s (%s) attempt %s failed%s: %s",
        event_id,
        topic_name,
        attempts,
        " for the last time" if final else "",
        error,
    )
    return "failed" if final else "retrying"

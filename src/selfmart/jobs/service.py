"""Long jobs with a progress record the console polls (imports, exports, rebuilds).

A domain declares the job body and starts it from a service:

    @jobs.job("catalog.import_products")
    async def import_products(run: jobs.RunningJob) -> dict[str, Any]:
        ...
        await run.progress(done, total)
        return {"created": created}

    job = await jobs.start_job(session, kind="catalog.import_products", created_by=actor,
                               params={"upload_id": upload.id})

`start_job` writes the `job_runs` row (queued) and an outbox event in the caller's
transaction; after commit the job is handed to the broker. The body's return value becomes the
run's `result`; an exception marks it failed with the error.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import desc, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.errors import AppError, NotFound
from selfmart.iam.actor import Actor, job_actor
from selfmart.iam.permissions import Perm
from selfmart.jobs import outbox, runtime
from selfmart.jobs.registry import JOBS, discover, task
from selfmart.kit.time import utcnow
from selfmart.models import JobRun, OutboxEvent, User

log = logging.getLogger(__name__)

RUN_TOPIC = "jobs.run"


@dataclass
class RunningJob:
    """What a job body gets: its run's id and params, and a way to report progress."""

    id: int
    kind: str
    params: dict[str, Any]
    created_by: int | None
    total: int | None = None

    async def progress(self, n: int, total: int | None = None) -> None:
        if total is not None:
            self.total = total
        await report_progress(self.id, n, total)


JobBody = Callable[[RunningJob], Awaitable[Mapping[str, Any] | None]]


def job(kind: str) -> Callable[[JobBody], JobBody]:
    """Declare a long job with a progress record; start it with `start_job(kind=...)`."""

    def deco(body: JobBody) -> JobBody:
        async def run_job(job_id: int) -> None:
            await execute(job_id, body)

        run_job.__qualname__ = f"run_job[{kind}]"
        run_job.__module__ = body.__module__
        task(kind)(run_job)
        return body

    return deco


async def start_job(
    session: AsyncSession,
    *,
    kind: str,
    created_by: Actor | None = None,
    params: Mapping[str, Any] | None = None,
    total: int | None = None,
) -> JobRun:
    """Queue job `kind` in the caller's transaction; it starts after commit. `params` (JSON)
    is what the job needs beyond its id; `created_by` decides who may watch it."""
    discover()
    if kind not in JOBS:
        raise LookupError(f"unknown job {kind!r}")
    run = JobRun(
        kind=kind,
        status="queued",
        progress=0,
        total=total,
        params=dict(params or {}),
        created_by=created_by.id if created_by is not None and created_by.kind == "user" else None,
        created_at=utcnow(),
    )
    session.add(run)
    await session.flush()
    await outbox.enqueue(session, RUN_TOPIC, {"job_id": run.id})
    return run


async def report_progress(job_id: int, n: int, total: int | None = None) -> None:
    """Record that `n` (of `total`, when known) units are done; commits at once, in its own
    session, so the console sees it while the job goes on."""
    values: dict[str, Any] = {"progress": n}
    if total is not None:
        values["total"] = total
    async with runtime.sessionmaker()() as session:
        await session.execute(update(JobRun).where(JobRun.id == job_id).values(**values))
        await session.commit()


async def execute(job_id: int, body: JobBody) -> None:
    """Run `body` for the queued run `job_id`: queued → running → succeeded | failed. A run
    that is not queued (already started by a duplicate delivery) is left alone."""
    factory = runtime.sessionmaker()
    async with factory() as session:
        started = await session.scalar(
            update(JobRun)
            .where(JobRun.id == job_id, JobRun.status == "queued")
            .values(status="running", started_at=utcnow())
            .returning(JobRun.id)
        )
        run = await session.get(JobRun, job_id) if started else None
        await session.commit()
    if run is None:
        log.info("job run %s is not queued; not started again", job_id)
        return
    handle = RunningJob(
        id=run.id,
        kind=run.kind,
        params=dict(run.params),
        created_by=run.created_by,
        total=run.total,
    )
    try:
        result = await body(handle)
    except Exception as exc:
        log.exception("job %s (%s) failed", job_id, run.kind)
        values: dict[str, Any] = {"status": "failed", "finished_at": utcnow(), **failure(exc)}
    else:
        values = {
            "status": "succeeded",
            "result": dict(result) if result is not None else None,
            "finished_at": utcnow(),
        }
    async with factory() as session:
        await session.execute(update(JobRun).where(JobRun.id == job_id).values(**values))
        await session.commit()


def failure(exc: Exception) -> dict[str, Any]:
    """A failed run's error_code and error_details: an AppError's code and details (the console
    words them in the reader's language); anything else is internal_error, its text in the
    server log only."""
    if isinstance(exc, AppError):
        details = [d.model_dump(mode="json") for d in exc.details]
        return {"error_code": exc.code, "error_details": details}
    return {"error_code": "internal_error", "error_details": []}


@outbox.handler(RUN_TOPIC)
async def _hand_to_broker(session: AsyncSession, payload: dict[str, Any]) -> None:
    run = await session.get(JobRun, int(payload["job_id"]))
    if run is None or run.status != "queued":
        return
    if not await runtime.kick(run.kind, run.id):
        raise RuntimeError("the job runtime is not running in this process")


def sees_all_jobs(actor: Actor) -> bool:
    """Super admins (every store, system settings) and the system see every run."""
    return actor.kind in {"system", "job"} or (
        actor.store_ids is None and actor.can(Perm.SYSTEM_SETTINGS)
    )


async def get_job(session: AsyncSession, actor: Actor, job_id: int) -> JobRun:
    stmt = select(JobRun).where(JobRun.id == job_id)
    if not sees_all_jobs(actor):
        stmt = stmt.where(JobRun.created_by == actor.id)
    run = await session.scalar(stmt)
    if run is None:
        raise NotFound("No such job", field="job_id")
    return run


@dataclass(frozen=True, slots=True)
class Backlog:
    """Work waiting: outbox events due and unhandled plus long jobs still queued."""

    depth: int
    lag_seconds: float
    failed_events: int


async def backlog(session: AsyncSession, now: datetime) -> Backlog:
    """The queue as of `now`: how much waits, how long the oldest has waited, and how many
    outbox events failed every attempt."""
    due = (OutboxEvent.status == "pending") & (OutboxEvent.available_at <= now)
    depth, oldest_due = (
        await session.execute(select(func.count(), func.min(OutboxEvent.available_at)).where(due))
    ).one()
    queued, oldest_job = (
        await session.execute(
            select(func.count(), func.min(JobRun.created_at)).where(JobRun.status == "queued")
        )
    ).one()
    failed = await session.scalar(
        select(func.count()).select_from(OutboxEvent).where(OutboxEvent.status == "failed")
    )
    lags = [(now - t).total_seconds() for t in (oldest_due, oldest_job) if t is not None]
    return Backlog(
        depth=int(depth) + int(queued),
        lag_seconds=max(lags, default=0.0),
        failed_events=int(failed or 0),
    )


@dataclass(frozen=True, slots=True)
class Failure:
    """A job run or an outbox event that failed for good: when, which, and what it said."""

    at: datetime
    source: str  # "job" | "outbox"
    kind: str
    message: str


async def recent_failures(session: AsyncSession, limit: int) -> list[Failure]:
    """The latest failed job runs and outbox events, newest first (the monitoring page's
    recent errors)."""
    runs = (
        await session.execute(
            select(JobRun.finished_at, JobRun.kind, func.coalesce(JobRun.error_code, JobRun.error))
            .where(JobRun.status == "failed", JobRun.finished_at.is_not(None))
            .order_by(desc(JobRun.finished_at))
            .limit(limit)
        )
    ).all()
    events = (
        await session.execute(
            select(OutboxEvent.available_at, OutboxEvent.topic, OutboxEvent.last_error)
            .where(OutboxEvent.status == "failed")
            .order_by(desc(OutboxEvent.available_at))
            .limit(limit)
        )
    ).all()
    out = [Failure(at, "job", kind, (err or "")[:500]) for at, kind, err in runs if at is not None]
    out += [Failure(at, "outbox", topic, (err or "")[:500]) for at, topic, err in events]
    return sorted(out, key=lambda f: f.at, reverse=True)[:limit]


async def started_by(session: AsyncSession, user_id: int | None, kind: str) -> Actor:
    """The person who started a job (so the audit entries its work writes name them), or the
    job itself when that person is gone."""
    user = None if user_id is None else await session.get(User, user_id)
    if user is None:
        return job_actor(kind)
    return Actor(
        kind="user", id=user.id, name=user.username, permissions=frozenset(Perm), store_ids=None
    )

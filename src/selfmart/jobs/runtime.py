"""The job runtime: the taskiq broker, the schedules, and the session jobs open.

Embedded (no Redis; `make run`, tests): an in-memory broker runs jobs as asyncio tasks in the
API process, and the schedules run in-process too. With `SELFMART_REDIS_URL` set, the API
process only enqueues onto a Redis stream; `selfmart worker` processes run the jobs and the
`selfmart scheduler` process holding the scheduler lease fires the schedules (docs/jobs.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from taskiq import AsyncBroker, InMemoryBroker, ScheduleSource, TaskiqScheduler
from taskiq.kicker import AsyncKicker
from taskiq.schedule_sources import LabelScheduleSource

from selfmart.config import Settings
from selfmart.jobs.registry import JOBS, Cron, Every, Schedule, discover
from selfmart.kit import aftercommit
from selfmart.kit.background import cancel_and_wait

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    broker: AsyncBroker
    scheduler_task: asyncio.Task[None] | None = None

    @property
    def embedded(self) -> bool:
        return isinstance(self.broker, InMemoryBroker)


_current: Runtime | None = None


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("the job runtime is not running (runtime.start was not called)")
    return _current


def is_running() -> bool:
    return _current is not None


def sessionmaker() -> async_sessionmaker[AsyncSession]:
    """The session factory jobs and outbox handlers open their own sessions from."""
    return current().sessionmaker


def settings() -> Settings:
    return current().settings


@contextlib.asynccontextmanager
async def transaction() -> AsyncIterator[AsyncSession]:
    """A job's unit of work, like a request's: commit on success, then the after-commit work
    (outbox kicks); roll back and drop it on error."""
    async with sessionmaker()() as session:
        try:
            yield session
        except BaseException:
            aftercommit.discard(session)
            await session.rollback()
            raise
        else:
            await session.commit()
            await aftercommit.run_pending(session)


def _schedule_label(schedule: Schedule, settings: Settings) -> dict[str, Any]:
    if isinstance(schedule, Every):
        return {"interval": schedule.seconds}
    assert isinstance(schedule, Cron)
    return {"cron": schedule.expr, "cron_offset": schedule.timezone or settings.default_timezone}


def quiet_taskiq(settings: Settings) -> None:
    """taskiq logs every job it sends and runs at INFO; keep that for DEBUG runs only."""
    if logging.getLevelName(settings.log_level.upper()) != logging.DEBUG:
        logging.getLogger("taskiq").setLevel(logging.WARNING)


def build_broker(settings: Settings, *, inline: bool = False) -> AsyncBroker:
    """A broker with every declared job registered on it.

    Redis streams when `settings.redis_url` is set (messages are acknowledged after the job
    ran, so a worker that dies mid-job leaves its message to be claimed again); otherwise the
    in-memory broker. `inline` runs in-memory jobs to completion inside `kick` (tests)."""
    discover()
    quiet_taskiq(settings)
    broker: AsyncBroker
    if settings.redis_url:
        from taskiq_redis import RedisStreamBroker

        broker = RedisStreamBroker(
            settings.redis_url, queue_name=settings.jobs_queue, consumer_group_name="selfmart"
        )
    else:
        broker = InMemoryBroker(await_inplace=inline, max_stored_results=10)
    for job in JOBS.values():
        labels: dict[str, Any] = {}
        if job.schedules:
            labels["schedule"] = [
                {**_schedule_label(s, settings), "schedule_id": f"{job.name}#{i}"}
                for i, s in enumerate(job.schedules)
            ]
        broker.register_task(job.fn, task_name=job.name, **labels)
    return broker


def build_scheduler(broker: AsyncBroker, settings: Settings) -> TaskiqScheduler:
    """The scheduler of the declared schedules. With Redis, any number of scheduler processes
    may run: only the holder of the scheduler lease sends (see jobs/lease.py)."""
    sources: list[ScheduleSource] = [LabelScheduleSource(broker)]
    if not settings.redis_url:
        return TaskiqScheduler(broker, sources=sources)
    from selfmart.jobs.lease import LeasedScheduler

    return LeasedScheduler(
        broker,
        sources,
        redis_url=settings.redis_url,
        key=f"{settings.jobs_queue}:scheduler-lease",
        ttl_seconds=settings.scheduler_lease_seconds,
    )


async def _run_schedules(broker: AsyncBroker, settings: Settings) -> None:
    from taskiq.cli.scheduler.run import SchedulerLoop

    scheduler = build_scheduler(broker, settings)
    for source in scheduler.sources:
        await source.startup()
    try:
        await SchedulerLoop(scheduler).run(update_interval=timedelta(hours=1))
    finally:
        for source in scheduler.sources:
            await source.shutdown()


def install(runtime: Runtime) -> None:
    """Make `runtime` the process's runtime (worker processes call this on startup)."""
    global _current
    if _current is not None and _current is not runtime:
        raise RuntimeError("a job runtime is already running in this process")
    _current = runtime


def uninstall() -> None:
    global _current
    _current = None


async def start(
    settings: Settings,
    factory: async_sessionmaker[AsyncSession],
    *,
    schedules: bool | None = None,
    inline: bool = False,
) -> Runtime:
    """Start the runtime for an API process. `schedules` defaults to True when embedded (no
    Redis) and False with Redis, where the `selfmart scheduler` processes fire them."""
    broker = build_broker(settings, inline=inline)
    runtime = Runtime(settings=settings, sessionmaker=factory, broker=broker)
    install(runtime)
    try:
        await broker.startup()
    except BaseException:
        uninstall()
        raise
    if schedules if schedules is not None else runtime.embedded:
        runtime.scheduler_task = asyncio.create_task(
            _run_schedules(broker, settings), name="selfmart-schedules"
        )
    log.info(
        "job runtime started (%s broker%s)",
        "in-memory" if runtime.embedded else "redis",
        ", schedules in-process" if runtime.scheduler_task else "",
    )
    return runtime


async def stop(grace_seconds: float = 10.0) -> None:
    """Stop the schedules, let running in-process jobs finish (up to `grace_seconds`, then
    cancel them), and close the broker."""
    runtime = _current
    if runtime is None:
        return
    try:
        await cancel_and_wait(runtime.scheduler_task)
        if isinstance(runtime.broker, InMemoryBroker):
            running: set[asyncio.Task[Any]] = set(getattr(runtime.broker, "_running_tasks", ()))
            if running:
                _done, pending = await asyncio.wait(running, timeout=grace_seconds)
                for task in pending:
                    task.cancel()
                if pending:
                    log.warning("cancelled %d job(s) still running at shutdown", len(pending))
                    await asyncio.wait(pending, timeout=1)
        await runtime.broker.shutdown()
    finally:
        uninstall()
    log.info("job runtime stopped")


@contextlib.asynccontextmanager
async def running(
    settings: Settings,
    factory: async_sessionmaker[AsyncSession],
    *,
    schedules: bool = False,
    inline: bool = True,
) -> AsyncIterator[Runtime]:
    """The runtime for the length of a block (tests): inline jobs, no schedules by default."""
    runtime = await start(settings, factory, schedules=schedules, inline=inline)
    try:
        yield runtime
    finally:
        await stop()


async def kick(name: str, *args: Any, **kwargs: Any) -> bool:
    """Enqueue job `name` with plain arguments. Returns False (and does nothing) when no
    runtime runs in this process: whatever the outbox holds is then left to the sweep."""
    runtime = _current
    if runtime is None:
        log.info("job runtime not running; %s not enqueued", name)
        return False
    if name not in JOBS:
        raise LookupError(f"unknown job {name!r}")
    await AsyncKicker(name, runtime.broker, {}).kiq(*args, **kwargs)
    return True


async def startup(app: FastAPI) -> None:
    await start(app.state.settings, app.state.sessionmaker)


async def shutdown(app: FastAPI) -> None:
    await stop()

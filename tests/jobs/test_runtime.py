"""The runtime: which broker, what is registered and scheduled, schedules in-process when
embedded, and a clean stop."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from taskiq import InMemoryBroker
from taskiq_redis import RedisStreamBroker

from selfmart import cli
from selfmart.config import get_settings
from selfmart.jobs import outbox, runtime
from selfmart.jobs.registry import JOBS, Cron, Every, task
from selfmart.kit import aftercommit
from tests.support import settings_for

from .handlers import TOPIC, calls
from .progress_jobs import SLEEPERS


@task("test.nightly", schedule=[Cron("0 9 * * *"), Cron("30 2 * * 1", "UTC"), Every(3600)])
async def nightly() -> None:
    return None


def test_in_memory_broker_without_redis_with_every_job_registered() -> None:
    broker = runtime.build_broker(settings_for("sqlite+aiosqlite://"))
    assert isinstance(broker, InMemoryBroker)
    registered = broker.get_all_tasks()
    assert {"outbox.dispatch", "outbox.sweep", "test.nightly"} <= set(registered)
    assert set(JOBS) <= set(registered)
    assert registered["outbox.sweep"].labels["schedule"] == [
        {"interval": 60, "schedule_id": "outbox.sweep#0"}
    ]
    assert registered["test.nightly"].labels["schedule"] == [
        {"cron": "0 9 * * *", "cron_offset": "Asia/Shanghai", "schedule_id": "test.nightly#0"},
        {"cron": "30 2 * * 1", "cron_offset": "UTC", "schedule_id": "test.nightly#1"},
        {"interval": 3600, "schedule_id": "test.nightly#2"},
    ]


def test_redis_broker_when_redis_url_is_set() -> None:
    settings = settings_for(
        "sqlite+aiosqlite://", redis_url="redis://127.0.0.1:6379/0", jobs_queue="q-x"
    )
    broker = runtime.build_broker(settings)
    assert isinstance(broker, RedisStreamBroker)
    assert broker.queue_name == "q-x"
    assert "outbox.sweep" in broker.get_all_tasks()


async def test_embedded_schedules_run_in_process(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No kick at all: the in-process schedule's first sweep picks the event up."""
    # Only the sweep's schedule: other domains' scheduled jobs would run at start too, and
    # here every session shares the test's one connection (interleaved savepoints break it).
    monkeypatch.setattr(
        runtime,
        "JOBS",
        {name: j for name, j in JOBS.items() if not j.schedules or name == "outbox.sweep"},
    )
    key = uuid.uuid4().hex
    event = await outbox.enqueue(session, TOPIC, {"key": key})
    aftercommit.discard(session)
    rt = await runtime.start(settings_for(db_url), sessionmaker)  # as `make run` starts it
    try:
        assert rt.scheduler_task is not None  # embedded: schedules on by default
        for _ in range(60):
            if calls(key):
                break
            await asyncio.sleep(0.1)
    finally:
        await runtime.stop()  # waits for the running sweep to finish
    assert calls(key) == [{"key": key}]
    assert rt.scheduler_task.done()
    assert not runtime.is_running()
    await session.refresh(event)
    assert event.status == "done"


async def test_redis_mode_leaves_schedules_to_the_scheduler_process(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    settings = settings_for("sqlite+aiosqlite://", redis_url="redis://127.0.0.1:1/0")
    rt = runtime.Runtime(
        settings=settings, sessionmaker=sessionmaker, broker=runtime.build_broker(settings)
    )
    assert not rt.embedded


async def test_stop_waits_briefly_then_cancels_running_jobs(
    sessionmaker: async_sessionmaker[AsyncSession], db_url: str
) -> None:
    token = uuid.uuid4().hex
    await runtime.start(settings_for(db_url), sessionmaker, schedules=False, inline=False)
    assert await runtime.kick("test.sleep", token)
    for _ in range(50):
        if token in SLEEPERS:
            break
        await asyncio.sleep(0.02)
    t0 = time.monotonic()
    await runtime.stop(grace_seconds=0.2)
    assert time.monotonic() - t0 < 3
    assert SLEEPERS[token] == "cancelled"
    assert not runtime.is_running()


async def test_only_one_runtime_per_process(
    sessionmaker: async_sessionmaker[AsyncSession], db_url: str
) -> None:
    async with runtime.running(settings_for(db_url), sessionmaker):
        with pytest.raises(RuntimeError, match="already running"):
            await runtime.start(settings_for(db_url), sessionmaker)
        assert runtime.is_running()
    assert not runtime.is_running()


def test_worker_and_scheduler_commands_need_redis(monkeypatch: Any) -> None:
    monkeypatch.delenv("SELFMART_REDIS_URL", raising=False)
    get_settings.cache_clear()
    try:
        for command in ("worker", "scheduler"):
            result = CliRunner().invoke(cli.main, [command])
            assert result.exit_code != 0
            assert "needs SELFMART_REDIS_URL" in result.output
    finally:
        get_settings.cache_clear()

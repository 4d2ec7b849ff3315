"""Several scheduler processes, one sender: the scheduler lease in a real Redis.

Two schedulers see the same due schedule; only the lease holder sends it. When the holder
stops (releasing the lease) or dies (its lease runs out), the stand-by sends the next tick, and
a tick that fell while nobody held the lease is sent once by the scheduler that takes it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from taskiq import InMemoryBroker, ScheduleSource
from taskiq.schedule_sources import LabelScheduleSource
from taskiq.scheduler.scheduled_task import ScheduledTask

from selfmart.jobs.lease import LeasedScheduler

from .test_redis import redis_url  # noqa: F401  (the fixture: real Redis, skipped without)

JOB = "lease_test.tick"


def _scheduler(name: str, sent: list[str], url: str, key: str) -> LeasedScheduler:
    broker = InMemoryBroker(await_inplace=True)

    async def tick() -> None:
        sent.append(name)

    broker.register_task(tick, task_name=JOB)
    return LeasedScheduler(
        broker, [LabelScheduleSource(broker)], redis_url=url, key=key, ttl_seconds=1
    )


TICK = ScheduledTask(
    task_name=JOB, labels={}, args=[], kwargs={}, schedule_id="tick#0", interval=60
)


async def test_only_the_lease_holder_sends_and_a_stand_by_takes_over(
    redis_url: str,  # noqa: F811
) -> None:
    key = f"selfmart:test-lease:{uuid.uuid4().hex}"
    sent: list[str] = []
    first = _scheduler("first", sent, redis_url, key)
    second = _scheduler("second", sent, redis_url, key)
    third = _scheduler("third", sent, redis_url, key)
    await first.startup()
    await second.startup()
    try:
        assert (first.holding, second.holding) == (True, False)
        for _ in range(3):  # three ticks, each seen by both schedulers
            await first.on_ready(first.sources[0], TICK)
            await second.on_ready(second.sources[0], TICK)
        assert sent == ["first"] * 3

        await first.shutdown()  # stopped: the lease is given back at once
        await second.on_ready(second.sources[0], TICK)
        assert sent == ["first"] * 3 + ["second"]

        # the holder dies without giving the lease back: the stand-by sends once it runs out
        await third.startup()
        assert not third.holding
        assert second._keeper is not None
        second._keeper.cancel()  # no more renewals, as if the process were killed
        for _ in range(50):  # a bound on waiting for the 1 s lease to run out
            if await third.claim():
                break
            await asyncio.sleep(0.1)
        await second.on_ready(second.sources[0], TICK)  # the old holder no longer sends
        await third.on_ready(third.sources[0], TICK)
        assert sent == ["first"] * 3 + ["second", "third"]
    finally:
        for s in (first, second, third):
            if s._redis is not None:
                await s.shutdown()


# --- a tick missed while the lease changed hands is caught up once ---------------------------

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: the nightly backup's kind of schedule: 03:30 Shanghai time
NIGHTLY = ScheduledTask(
    task_name=JOB,
    labels={},
    args=[],
    kwargs={},
    schedule_id="nightly#0",
    cron="30 3 * * *",
    cron_offset="Asia/Shanghai",
)
EVERY_MINUTE = ScheduledTask(
    task_name=JOB, labels={}, args=[], kwargs={}, schedule_id="minutely#0", interval=60
)


class _Schedules(ScheduleSource):
    def __init__(self, *tasks: ScheduledTask) -> None:
        self.tasks = list(tasks)

    async def get_schedules(self) -> list[ScheduledTask]:
        return self.tasks


def _at(day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, second, tzinfo=SHANGHAI).astimezone(UTC)


def _with(name: str, sent: list[str], url: str, key: str, task: ScheduledTask) -> LeasedScheduler:
    broker = InMemoryBroker(await_inplace=True)

    async def tick() -> None:
        sent.append(name)

    broker.register_task(tick, task_name=JOB)
    return LeasedScheduler(broker, [_Schedules(task)], redis_url=url, key=key, ttl_seconds=1)


async def _die(scheduler: LeasedScheduler) -> None:
    """Killed: no more renewals, the lease not given back."""
    assert scheduler._keeper is not None
    scheduler._keeper.cancel()


async def _take_over(scheduler: LeasedScheduler) -> None:
    """Wait (a bound, not a timing) for the dead holder's 1 s lease to run out and claim it."""
    for _ in range(50):
        if await scheduler.claim():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the lease was never free")


async def _stop_all(*schedulers: LeasedScheduler) -> None:
    for s in schedulers:
        if s._redis is not None:
            await s.shutdown()


async def test_a_nightly_tick_missed_during_a_takeover_is_sent_once(
    redis_url: str,  # noqa: F811
) -> None:
    key = f"selfmart:test-lease:{uuid.uuid4().hex}"
    sent: list[str] = []
    holder = _with("holder", sent, redis_url, key, NIGHTLY)
    standby = _with("standby", sent, redis_url, key, NIGHTLY)
    later = _with("later", sent, redis_url, key, NIGHTLY)
    try:
        holder.clock = lambda: _at(7, 3, 30, 1)
        await holder.startup()
        await holder.on_ready(holder.sources[0], NIGHTLY)  # the 7th's backup
        assert sent == ["holder"]
        # the 8th, 03:29: the holder dies; its lease runs out at 03:30:10, after the tick the
        # standby's loop saw at 03:30 and left to the holder
        standby.clock = lambda: _at(8, 3, 30, 0)
        await standby.startup()
        await standby.on_ready(standby.sources[0], NIGHTLY)
        assert sent == ["holder"]
        await _die(holder)
        standby.clock = lambda: _at(8, 3, 30, 12)
        await _take_over(standby)
        assert sent == ["holder", "standby"]  # caught up on taking the lease
        assert await standby.claim()  # holding on: nothing more
        assert sent == ["holder", "standby"]
        # the standby dies too; the next one finds the 8th's tick sent: no second backup
        await _die(standby)
        later.clock = lambda: _at(8, 3, 45)
        await later.startup()
        await _take_over(later)
        assert sent == ["holder", "standby"]
        # and the 9th's tick is sent as usual
        later.clock = lambda: _at(9, 3, 30)
        await later.on_ready(later.sources[0], NIGHTLY)
        assert sent == ["holder", "standby", "later"]
    finally:
        await _stop_all(holder, standby, later)


async def test_a_takeover_in_the_tick_itself_sends_it_once(
    redis_url: str,  # noqa: F811
) -> None:
    """The standby's own 03:30 tick is what takes the lease: the catch-up sends the missed
    tick and the tick itself is then not sent again."""
    key = f"selfmart:test-lease:{uuid.uuid4().hex}"
    sent: list[str] = []
    holder = _with("holder", sent, redis_url, key, NIGHTLY)
    standby = _with("standby", sent, redis_url, key, NIGHTLY)
    try:
        holder.clock = lambda: _at(7, 3, 30)
        await holder.startup()
        await holder.on_ready(holder.sources[0], NIGHTLY)
        await _die(holder)
        standby.clock = lambda: _at(8, 3, 30, 0)
        await standby.startup()  # the lease is still the dead holder's
        for _ in range(50):  # the loop ticks at 03:30 until the lease has run out
            await standby.on_ready(standby.sources[0], NIGHTLY)
            if standby.holding:
                break
            await asyncio.sleep(0.1)
        assert sent == ["holder", "standby"]
    finally:
        await _stop_all(holder, standby)


async def test_an_interval_tick_missed_during_a_takeover_is_sent_once(
    redis_url: str,  # noqa: F811
) -> None:
    key = f"selfmart:test-lease:{uuid.uuid4().hex}"
    sent: list[str] = []
    holder = _with("holder", sent, redis_url, key, EVERY_MINUTE)
    standby = _with("standby", sent, redis_url, key, EVERY_MINUTE)
    later = _with("later", sent, redis_url, key, EVERY_MINUTE)
    start = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)
    try:
        holder.clock = lambda: start
        await holder.startup()
        await holder.on_ready(holder.sources[0], EVERY_MINUTE)
        await standby.startup()
        await _die(holder)
        standby.clock = lambda: start + timedelta(seconds=75)  # the tick at +60 was missed
        await _take_over(standby)
        assert sent == ["holder", "standby"]
        # the standby's loop ticks on its own phase a moment later: the same tick, not sent
        await standby.on_ready(standby.sources[0], EVERY_MINUTE)
        assert sent == ["holder", "standby"]
        # a later takeover within the interval finds nothing missed
        await _die(standby)
        later.clock = lambda: start + timedelta(seconds=100)
        await later.startup()
        await _take_over(later)
        assert sent == ["holder", "standby"]
    finally:
        await _stop_all(holder, standby, later)


async def test_a_send_in_flight_after_shutdown_does_not_take_the_lease_again(
    redis_url: str,  # noqa: F811
) -> None:
    """The scheduler loop's sends run as their own tasks: one still waiting when the process
    stops must neither send nor take the lease back (and so keep a stand-by from sending)."""
    key = f"selfmart:test-lease:{uuid.uuid4().hex}"
    sent: list[str] = []
    first = _scheduler("first", sent, redis_url, key)
    second = _scheduler("second", sent, redis_url, key)
    await first.startup()
    await second.startup()
    try:
        assert (first.holding, second.holding) == (True, False)
        await first.shutdown()
        await first.on_ready(first.sources[0], TICK)  # the send that was in flight
        assert sent == []
        assert first._redis is None
        assert not first.holding
        assert await second.claim()  # the lease is free: the stand-by takes it
        await second.on_ready(second.sources[0], TICK)
        assert sent == ["second"]
    finally:
        for s in (first, second):
            if s._redis is not None:
                await s.shutdown()

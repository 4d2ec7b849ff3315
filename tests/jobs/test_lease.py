"""Several scheduler processes, one sender: the scheduler lease in a real Redis.

Two schedulers see the same due schedule; only the lease holder sends it. When the holder
stops (releasing the lease) or dies (its lease runs out), the stand-by sends the next tick."""

from __future__ import annotations

import asyncio
import uuid

from taskiq import InMemoryBroker
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

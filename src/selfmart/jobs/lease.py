"""Schedules fire once however many `selfmart scheduler` processes run.

Every scheduler process ticks, but only the one holding a lease in Redis sends: the lease is a
key holding the holder's token with a time to live, renewed a few times per lease, and
re-checked atomically just before each send. The others stand by and one of them takes over
when the holder stops renewing (it stopped, died or lost Redis).

A tick that falls in that gap is caught up, once: every send is recorded in Redis (per
schedule: the minute of a cron tick, the time of an interval send), and a scheduler that takes
the lease sends each schedule whose next tick after the recorded one is already due: for a cron
schedule its latest due minute (one send however many were missed), for an interval schedule
one send now. The record is what makes it once: a tick already recorded is not sent again, by
the catch-up or by the regular tick of the same minute; and an interval schedule caught up is
not sent again by its next regular tick if that comes within half an interval. A schedule never
sent before (no record) is not caught up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from redis.exceptions import RedisError
from taskiq import AsyncBroker, ScheduleSource, TaskiqScheduler
from taskiq.cli.scheduler.run import CronValueError, is_cron_task_now
from taskiq.scheduler.scheduled_task import ScheduledTask

from selfmart.kit.background import cancel_and_wait

log = logging.getLogger(__name__)

#: A cron tick missed longer ago than this is not caught up (nor looked for, minute by minute).
CATCH_UP_LIMIT = timedelta(days=8)
MINUTE = timedelta(minutes=1)


def _minute(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(second=0, microsecond=0)


def _interval_seconds(task: ScheduledTask) -> float | None:
    value = task.interval
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def latest_cron_tick(task: ScheduledTask, after: datetime, now: datetime) -> datetime | None:
    """The latest minute of `task`'s cron schedule after `after` and not after `now` (both
    read in its zone, `cron_offset`), or None when none fell in between."""
    assert task.cron is not None
    lower = max(_minute(after) + MINUTE, _minute(now) - CATCH_UP_LIMIT)
    minute = _minute(now)
    try:
        while minute >= lower:
            if is_cron_task_now(task.cron, minute, offset=task.cron_offset):
                return minute
            minute -= MINUTE
    except CronValueError:
        log.warning("schedule %s: cannot read cron %r", task.schedule_id, task.cron)
    return None


# Take the lease when free, extend it when ours; 1 when we hold it afterwards.
_CLAIM = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
# Give the lease up only if it is still ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class LeasedScheduler(TaskiqScheduler):
    """A taskiq scheduler that sends a due schedule only while it holds the lease `key`."""

    def __init__(
        self,
        broker: AsyncBroker,
        sources: list[ScheduleSource],
        *,
        redis_url: str,
        key: str,
        ttl_seconds: float,
    ) -> None:
        super().__init__(broker, sources)
        self.redis_url = redis_url
        self.key = key
        self.ttl_ms = max(int(ttl_seconds * 1000), 1000)
        #: who holds the lease: this machine, this process, this start
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.holding = False
        #: per schedule: the last tick sent (a cron minute or an interval send), epoch seconds
        self.sent_key = f"{key}:sent"
        #: the time now (tests move it)
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._redis: Redis[bytes] | None = None
        self._keeper: asyncio.Task[None] | None = None
        #: claims, catch-ups and sends one at a time (the keeper may take over mid-tick)
        self._lock = asyncio.Lock()
        #: interval schedules this scheduler caught up: schedule id -> monotonic time
        self._caught_up: dict[str, float] = {}
        #: shut down: a send still in flight must not take the lease again (nor open Redis)
        self._closed = False

    async def claim(self) -> bool:
        """Take or extend the lease; False when another scheduler holds it, Redis is away or
        this scheduler is shutting down."""
        if self._closed:
            return False
        if self._redis is None:
            self._redis = Redis.from_url(self.redis_url, socket_timeout=self.ttl_ms / 3000)
        try:
            held = bool(await self._redis.eval(_CLAIM, 1, self.key, self.token, self.ttl_ms))  # type: ignore[no-untyped-call]  # untyped in the redis stubs
        except (RedisError, OSError) as exc:
            held = False
            log.warning("scheduler lease %s: Redis unreachable (%s)", self.key, exc)
        if held != self.holding:
            log.warning(
                "scheduler %s %s the schedules",
                self.token,
                "now sends" if held else "stands by: another scheduler sends",
            )
            self.holding = held
            if held:
                try:
                    await self._catch_up()
                except Exception:  # the lease is ours still: the keeper must keep it
                    log.exception("scheduler %s: catching up failed", self.token)
        return held

    # --- the record of sends, and the catch-up -----------------------------------------

    async def _recorded(self, schedule_id: str) -> datetime | None:
        assert self._redis is not None
        raw = await self._redis.hget(self.sent_key, schedule_id)
        return None if raw is None else datetime.fromtimestamp(float(raw), UTC)

    async def _record(self, schedule_id: str, tick: datetime) -> None:
        assert self._redis is not None
        try:
            await self._redis.hset(self.sent_key, schedule_id, repr(tick.timestamp()))
        except (RedisError, OSError) as exc:
            log.warning("schedule %s sent but not recorded (%s)", schedule_id, exc)

    async def _send(self, source: ScheduleSource, task: ScheduledTask, tick: datetime) -> None:
        await super().on_ready(source, task)
        await self._record(task.schedule_id, tick)

    async def _catch_up(self) -> None:
        """Just took the lease: send, once, each schedule whose tick after its last recorded
        send is already due (the previous holder stopped before sending it)."""
        now = self.clock()
        for source in self.sources:
            try:
                tasks = await source.get_schedules()
            except Exception:  # a broken source must not stop the scheduler taking over
                log.exception("scheduler %s: schedules not read for catching up", self.token)
                continue
            for task in tasks:
                try:
                    last = await self._recorded(task.schedule_id)
                except (RedisError, OSError) as exc:
                    log.warning(
                        "scheduler %s: no catch-up, Redis unreachable (%s)", self.token, exc
                    )
                    return
                if last is None:
                    continue
                tick: datetime | None = None
                interval = _interval_seconds(task)
                if task.cron is not None:
                    tick = latest_cron_tick(task, last, now)
                elif interval is not None and last + timedelta(seconds=interval) <= now:
                    tick = now
                if tick is None:
                    continue
                log.warning(
                    "scheduler %s catches up %s (last sent %s, missed %s)",
                    self.token,
                    task.schedule_id,
                    last.isoformat(),
                    tick.isoformat(),
                )
                await self._send(source, task, tick)
                if task.cron is None:
                    self._caught_up[task.schedule_id] = time.monotonic()

    async def _already_sent(self, task: ScheduledTask, tick: datetime) -> bool:
        """This tick went out already: a cron minute recorded (by a catch-up, or by a holder
        that sent it before losing the lease), or an interval schedule caught up here less
        than half an interval ago."""
        if task.cron is not None:
            last = await self._recorded(task.schedule_id)
            return last is not None and last >= tick
        caught_up = self._caught_up.get(task.schedule_id)
        interval = _interval_seconds(task)
        return (
            caught_up is not None
            and interval is not None
            and time.monotonic() - caught_up < interval / 2
        )

    # --- the loop's side -------------------------------------------------------------------

    async def _keep(self) -> None:
        while True:
            async with self._lock:
                await self.claim()
            await asyncio.sleep(self.ttl_ms / 3000)

    async def startup(self) -> None:
        await super().startup()
        async with self._lock:
            await self.claim()
        if not self.holding:
            log.warning("scheduler %s stands by: another scheduler sends", self.token)
        self._keeper = asyncio.create_task(self._keep(), name="selfmart-scheduler-lease")

    async def on_ready(self, source: ScheduleSource, task: ScheduledTask) -> None:
        async with self._lock:
            if not await self.claim():
                log.debug("schedule %s left to the lease holder", task.schedule_id)
                return
            now = self.clock()
            tick = _minute(now) if task.cron is not None else now
            try:
                if await self._already_sent(task, tick):
                    log.info("schedule %s: this tick was caught up already", task.schedule_id)
                    return
            except (RedisError, OSError) as exc:  # the lease said yes a moment ago: send
                log.warning("schedule %s: record unreadable (%s)", task.schedule_id, exc)
            await self._send(source, task, tick)

    async def shutdown(self) -> None:
        """Stop renewing and give the lease up (at once, not after its time to live), each
        step bounded: Redis slow or away must not keep the process from stopping."""
        self._closed = True
        await cancel_and_wait(self._keeper)
        redis, self._redis = self._redis, None
        if redis is not None:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(self.ttl_ms / 3000):
                    await redis.eval(_RELEASE, 1, self.key, self.token)  # type: ignore[no-untyped-call]
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(self.ttl_ms / 3000):
                    await redis.aclose()  # type: ignore[attr-defined]  # redis 5+; stubs are older
        self.holding = False
        await super().shutdown()

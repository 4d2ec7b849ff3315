"""Schedules fire once however many `selfmart scheduler` processes run.

Every scheduler process ticks, but only the one holding a lease in Redis sends: the lease is a
key holding the holder's token with a time to live, renewed a few times per lease, and
re-checked atomically just before each send. The others stand by and one of them takes over
when the holder stops renewing (it stopped, died or lost Redis); ticks that fall in that gap
(at most one lease length) are not sent by anyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid

from redis.asyncio import Redis
from redis.exceptions import RedisError
from taskiq import AsyncBroker, ScheduleSource, TaskiqScheduler
from taskiq.scheduler.scheduled_task import ScheduledTask

log = logging.getLogger(__name__)

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
        self._redis: Redis[bytes] | None = None
        self._keeper: asyncio.Task[None] | None = None

    async def claim(self) -> bool:
        """Take or extend the lease; False when another scheduler holds it or Redis is away."""
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
        return held

    async def _keep(self) -> None:
        while True:
            await self.claim()
            await asyncio.sleep(self.ttl_ms / 3000)

    async def startup(self) -> None:
        await super().startup()
        await self.claim()
        if not self.holding:
            log.warning("scheduler %s stands by: another scheduler sends", self.token)
        self._keeper = asyncio.create_task(self._keep(), name="selfmart-scheduler-lease")

    async def on_ready(self, source: ScheduleSource, task: ScheduledTask) -> None:
        if await self.claim():
            await super().on_ready(source, task)
        else:
            log.debug("schedule %s left to the lease holder", task.schedule_id)

    async def shutdown(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        if self._redis is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._redis.eval(_RELEASE, 1, self.key, self.token)  # type: ignore[no-untyped-call]
            await self._redis.aclose()  # type: ignore[attr-defined]  # redis 5+; stubs are older
            self._redis = None
        self.holding = False
        await super().shutdown()

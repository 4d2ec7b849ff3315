"""Each machine's host figures (psutil) and HTTP window, shared through Redis so that the alert
rules and the monitoring page see every machine, not only the one they happen to run on.

With `redis_url` set, every API process publishes, every `machine_sample_seconds`, a sample under
a key named after its machine (`machine_name`, default the host name) with a time to live of
three periods: a machine that stops publishing drops out. The HTTP figures are those of the
process's metrics (in multiprocess mode, every process of the machine, summed), over the last
`WINDOW_SECONDS`. Without Redis there is one machine, this one, read on the spot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from selfmart.config import Settings
from selfmart.kit.time import utcnow
from selfmart.monitoring import schemas
from selfmart.monitoring.overview import HttpTotals, host, http_totals

log = logging.getLogger(__name__)

#: The HTTP figures of a sample cover about this much time (the alert evaluation's period).
WINDOW_SECONDS = 60.0


def name_of(settings: Settings) -> str:
    return settings.machine_name or socket.gethostname()


def _prefix(settings: Settings) -> str:
    return f"{settings.jobs_queue}:machines:"


@dataclass(frozen=True, slots=True)
class MachineSample:
    name: str
    at: datetime
    host: schemas.HostRead
    #: the requests answered during the last `window_seconds` (0: no window yet)
    http: HttpTotals
    window_seconds: float

    def dumps(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "at": self.at.isoformat(),
                "host": self.host.model_dump(mode="json"),
                "requests": self.http.requests,
                "errors": self.http.errors,
                # +Inf travels as the string "inf" (JSON has no infinity)
                "buckets": [[str(le), n] for le, n in self.http.buckets],
                "window_seconds": self.window_seconds,
            }
        )

    @classmethod
    def loads(cls, raw: str | bytes) -> MachineSample:
        data: dict[str, Any] = json.loads(raw)
        return cls(
            name=str(data["name"]),
            at=datetime.fromisoformat(data["at"]),
            host=schemas.HostRead.model_validate(data["host"]),
            http=HttpTotals(
                requests=float(data["requests"]),
                errors=float(data["errors"]),
                buckets=tuple((float(le), float(n)) for le, n in data["buckets"]),
            ),
            window_seconds=float(data["window_seconds"]),
        )


class Sampler:
    """This process's samples: the host now and the requests of the last WINDOW_SECONDS
    (the difference between the counters now and those of the oldest kept reading)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._history: deque[tuple[float, HttpTotals]] = deque()

    def sample(self, *, now: float | None = None) -> MachineSample:
        """Blocking (psutil measures the CPU over a fifth of a second): run it in a thread."""
        now = time.monotonic() if now is None else now
        totals = http_totals()
        self._history.append((now, totals))
        # keep the newest reading at least WINDOW_SECONDS old as the start of the window
        while len(self._history) > 1 and now - self._history[1][0] >= WINDOW_SECONDS:
            self._history.popleft()
        start, earlier = self._history[0]
        return MachineSample(
            name=name_of(self.settings),
            at=utcnow(),
            host=host(self.settings),
            http=totals.since(earlier),
            window_seconds=round(now - start, 3),
        )


async def publish(redis: Any, settings: Settings, sample: MachineSample) -> None:
    ttl_ms = int(settings.machine_sample_seconds * 3 * 1000)
    await redis.set(_prefix(settings) + sample.name, sample.dumps(), px=ttl_ms)


async def published(settings: Settings, redis: Any | None = None) -> list[MachineSample]:
    """Every machine's latest sample (Redis), by name; [] without Redis."""
    if not settings.redis_url:
        return []
    from redis.asyncio import Redis

    client: Any = redis if redis is not None else Redis.from_url(settings.redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=_prefix(settings) + "*", count=200)]
        raws = await client.mget(keys) if keys else []
    finally:
        if redis is None:
            await client.aclose()
    out = []
    for raw in raws:
        if raw is None:  # expired between the scan and the read
            continue
        try:
            out.append(MachineSample.loads(raw))
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable machine sample in Redis, ignored")
    return sorted(out, key=lambda s: s.name)


class Publisher:
    """The API process's loop that publishes its machine's sample (started with the app when
    Redis is set)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sampler = Sampler(settings)
        self._task: asyncio.Task[None] | None = None

    async def once(self, redis: Any) -> MachineSample:
        sample = await asyncio.to_thread(self.sampler.sample)
        await publish(redis, self.settings, sample)
        return sample

    async def _run(self) -> None:
        from redis.asyncio import Redis
        from redis.exceptions import RedisError

        assert self.settings.redis_url
        redis = Redis.from_url(self.settings.redis_url)
        try:
            while True:
                try:
                    await self.once(redis)
                except (RedisError, OSError) as exc:
                    log.warning("machine sample not published: Redis unreachable (%s)", exc)
                except Exception:  # a bad sample must not end the publishing for good
                    log.exception("machine sample not published")
                await asyncio.sleep(self.settings.machine_sample_seconds)
        finally:
            await redis.aclose()  # type: ignore[attr-defined]  # redis 5+; stubs are older

    def start(self) -> None:
        if self.settings.redis_url and self._task is None:
            self._task = asyncio.create_task(self._run(), name="selfmart-machine-sample")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

"""Each machine's host figures (psutil) and HTTP window, shared through Redis so that the alert
rules and the monitoring page see every machine, not only the one they happen to run on.

With `redis_url` set, every API process and every job worker publishes, every
`machine_sample_seconds`, a sample under a key of its own (its machine — `machine_name`, default
the host name — its role and its process id) with a time to live of three periods: a process
that stops publishing drops out. Readers merge a machine's samples into one: the host figures of
its newest sample, and the HTTP figures of its API processes over the last `WINDOW_SECONDS` —
summed, or, in multiprocess mode (where each process already reads every process of the
machine), the newest one's. A machine that runs only workers has its host watched all the same
(and no HTTP figures). Without Redis there is one machine, this one, read on the spot.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from selfmart.config import Settings
from selfmart.kit.background import BackgroundLoop
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


#: Roles of the publishing processes: only API processes answer HTTP.
API, WORKER = "api", "worker"


@dataclass(frozen=True, slots=True)
class MachineSample:
    name: str
    at: datetime
    host: schemas.HostRead
    #: the requests answered during the last `window_seconds` (0: no window yet)
    http: HttpTotals
    window_seconds: float
    role: str = API
    pid: int = 0
    #: the HTTP figures are every process of the machine's (prometheus multiprocess mode)
    machine_wide: bool = False

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
                "role": self.role,
                "pid": self.pid,
                "machine_wide": self.machine_wide,
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
            role=str(data.get("role", API)),
            pid=int(data.get("pid", 0)),
            machine_wide=bool(data.get("machine_wide", False)),
        )


def _sum(totals: list[HttpTotals]) -> HttpTotals:
    buckets: dict[float, float] = {}
    for t in totals:
        for le, n in t.buckets:
            buckets[le] = buckets.get(le, 0.0) + n
    return HttpTotals(
        requests=sum(t.requests for t in totals),
        errors=sum(t.errors for t in totals),
        buckets=tuple(sorted(buckets.items())),
    )


def merge(samples: list[MachineSample]) -> list[MachineSample]:
    """One sample per machine from its processes' samples (see the module's docstring)."""
    by_name: dict[str, list[MachineSample]] = {}
    for sample in samples:
        by_name.setdefault(sample.name, []).append(sample)
    out = []
    for name, group in sorted(by_name.items()):
        newest = max(group, key=lambda x: x.at)
        api = sorted((x for x in group if x.role == API), key=lambda x: x.at)
        if not api:
            http, window = HttpTotals(), 0.0
        elif any(x.machine_wide for x in api):
            http, window = api[-1].http, api[-1].window_seconds
        else:
            http, window = _sum([x.http for x in api]), max(x.window_seconds for x in api)
        out.append(
            MachineSample(
                name=name,
                at=newest.at,
                host=newest.host,
                http=http,
                window_seconds=window,
                role=API if api else WORKER,
                machine_wide=any(x.machine_wide for x in api),
            )
        )
    return out


class Sampler:
    """This process's samples: the host now and the requests of the last WINDOW_SECONDS
    (the difference between the counters now and those of the oldest kept reading)."""

    def __init__(self, settings: Settings, role: str = API) -> None:
        self.settings = settings
        self.role = role
        self._history: deque[tuple[float, HttpTotals]] = deque()

    def sample(self, *, now: float | None = None) -> MachineSample:
        """Blocking (psutil measures the CPU over a fifth of a second): run it in a thread."""
        now = time.monotonic() if now is None else now
        totals = http_totals() if self.role == API else HttpTotals()
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
            window_seconds=round(now - start, 3) if self.role == API else 0.0,
            role=self.role,
            pid=os.getpid(),
            machine_wide=bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR")),
        )


async def publish(redis: Any, settings: Settings, sample: MachineSample) -> None:
    ttl_ms = int(settings.machine_sample_seconds * 3 * 1000)
    key = f"{_prefix(settings)}{sample.name}:{sample.role}:{sample.pid}"
    await redis.set(key, sample.dumps(), px=ttl_ms)


async def published(settings: Settings, redis: Any | None = None) -> list[MachineSample]:
    """Every machine's latest figures (its processes' samples in Redis, merged), by name; []
    without Redis."""
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
    return merge(out)


class Publisher:
    """A process's loop that publishes its sample (started with the app, and with each job
    worker, when Redis is set)."""

    def __init__(self, settings: Settings, role: str = API) -> None:
        self.settings = settings
        self.sampler = Sampler(settings, role)
        self._loop = BackgroundLoop("selfmart-machine-sample")

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
        if self.settings.redis_url:
            self._loop.start(self._run)

    async def stop(self) -> None:
        await self._loop.stop()

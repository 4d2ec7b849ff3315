"""The console's monitoring page: the host (psutil), the database, the slowest routes as this
machine's metrics see them, the job queue and the latest failures."""

from __future__ import annotations

import asyncio
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psutil
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart import __version__
from selfmart.config import Settings
from selfmart.kit.time import utcnow
from selfmart.monitoring import schemas
from selfmart.monitoring.metrics import multiprocess
from selfmart.monitoring.service import database_figures

if TYPE_CHECKING:  # machines builds on this module
    from selfmart.monitoring import machines

RECENT_ERRORS = 20
SLOWEST = 10


def host(settings: Settings) -> schemas.HostRead:
    disk_path = str(settings.media_dir if settings.media_dir.exists() else os.sep)
    mem = psutil.virtual_memory()
    disk = psutil.disk_usage(disk_path)
    net = psutil.net_io_counters()
    return schemas.HostRead(
        cpu_percent=psutil.cpu_percent(interval=0.2),
        cpu_count=psutil.cpu_count() or 1,
        load_average=[round(x, 2) for x in os.getloadavg()],
        memory_total_bytes=mem.total,
        memory_used_bytes=mem.total - mem.available,
        memory_percent=mem.percent,
        disk_path=disk_path,
        disk_total_bytes=disk.total,
        disk_used_bytes=disk.used,
        disk_percent=disk.percent,
        network_sent_bytes=net.bytes_sent,
        network_received_bytes=net.bytes_recv,
    )


def _registry() -> Any:
    """This process's metrics, or (multiprocess mode) every process's of this machine."""
    if multiprocess():
        registry: Any = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


@dataclass(frozen=True, slots=True)
class HttpTotals:
    """Every route's requests, 5xx answers and latency histogram, summed, since the processes
    started (counters only grow: a window is the difference of two of these)."""

    requests: float = 0.0
    errors: float = 0.0
    #: cumulative count per bucket upper bound (seconds; +Inf last)
    buckets: tuple[tuple[float, float], ...] = ()

    def since(self, earlier: HttpTotals) -> HttpTotals:
        before = dict(earlier.buckets)
        return HttpTotals(
            requests=self.requests - earlier.requests,
            errors=self.errors - earlier.errors,
            buckets=tuple((le, n - before.get(le, 0.0)) for le, n in self.buckets),
        )

    def quantile(self, q: float) -> float | None:
        """The q-quantile of the latencies in seconds, interpolated within its bucket as
        Prometheus's histogram_quantile does; None without observations."""
        if not self.buckets or self.buckets[-1][1] <= 0:
            return None
        rank = q * self.buckets[-1][1]
        lower_bound, lower_count = 0.0, 0.0
        for le, count in self.buckets:
            if count >= rank:
                if math.isinf(le):
                    return lower_bound  # beyond the largest finite bucket: its bound
                if count == lower_count:
                    return le
                return lower_bound + (le - lower_bound) * (rank - lower_count) / (
                    count - lower_count
                )
            lower_bound, lower_count = le, count
        return lower_bound


def http_totals() -> HttpTotals:
    requests = errors = 0.0
    buckets: dict[float, float] = {}
    for family in _registry().collect():
        if family.name == "selfmart_http_requests":
            requests += sum(s.value for s in family.samples if s.name.endswith("_total"))
        elif family.name == "selfmart_http_errors":
            errors += sum(s.value for s in family.samples if s.name.endswith("_total"))
        elif family.name == "selfmart_http_request_duration_seconds":
            for s in family.samples:
                if s.name.endswith("_bucket"):
                    le = float(s.labels["le"])
                    buckets[le] = buckets.get(le, 0.0) + s.value
    return HttpTotals(requests=requests, errors=errors, buckets=tuple(sorted(buckets.items())))


def slowest_routes(limit: int | None = SLOWEST) -> list[schemas.RouteTiming]:
    """Mean time per route template since the processes started, slowest first (the first
    `limit`; None: all)."""
    registry = _registry()
    sums: dict[tuple[str, str], float] = {}
    counts: dict[tuple[str, str], float] = {}
    for family in registry.collect():
        if family.name != "selfmart_http_request_duration_seconds":
            continue
        for s in family.samples:
            key = (s.labels.get("method", ""), s.labels.get("route", ""))
            if s.name.endswith("_sum"):
                sums[key] = sums.get(key, 0.0) + s.value
            elif s.name.endswith("_count"):
                counts[key] = counts.get(key, 0.0) + s.value
    rows = [
        schemas.RouteTiming(
            method=m, route=r, requests=int(n), mean_ms=round(sums.get((m, r), 0) / n * 1000, 2)
        )
        for (m, r), n in counts.items()
        if n
    ]
    return sorted(rows, key=lambda t: t.mean_ms, reverse=True)[:limit]


def _file_size(path: str) -> int:
    """An SQLite database's size: its file and its write-ahead log."""
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if p and os.path.exists(p))


async def _database(session: AsyncSession, app: FastAPI) -> schemas.DatabaseRead:
    settings: Settings = app.state.settings
    pool: Any = app.state.engine.sync_engine.pool
    checked_out = pool.checkedout() if hasattr(pool, "checkedout") else None
    if settings.is_sqlite:
        path = make_url(settings.database_url).database or ""
        size = await asyncio.to_thread(_file_size, path)
        return schemas.DatabaseRead(
            dialect="sqlite", size_bytes=size, connections=checked_out, pool_checked_out=checked_out
        )
    size = await session.scalar(text("SELECT pg_database_size(current_database())"))
    connections = await session.scalar(
        text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
    )
    return schemas.DatabaseRead(
        dialect="postgresql",
        size_bytes=int(size or 0),
        connections=int(connections or 0),
        pool_checked_out=checked_out,
    )


async def _recent_errors(session: AsyncSession) -> list[schemas.RecentError]:
    from selfmart.jobs import service as jobs

    return [
        schemas.RecentError(at=f.at, source=f.source, kind=f.kind, message=f.message)
        for f in await jobs.recent_failures(session, RECENT_ERRORS)
    ]


def _machine(sample: machines.MachineSample, this: str) -> schemas.MachineRead:
    q = sample.http.quantile(0.95)
    return schemas.MachineRead(
        name=sample.name,
        at=sample.at,
        this=sample.name == this,
        host=sample.host,
        window_seconds=sample.window_seconds,
        requests=int(sample.http.requests),
        errors=int(sample.http.errors),
        p95_ms=None if q is None else round(q * 1000, 3),
    )


async def _machines(app: FastAPI, here: schemas.HostRead) -> list[schemas.MachineRead]:
    """With Redis, every machine's published sample (this one's even before it published);
    without, this machine alone: its host now and its requests since the process started."""
    from selfmart.monitoring import machines

    settings: Settings = app.state.settings
    this = machines.name_of(settings)
    samples: list[machines.MachineSample] = []
    if settings.redis_url:
        from redis.exceptions import RedisError

        try:
            samples = await machines.published(settings)
        except (RedisError, OSError):  # Redis away: this machine is still worth showing
            samples = []
    if not any(s.name == this for s in samples):
        samples.append(
            machines.MachineSample(
                name=this, at=utcnow(), host=here, http=http_totals(), window_seconds=0.0
            )
        )
    return sorted((_machine(s, this) for s in samples), key=lambda m: (not m.this, m.name))


async def overview(session: AsyncSession, app: FastAPI) -> schemas.MonitoringOverview:
    settings: Settings = app.state.settings
    figures = await database_figures(session, settings)
    here = await asyncio.to_thread(host, settings)
    return schemas.MonitoringOverview(
        at=utcnow(),
        version=__version__,
        host=here,
        machines=await _machines(app, here),
        database=await _database(session, app),
        slowest_routes=slowest_routes(),
        jobs=schemas.JobsRead(
            queue_depth=int(figures["selfmart_jobs_queue_depth"][1]),
            lag_seconds=figures["selfmart_jobs_queue_lag_seconds"][1],
            failed_events=int(figures["selfmart_outbox_failed"][1]),
            orders_per_minute=figures["selfmart_orders_per_minute"][1],
            terminals_online=int(figures["selfmart_terminals_online"][1]),
        ),
        recent_errors=await _recent_errors(session),
    )

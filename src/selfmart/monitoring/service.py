"""Readiness checks and the figures /metrics reads from the database.

The database-derived figures (job queue, orders per minute, terminals online) describe the whole
deployment, not one process: they are computed when /metrics is scraped, cached for
`metrics_cache_seconds`, and exported by whichever process answers the scrape, never summed
across processes. They are read-only counts over indexed columns.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.config import Settings
from selfmart.jobs import service as jobs
from selfmart.kit.time import utcnow
from selfmart.monitoring.metrics import multiprocess, record_pool
from selfmart.orders import service as orders
from selfmart.payments import records
from selfmart.terminals import presence

#: A readiness check that takes longer than this has failed (a load balancer asks often).
CHECK_TIMEOUT_SECONDS = 2.0


@dataclass
class Check:
    ok: bool
    detail: str = "ok"


async def _database(factory: async_sessionmaker[AsyncSession]) -> Check:
    async with factory() as session:
        await session.execute(text("SELECT 1"))
    return Check(True)


async def _redis(url: str) -> Check:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        await client.ping()
    finally:
        await client.aclose()  # type: ignore[attr-defined]  # (types-redis predates aclose)
    return Check(True)


async def _jobs() -> Check:
    from selfmart.jobs import runtime

    if not runtime.is_running():
        return Check(False, "the job runtime is not running")
    rt = runtime.current()
    if rt.scheduler_task is not None and rt.scheduler_task.done():
        return Check(False, "the in-process scheduler stopped")
    return Check(True)


async def _timed(name: str, check: Any) -> tuple[str, Check]:
    try:
        return name, await asyncio.wait_for(check, CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return name, Check(False, f"no answer within {CHECK_TIMEOUT_SECONDS:g} s")
    except Exception as exc:  # any failure of a dependency is "not ready", said in words
        return name, Check(False, f"{type(exc).__name__}: {exc}"[:300])


async def readiness(app: FastAPI) -> dict[str, Check]:
    """Each dependency this process needs to serve: the database, Redis when configured, and
    the job runtime (which also carries the outbox kicks after every commit)."""
    settings: Settings = app.state.settings
    checks = [_timed("database", _database(app.state.sessionmaker))]
    if settings.redis_url:
        checks.append(_timed("redis", _redis(settings.redis_url)))
    checks.append(_timed("jobs", _jobs()))
    return dict(await asyncio.gather(*checks))


@dataclass
class Figures:
    """The deployment-wide figures, as of `at` (a monotonic time)."""

    at: float
    values: dict[str, tuple[str, float]] = field(default_factory=dict)


#: The window the payment success rate is counted over.
PAYMENT_WINDOW = timedelta(minutes=15)


def success_rate(outcomes: records.Outcomes) -> float:
    """Paid attempts as a share (0..1) of those that ended; NaN when none ended (no figure is
    not a perfect one)."""
    return outcomes.succeeded / outcomes.decided if outcomes.decided else math.nan


async def database_figures(
    session: AsyncSession, settings: Settings
) -> dict[str, tuple[str, float]]:
    """The deployment-wide figures, each read through the domain that owns it."""
    now = utcnow()
    queue = await jobs.backlog(session, now)
    orders_5m = await orders.count_since(session, now - timedelta(minutes=5))
    online = await presence.online_count(
        session, now, timedelta(seconds=settings.terminal_online_seconds)
    )
    paid = await records.outcomes(session, now - PAYMENT_WINDOW)
    return {
        "selfmart_jobs_queue_depth": (
            "Outbox events due and not yet handled, plus long jobs still queued",
            float(queue.depth),
        ),
        "selfmart_jobs_queue_lag_seconds": (
            "How long the oldest due outbox event or queued job has waited",
            queue.lag_seconds,
        ),
        "selfmart_outbox_failed": (
            "Outbox events that failed every attempt",
            float(queue.failed_events),
        ),
        "selfmart_orders_per_minute": (
            "Orders received per minute, averaged over the last 5 minutes",
            orders_5m / 5,
        ),
        "selfmart_terminals_online": (
            "Active terminals seen within terminal_online_seconds",
            float(online),
        ),
        "selfmart_payment_success_rate": (
            "Share (0..1) of payment attempts of the last 15 minutes that ended paid rather "
            "than failed; NaN when none ended",
            success_rate(paid),
        ),
        "selfmart_payment_attempts_ended": (
            "Payment attempts of the last 15 minutes that ended (paid or failed)",
            float(paid.decided),
        ),
    }


class _FiguresCollector(Collector):
    def __init__(self, figures: Figures) -> None:
        self.figures = figures

    def collect(self) -> Any:
        for name, (doc, value) in self.figures.values.items():
            yield GaugeMetricFamily(name, doc, value=value)


class MetricsCache:
    """One per app: the last database figures and a lock so concurrent scrapes query once."""

    def __init__(self) -> None:
        self.figures = Figures(at=float("-inf"))
        self.lock = asyncio.Lock()

    async def current(self, app: FastAPI) -> Figures:
        settings: Settings = app.state.settings
        async with self.lock:
            if time.monotonic() - self.figures.at >= settings.metrics_cache_seconds:
                async with app.state.sessionmaker() as session:
                    values = await database_figures(session, settings)
                self.figures = Figures(at=time.monotonic(), values=values)
        return self.figures


async def exposition(app: FastAPI) -> bytes:
    """The Prometheus text: this process's metrics (every process's, summed, in multiprocess
    mode) and the deployment-wide figures once."""
    cache: MetricsCache = app.state.metrics_cache
    engine = getattr(app.state, "engine", None)
    if engine is not None:  # this process's pool as it is now (requests sample it at most
        record_pool(engine)  # every MetricsMiddleware.POOL_EVERY)
    figures = await cache.current(app)
    figures_registry = CollectorRegistry()
    figures_registry.register(_FiguresCollector(figures))
    if multiprocess():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY  # also holds the process and platform collectors
    return generate_latest(registry) + generate_latest(figures_registry)

"""The process's Prometheus metrics and the middleware that records requests by route template.

With PROMETHEUS_MULTIPROC_DIR set (several worker processes), prometheus-client keeps each
process's values in files in that directory and /metrics sums them on scrape; the directory must
exist and be emptied before the processes start (docs/operations.md).
"""

from __future__ import annotations

import os
import time
from typing import Any

from fastapi.routing import iter_route_contexts
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The label of a request no route matched (so a scan of random paths adds one series, not many).
UNMATCHED = "<unmatched>"

REQUESTS = Counter(
    "selfmart_http_requests_total",
    "HTTP requests answered, by method, route template and status code",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "selfmart_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
ERRORS = Counter(
    "selfmart_http_errors_total",
    "HTTP requests that ended in a server error (5xx or an unhandled exception)",
    ["method", "route"],
)
# Pool figures are per process; in multiprocess mode "livesum" adds up the live processes.
POOL_IN_USE = Gauge(
    "selfmart_db_pool_checked_out",
    "Database connections checked out of the pool",
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "selfmart_db_pool_size",
    "Database connections the pool holds open (checked out or idle)",
    multiprocess_mode="livesum",
)


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def record_pool(engine: AsyncEngine) -> None:
    pool: Any = engine.sync_engine.pool
    # SQLite's and the tests' pools (StaticPool, NullPool) have no counters
    if hasattr(pool, "checkedout") and hasattr(pool, "checkedin"):
        out = pool.checkedout()
        POOL_IN_USE.set(out)
        POOL_SIZE.set(out + pool.checkedin())


class RouteTemplates:
    """The full path template of each route object (routers nest, so a matched route's own
    `path` lacks its prefixes), built once the app's routes are complete."""

    def __init__(self) -> None:
        self._by_route: dict[int, str] | None = None

    def of(self, app: Any, route: Any) -> str:
        if route is None:
            return UNMATCHED
        if self._by_route is None:
            self._by_route = {
                id(ctx.original_route): str(ctx.path or getattr(ctx.original_route, "path", ""))
                for ctx in iter_route_contexts(app.routes)
            }
        return self._by_route.get(id(route)) or str(getattr(route, "path", UNMATCHED))


class MetricsMiddleware:
    """Counts and times every HTTP request under its matched route's path template (never the
    raw path: /api/v1/orders/123 and /124 are one series) and samples the pool's use (at the
    end of a request, at most every POOL_EVERY seconds: two gauges set under their locks and
    the pool's counters read cost ~3-5 µs, on every request of a hot route)."""

    POOL_EVERY = 0.1

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.templates = RouteTemplates()
        #: (method, route, status) -> its request counter and latency histogram: the series
        #: looked up once (prometheus-client's `labels()` checks and locks at every call)
        self._series: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        #: when the pool's use was last sampled (perf_counter), at the end of a request
        self._pool_sampled_at = float("-inf")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def watched_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        finally:
            route = self.templates.of(scope.get("app"), scope.get("route"))
            method = scope.get("method", "GET")
            key = (method, route, str(status))
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = (REQUESTS.labels(*key), LATENCY.labels(method, route))
            series[0].inc()
            series[1].observe(time.perf_counter() - start)
            if status >= 500:
                ERRORS.labels(method, route).inc()
            if start - self._pool_sampled_at >= self.POOL_EVERY:
                self._pool_sampled_at = start
                app_state = getattr(scope.get("app"), "state", None)
                engine = getattr(app_state, "engine", None)
                if engine is not None:
                    record_pool(engine)

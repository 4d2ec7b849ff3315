"""create_app(): routers, middleware, error handlers — nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.routing import iter_route_contexts
from fastapi.telemetry import TelemetryConfig
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import configure_mappers

from selfmart import __version__, apidocs
from selfmart.audit.security import install_denial_log
from selfmart.config import Settings, get_settings
from selfmart.db import make_engine, make_sessionmaker
from selfmart.errors import NotFound, error_responses, install_handlers
from selfmart.iam.dependencies import guard_first
from selfmart.kit import invalidation
from selfmart.kit.logging import configure_logging
from selfmart.kit.ratelimit import RateLimiter
from selfmart.maintenance import service as maintenance
from selfmart.middleware import (
    BodyLimitMiddleware,
    ControlCharacterGuardMiddleware,
    MaintenanceMiddleware,
    RequestContextMiddleware,
)
from selfmart.monitoring import machines
from selfmart.monitoring.metrics import MetricsMiddleware
from selfmart.monitoring.router import router as monitoring_router
from selfmart.monitoring.service import MetricsCache
from selfmart.payments.fastlane import NotifyFastLane
from selfmart.routers import API_ROUTERS, NOTIFY_ROUTERS, TERMINAL_ROUTERS


def _build_route_state(app: FastAPI) -> None:
    """Have FastAPI build every route's dependency and validation state now, before the
    process serves. It does so lazily, all routes at once, on the first request that looks
    the routes up (the metrics' route templates, the callbacks' fast lane): ~1 s of CPU for
    our ~330 routes, which the first requests after each start waited for — platform
    callbacks among them, which the platform gives a few seconds to be answered."""
    for _ in iter_route_contexts(app.routes):
        pass


def _configure_mappers() -> None:
    """Have SQLAlchemy configure the ORM's mappers (every model's relationships and attribute
    instrumentation) now, before the process serves. It does so lazily, on the first ORM query
    of the process — in the running server the maintenance check's, on whatever request comes
    first: ~70 ms of CPU (72 ms measured here) that request, and every one arriving meanwhile,
    waited for, and that `bench_callbacks.py` counted in the first callbacks' CPU."""
    configure_mappers()


_NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(settings: Settings | None = None, engine: AsyncEngine | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    owns_engine = engine is None
    engine = engine or make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from selfmart.jobs import runtime

        _build_route_state(app)
        _configure_mappers()
        await runtime.startup(app)
        app.state.machine_publisher.start()  # with Redis: this machine's figures, shared
        app.state.invalidation.start()  # with Redis: hear the other processes' changes
        try:
            yield
        finally:
            await app.state.invalidation.stop()
            await app.state.machine_publisher.stop()
            await runtime.shutdown(app)
            if owns_engine:
                await engine.dispose()

    app = FastAPI(
        title="selfmart",
        version=__version__,
        description="The back office for chains of unmanned self-service supermarkets.",
        # /api/docs is served by selfmart.apidocs (no CDN, no inline script: the CSP holds)
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
        # any route may meet an oversized body (BodyLimitMiddleware) or an invalid request
        responses=error_responses(413, 422),
        # FastAPI's OpenTelemetry hooks only when asked for (config.Settings.opentelemetry)
        telemetry=None if settings.opentelemetry else _NO_TELEMETRY,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.rate_limiter = RateLimiter(settings)
    app.state.maintenance = maintenance.Cache(
        maintenance.SHARED_CACHE_SECONDS if settings.redis_url else None
    )
    # a change on any process forgets this process's cached copy (selfmart.kit.invalidation);
    # looked up when called: tests give an app a fresh maintenance cache per test
    app.state.invalidation = invalidation.Bus(settings)
    app.state.invalidation.listen(maintenance.INVALIDATION, lambda: app.state.maintenance.forget())

    install_handlers(app)
    install_denial_log(app)
    # innermost: the platform callbacks' fast lane, behind every other middleware
    app.add_middleware(NotifyFastLane)
    app.add_middleware(
        BodyLimitMiddleware,
        limit=settings.max_body_bytes,
        by_path=settings.body_limits(),
    )
    app.add_middleware(MaintenanceMiddleware)
    app.add_middleware(ControlCharacterGuardMiddleware)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            allow_credentials=False,
        )
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(MetricsMiddleware)  # outermost: times and counts every answer
    app.state.metrics_cache = MetricsCache()
    app.state.machine_publisher = machines.Publisher(settings)

    health = APIRouter(tags=["system"])

    @health.get("/api/health", operation_id="health")
    async def health_check() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.include_router(health)
    app.include_router(monitoring_router)
    # Terminal routes first: a request is matched against the routes in order, and the
    # terminals' (the hot path: every order) would otherwise be tried after every console
    # route. The prefixes do not overlap, so the order changes nothing else.
    for router in TERMINAL_ROUTERS:
        app.include_router(router, prefix="/api/terminal/v1")
    for router in NOTIFY_ROUTERS:
        app.include_router(router, prefix="/api")
    # guard_first: every console route checks its caller before it looks any id up.
    for router in API_ROUTERS:
        app.include_router(router, prefix="/api/v1", dependencies=[Depends(guard_first)])

    if settings.sms_sandbox_enabled:
        from selfmart.sandbox import sms as sms_sandbox

        app.include_router(sms_sandbox.router, prefix="/sandbox/sms")
    if settings.payment_sandbox_enabled:
        from selfmart.sandbox import wechatpay as wechatpay_sandbox

        app.include_router(wechatpay_sandbox.router, prefix="/sandbox/wechatpay")
    if settings.payment_sandbox_enabled:
        from selfmart.sandbox import alipay as alipay_sandbox

        app.include_router(alipay_sandbox.router, prefix="/sandbox/alipay")
        from selfmart.sandbox import unionpay as unionpay_sandbox

        app.include_router(unionpay_sandbox.router, prefix="/sandbox/unionpay")

    app.include_router(apidocs.router(app.title, app.openapi_url or "/api/openapi.json"))
    _mount_console(app, settings.static_dir)
    return app


def _mount_console(app: FastAPI, dist: Path) -> None:
    """Serve the built console; unknown non-API paths fall back to index.html (SPA routes)."""

    @app.get("/{path:path}", include_in_schema=False, response_model=None)
    def console(path: str) -> FileResponse | JSONResponse:  # sync: runs in the threadpool
        if path.startswith("api/"):
            raise NotFound(f"No API route {path}")
        root = dist.resolve()
        target = (root / path).resolve()
        if path and target.is_file() and root in target.parents:
            return FileResponse(target)
        index = root / "index.html"
        if index.is_file():
            return FileResponse(index, headers={"cache-control": "no-cache"})
        return JSONResponse(
            {"message": "The console is not built; run `make run` or `make web`."}, 503
        )

"""Helpers shared by tests that are not fixtures."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from selfmart.config import Settings
from selfmart.db import Base


def settings_for(url: str, **overrides: Any) -> Settings:
    defaults: dict[str, Any] = {
        "env": "test",
        "secret_key": "test-secret-key-0123456789abcdef0123456789",
        "static_dir": Path("/nonexistent"),
    }
    return Settings(database_url=url, **{**defaults, **overrides})


@dataclass(frozen=True)
class RouteInfo:
    method: str
    path: str
    dependant: Dependant
    #: Names of the path parameters, in order.
    params: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def api_routes(app: FastAPI) -> list[RouteInfo]:
    """Every API route of `app` (one per method) with its full path and dependencies.

    Since FastAPI 0.137 `include_router` keeps routers as a tree in `app.routes`
    (fastapi/fastapi#15745), so `for r in app.routes` no longer sees any routed endpoint;
    `iter_route_contexts` is how FastAPI itself flattens the tree for the OpenAPI document.
    """
    out: list[RouteInfo] = []
    for ctx in iter_route_contexts(app.routes):
        if not isinstance(ctx.original_route, APIRoute) or not ctx.include_in_schema:
            continue
        path = ctx.path
        assert path is not None
        for method in sorted(ctx.methods or ()):
            out.append(RouteInfo(method, path, ctx.dependant, tuple(ctx.param_convertors)))
    return out


async def fingerprint(session: AsyncSession) -> dict[str, tuple[int, str]]:
    """Per table: row count and a digest of every row, as the test's transaction sees them.
    Equal fingerprints before and after a refused request prove it changed nothing."""
    out: dict[str, tuple[int, str]] = {}
    for table in Base.metadata.sorted_tables:
        rows = (await session.execute(select(table))).all()
        digest = hashlib.sha256("\n".join(sorted(repr(tuple(r)) for r in rows)).encode())
        out[table.name] = (len(rows), digest.hexdigest()[:16])
    return out


@dataclass(frozen=True)
class SeededDemo:
    """The demo database `seed-demo` filled once per run (the `seeded_demo` fixture)."""

    url: str
    #: the settings `seed_demo` ran with: the payment sandboxes keep the demo's trades in a
    #: directory of their own, which no other test resets
    settings: Settings
    #: when seeding finished: the demo's "now" (its terminals were seen moments before)
    seeded_at: datetime


_APPS: dict[tuple[str, int, str], tuple[FastAPI, dict[str, Any]]] = {}


def shared_app(
    db_url: str,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    **overrides: Any,
) -> FastAPI:
    """The app for `db_url` and these settings, built once per test process and handed to each
    test as new: its state as create_app() left it, fresh rate-limit counters, and the test's
    sessionmaker. Building an app per test cost ~0.5 s each: FastAPI (>= 0.137) resolves every
    included route again on an app's first requests."""
    from selfmart.app import create_app
    from selfmart.kit.ratelimit import RateLimiter
    from selfmart.maintenance import service as maintenance

    key = (db_url, id(engine), json.dumps(overrides, sort_keys=True, default=str))
    if key not in _APPS:
        app = create_app(settings_for(db_url, **overrides), engine=engine)
        _APPS[key] = (app, dict(app.state._state))
    app, initial = _APPS[key]
    app.state._state.clear()
    app.state._state.update(initial)
    app.state.rate_limiter = RateLimiter(app.state.settings)
    app.state.maintenance = maintenance.Cache()  # no test sees another's maintenance mode
    app.state.sessionmaker = sessionmaker
    return app


@asynccontextmanager
async def client_with(
    db_url: str,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    ip: str = "203.0.113.9",
    **settings: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    """A client from `ip` against an app built with other settings, on the test's database
    and transaction (no audit guard: for tests of refusals and middleware). Each call builds
    its own app, not `shared_app`: two clients open together stand for two processes."""
    from selfmart.app import create_app

    app = create_app(settings_for(db_url, **settings), engine=engine)
    app.state.sessionmaker = sessionmaker
    transport = httpx.ASGITransport(app=app, client=(ip, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.levelname} {record.name} {text} {record.__dict__}")


@contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Every log record (message, traceback and extra fields) emitted inside the block.

    create_app() replaces the root handlers (pytest's caplog with them), so enter this after
    the app is built."""
    handler = _Collect()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)

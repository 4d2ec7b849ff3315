"""What the PostgreSQL benchmarks share: a scratch database of their own (made, migrated to
the head, dropped afterwards) and the timing loop (the median of repeated runs, in ms)."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.engine import make_url

from selfmart.db import admin_execute as admin
from selfmart.db import make_engine

PG_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


@asynccontextmanager
async def scratch_database(label: str) -> AsyncIterator[str | None]:
    """A new database on the server SELFMART_BENCH_DATABASE_URL names (default the test
    server), migrated to the head; yields its URL, or None (after saying so) when the server
    is not reachable; drops it afterwards."""
    from selfmart.migrate import upgrade_connection

    base_url = os.environ.get("SELFMART_BENCH_DATABASE_URL", PG_DEFAULT)
    name = f"selfmart_bench_{label}_{os.getpid()}"
    try:
        await admin(base_url, f'CREATE DATABASE "{name}"')
    except Exception as exc:  # no server: say so and skip
        print(f"{label}: skipped, PostgreSQL not reachable at {base_url} ({type(exc).__name__})")
        yield None
        return
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    try:
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                await conn.run_sync(upgrade_connection)
                await conn.commit()
        finally:
            await engine.dispose()
        yield url
    finally:
        await admin(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def asyncpg_url(url: str) -> str:
    """The same database as a plain asyncpg DSN (for the raw-SQL baselines)."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, Any]:
    """The median time of `repeat` runs of fn, in ms, and the last run's result."""
    times = []
    result: Any = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = await fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), result

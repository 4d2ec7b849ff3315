"""Test harness: every database test runs on SQLite and, when reachable, on PostgreSQL.

Each backend's schema is built once per run by the Alembic migrations (so the migrations are
tested). Each test runs inside a transaction that is rolled back; the app under test shares
that connection, so a request's commit is a savepoint release.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from selfmart.config import get_settings
from selfmart.db import admin_execute, make_engine
from selfmart.kit.time import utcnow
from selfmart.migrate import upgrade_connection
from selfmart.models import AuditLog

from .support import SeededDemo, shared_app

PG_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
BACKENDS = ["sqlite", "postgresql"]
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


def pg_base_url() -> str:
    return os.environ.get("SELFMART_TEST_DATABASE_URL", PG_DEFAULT)


async def _pg_reachable(url: str) -> str | None:
    engine = make_engine(url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("select 1"))
        return None
    except Exception as exc:  # any failure to connect means "not reachable"
        return f"{type(exc).__name__}: {exc}"
    finally:
        await engine.dispose()


@asynccontextmanager
async def _fresh_database(
    backend: str, tmp_path_factory: pytest.TempPathFactory, label: str
) -> AsyncIterator[str]:
    """A new, migrated database on `backend`, dropped (PostgreSQL) when the block ends."""
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("db") / f"selfmart-{label}.db"
        yield await _migrated(f"sqlite+aiosqlite:///{path}")
        return
    base = pg_base_url()
    problem = await _pg_reachable(base)
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but unreachable at {base}: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {base} ({problem}); ran on SQLite only")
    name = f"selfmart_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    await admin_execute(base, f'CREATE DATABASE "{name}"')
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        yield await _migrated(url)
    finally:
        await admin_execute(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=BACKENDS)
async def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A freshly migrated database per backend, dropped at the end of the run."""
    async with _fresh_database(request.param, tmp_path_factory, "test") as url:
        yield url


async def _migrated(url: str) -> str:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(upgrade_connection)
            await conn.commit()
    finally:
        await engine.dispose()
    return url


def _sqlite_real_transactions(eng: AsyncEngine) -> None:
    """SQLite's driver defers BEGIN until the first write, so a test's outer transaction (and
    its savepoints) would not exist yet when the code under test commits: the commit would be
    real and leak into later tests. SQLAlchemy's documented recipe: let SQLAlchemy emit BEGIN."""

    @event.listens_for(eng.sync_engine, "connect")
    def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(eng.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")


@pytest.fixture(scope="session")
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(db_url)
    yield eng
    await eng.dispose()


@pytest.fixture(scope="session")
async def tx_engine(db_url: str, engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The engine behind each test's rolled-back transaction. On SQLite it is a second engine
    with real BEGINs (below); `engine` keeps the driver's default for tests that commit across
    several connections, where a deferred read-then-write transaction would hit SQLITE_BUSY."""
    if engine.dialect.name != "sqlite":
        yield engine
        return
    eng = make_engine(db_url)
    _sqlite_real_transactions(eng)
    yield eng
    await eng.dispose()


@asynccontextmanager
async def _rolled_back(eng: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction that is rolled back when the block ends."""
    async with eng.connect() as conn:
        trans = await conn.begin()
        try:
            yield conn
        finally:
            if trans.is_active:
                await trans.rollback()


def _savepoint_sessions(conn: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    """Sessions on `conn` whose commits release a savepoint, so the outer rollback undoes them."""
    return async_sessionmaker(
        bind=conn,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
    )


@pytest.fixture
async def connection(tx_engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with _rolled_back(tx_engine) as conn:
        yield conn


@pytest.fixture
def sessionmaker(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    return _savepoint_sessions(connection)


@pytest.fixture
async def session(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as s:
        yield s


@pytest.fixture(scope="session")
async def seeded_demo(
    db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[SeededDemo]:
    """`selfmart seed-demo` run once per worker and backend, into a database of its own.

    Seeding takes 15-50 s; tests that read the demo share this one (`demo_session`) instead
    of seeding again. A fresh database also makes the demo the same on every run: its random
    history is keyed by row ids, which on PostgreSQL (sequences ignore rollbacks) would depend
    on every test that ran before in a shared database."""
    from selfmart.demo import seed_demo

    backend = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    sandbox_dir = tmp_path_factory.mktemp(f"demo-sandbox-{backend}")
    async with _fresh_database(backend, tmp_path_factory, "demo") as url:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("SELFMART_PAYMENT_SANDBOX_DIR", str(sandbox_dir))
            get_settings.cache_clear()
            settings = get_settings()
            eng = make_engine(url)
            try:
                async with async_sessionmaker(eng, expire_on_commit=False)() as s:
                    await seed_demo(s)
                    await s.commit()
            finally:
                await eng.dispose()
            seeded_at = utcnow()
        get_settings.cache_clear()
        yield SeededDemo(url, settings, seeded_at)


@pytest.fixture(scope="session")
async def demo_engine(seeded_demo: SeededDemo) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(seeded_demo.url)
    if eng.dialect.name == "sqlite":
        _sqlite_real_transactions(eng)
    yield eng
    await eng.dispose()


@pytest.fixture
async def demo_session(demo_engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session on the seeded demo (as `seed-demo` left it), in a transaction rolled back
    after the test: what one test does to the demo, the next does not see."""
    async with _rolled_back(demo_engine) as conn, _savepoint_sessions(conn)() as s:
        yield s


@pytest.fixture
def backend(db_url: str) -> str:
    return "sqlite" if db_url.startswith("sqlite") else "postgresql"


@pytest.fixture
def app(db_url: str, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]) -> Any:
    return shared_app(db_url, engine, sessionmaker)


@pytest.fixture
async def jobs(app: Any, sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[Any]:
    """The job runtime on the test's connection, as `make run` has it but inline: after a
    request commits, its outbox events, notifications and started jobs run to completion
    before the response returns. Without this fixture nothing is dispatched (events wait
    for a sweep), which is what most tests want."""
    from selfmart.jobs import runtime

    async with runtime.running(app.state.settings, sessionmaker) as rt:
        yield rt


def audit_exempt(method: str, path: str) -> bool:
    from selfmart.audit import AUDIT_EXEMPT_PATHS

    return any(method == m and path.startswith(p) for m, p in AUDIT_EXEMPT_PATHS)


@pytest.fixture
async def client(
    app: Any, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client against the real app. A mutating request that succeeds without writing an
    audit entry fails the test that made it (the audit guard)."""

    async def audit_guard(response: httpx.Response) -> None:
        req = response.request
        if req.method not in MUTATING or not response.is_success:
            return
        if audit_exempt(req.method, req.url.path):
            return
        rid = response.headers.get("x-request-id")
        async with sessionmaker() as s:
            n = await s.scalar(select(func.count()).where(AuditLog.request_id == rid))
        if not n:
            raise AssertionError(
                f"{req.method} {req.url.path} succeeded ({response.status_code}) "
                "but wrote no audit entry"
            )

    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        event_hooks={"response": [audit_guard]},
        headers={"user-agent": "selfmart-tests"},
    ) as c:
        yield c


TEST_REDIS_URL = os.environ.get("SELFMART_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def shared_redis() -> AsyncIterator[tuple[str, str]]:
    """Redis for a test that shares figures or messages through it: its URL and a namespace
    of its own (used as `jobs_queue`, the prefix of every key and channel), whose keys are
    deleted afterwards. Skipped without Redis, except under CI=true."""
    from redis.asyncio import Redis

    client = Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except Exception as exc:  # any failure to reach it
        await client.aclose()  # type: ignore[attr-defined]  # (types-redis lags redis 5+)
        if IN_CI:
            pytest.fail(f"Redis is required in CI but unreachable at {TEST_REDIS_URL}: {exc}")
        pytest.skip(f"Redis not reachable at {TEST_REDIS_URL} ({exc}); needs Redis")
    namespace = f"selfmart-test:{uuid.uuid4().hex[:10]}"
    try:
        yield TEST_REDIS_URL, namespace
    finally:
        keys = [k async for k in client.scan_iter(match=namespace + ":*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()  # type: ignore[attr-defined]

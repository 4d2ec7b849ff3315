"""Database engine, session factory and the declarative Base shared by every model."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, Select, Table, event, text
from sqlalchemy import exc as exc_module
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from selfmart.kit.time import UTC

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, `process_bind_param` and SQLite's DATETIME text in one step: the same
        text (`YYYY-MM-DD HH:MM:SS.ffffff`, naive UTC) as SQLAlchemy's `%`-format of a dict
        per value, at about half its cost (a reconciled bill binds one per line): the UTC
        time's ISO text less its `+00:00`, without a naive copy of it made first."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetime given to a UTC column")
            return value.astimezone(UTC).isoformat(" ", "microseconds")[:-6]

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


#: How long a SQLite writer waits for the one writer lock before the request fails with
#: 503 database_busy (errors.py). 5 s was exceeded on a loaded 2-core machine under a storm
#: of racing payments; a request waiting longer is still better than one refused.
SQLITE_BUSY_TIMEOUT_MS = 15_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_MS)}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _locked_table(statement: object) -> Table | None:
    """The first table a `SELECT ... FOR UPDATE` reads, or None for any other statement."""
    if not isinstance(statement, Select) or statement._for_update_arg is None:
        return None
    for source in statement.get_final_froms():
        while not isinstance(source, Table) and hasattr(source, "left"):
            source = source.left  # a join: its first table
        if isinstance(source, Table):
            return source
    return None


def _sqlite_row_locks(engine: AsyncEngine) -> None:
    """`SELECT ... FOR UPDATE` locks on SQLite too: there it takes the database's one writer lock.

    SQLite has no row locks, and its driver begins a transaction only at the first write, so a
    locking read would otherwise read outside any transaction: two requests could both read a
    row, then write one after the other from what they read (a lost update, a state moved twice).
    Before such a read, a write that changes nothing (`WHERE 0`) begins the transaction and takes
    the writer lock; a racing request waits for it (busy_timeout) and then reads what this one
    committed. Every `with_for_update()` in the code thus means the same on both backends."""

    @event.listens_for(engine.sync_engine, "before_execute")
    def _lock(conn: Any, statement: Any, *_args: Any) -> None:
        table = _locked_table(statement)
        if table is not None:
            conn.exec_driver_sql(f'UPDATE "{table.name}" SET rowid = rowid WHERE 0')


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        _sqlite_row_locks(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    # No JIT on our connections: every statement here is short, and PostgreSQL prices JIT by
    # the planner's row estimates, which for the dashboards' joins with a parameter array
    # (windows, live days) are far too high; it then compiled such a statement on every
    # request (280 ms of a 420 ms category-members count at 10M order lines, for ~100 ms of
    # work). Set per connection at connect time: no extra round trip.
    connect_args = dict(kwargs.pop("connect_args", {}))
    server_settings = {"jit": "off", **connect_args.get("server_settings", {})}
    connect_args["server_settings"] = server_settings
    engine = create_async_engine(url, connect_args=connect_args, **kwargs)
    _refused_connections_are_database_errors(engine)
    if not kwargs.get("pool_pre_ping"):
        _ping_idle_connections(engine)
    return engine


def _refused_connections_are_database_errors(engine: AsyncEngine) -> None:
    """asyncpg raises the socket's own error (refused, unreachable, timed out) when it cannot
    connect, which SQLAlchemy passes on as it is; raise it as the driver's OperationalError, so
    that it is handled like any lost connection (a 503 the client may retry, errors.py) and not
    as an unexpected error."""
    dialect = engine.sync_engine.dialect

    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except OSError as exc:
            dbapi = dialect.loaded_dbapi
            raise dbapi.OperationalError(f"cannot connect to the database: {exc}", exc) from exc


#: A pooled connection idle longer than this is tested before use (see below).
PING_AFTER_IDLE_SECONDS = 10.0


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """Test a pooled connection before use only when it has sat idle for a while.

    `pool_pre_ping` tests every checkout, which for asyncpg is three round trips (begin, ping,
    rollback) on every request, the hottest path included. A connection checked in moments
    ago is alive; one that sat idle may have been cut (a restarted server, a firewall), so it
    is pinged and, if dead, replaced before anyone sees it. A server restart while the pool
    is busy fails at most the requests already on their way; SQLAlchemy then invalidates the
    whole pool (its disconnect handling), and the terminal protocol retries such requests.
    """
    dialect = engine.sync_engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def _checkin(dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("checked_in_at")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return  # new, or in use moments ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise exc_module.DisconnectionError() from exc  # the pool retries with a new one


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction: commit on success, roll back on any error."""
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


#: 64-bit ids on PostgreSQL; SQLite only autoincrements INTEGER PRIMARY KEY.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")
#: JSON documents: JSONB on PostgreSQL.
JSONDoc = JSON().with_variant(JSONB(), "postgresql")


async def admin_execute(url: str, sql: str) -> None:
    """Run one statement outside a transaction on its own connection (CREATE / DROP DATABASE:
    tests and benchmarks make scratch databases with it)."""
    engine = make_engine(url, isolation_level="AUTOCOMMIT", pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()

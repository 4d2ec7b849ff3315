"""Hot-path statements run on the session's own asyncpg connection (CONVENTIONS.md §13).

SQLAlchemy spends about 100 µs of CPU on each execution on top of the driver's ~25 µs
(compiled-cache look-up, parameter processing, cursor and result wrapping). Terminal intake
runs five statements per order, so that overhead is a large part of what an order costs the
server. A `HotStatement` is a Core (or `text()`) statement compiled once for the session's
PostgreSQL dialect, with its parameters' bind processors worked out once; `fetch` then runs it
straight on the asyncpg connection beneath the session, inside the session's transaction.

On another backend (SQLite, where `other` may give a statement of its own) it runs through
SQLAlchemy like any statement. When the session's transaction has not yet begun at the driver
(SQLAlchemy's asyncpg adapter begins it lazily, on the first statement), it runs through that
DBAPI adapter, which begins it: a hot statement never runs outside the request's transaction.

Results are positional rows (unpack them, or index them) of the driver's values: result
processors are not applied, so a hot statement should return plain ids, numbers and text.
Driver errors are raised as SQLAlchemy's `DBAPIError` family with the driver's error as
`.orig`, as a statement run through SQLAlchemy would raise them; a lost connection is
invalidated (the pool replaces it) and raised as an `OperationalError` with
`connection_invalidated` set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import CursorResult, Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable, sqltypes
from sqlalchemy.types import TypeEngine

try:  # asyncpg is installed with selfmart; the guard keeps SQLite-only tools importable
    import asyncpg  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover
    asyncpg = None

Processor = Callable[[Any], Any] | None


class HotStatement:
    """A statement compiled once for PostgreSQL and run on the driver connection.

    `other` is the statement to run on any other backend (e.g. with an expanding IN where
    PostgreSQL takes `= ANY(array)`); by default the same statement."""

    __slots__ = ("_compiled_for", "_plan", "_sql", "other", "stmt")

    def __init__(self, stmt: Executable, *, other: Executable | None = None) -> None:
        self.stmt = stmt
        self.other = other if other is not None else stmt
        self._compiled_for: Dialect | None = None
        self._sql = ""
        self._plan: list[tuple[str, Processor]] = []

    def compiled(self, dialect: Dialect) -> tuple[str, list[tuple[str, Processor]]]:
        """The SQL text and, per positional parameter, its name and bind processor."""
        if self._compiled_for is not dialect:
            compiled = self.stmt.compile(dialect=dialect)  # type: ignore[attr-defined]
            binds = compiled.binds
            plan: list[tuple[str, Processor]] = []
            for name in compiled.positiontup or ():
                plan.append((name, _processor(binds[name].type, dialect)))
            self._sql, self._plan = compiled.string, plan
            self._compiled_for = dialect
        return self._sql, self._plan

    def arguments(self, dialect: Dialect, params: Mapping[str, Any]) -> list[Any]:
        _, plan = self.compiled(dialect)
        return [
            params[name] if proc is None or params[name] is None else proc(params[name])
            for name, proc in plan
        ]


#: session.info key: (the session's root transaction, its driver connection).
_CACHED = "hotsql.driver"


def _processor(type_: TypeEngine[Any], dialect: Dialect) -> Processor:
    """The bind processor of a parameter's type for this dialect, or None when the driver takes
    the value as it is. An array whose items need no processing goes to asyncpg as it is
    (SQLAlchemy's ARRAY processor would copy it item by item)."""
    impl = type_.dialect_impl(dialect)
    if isinstance(impl, sqltypes.ARRAY):
        item = impl.item_type.dialect_impl(dialect)
        if item.bind_processor(dialect) is None:
            return None
    return impl.bind_processor(dialect)


async def _driver(session: AsyncSession) -> Any | None:
    """The asyncpg connection beneath the session, if it is inside the session's transaction;
    None on another backend or before the transaction has begun at the driver. Looked up once
    per transaction (a session keeps one connection for the whole of a transaction)."""
    if asyncpg is None or session.get_bind().dialect.driver != "asyncpg":
        return None
    trans = session.sync_session.get_transaction()
    cached = session.info.get(_CACHED)
    if trans is not None and cached is not None and cached[0] is trans:
        driver = cached[1]
    else:
        conn = await session.connection()
        driver = (await conn.get_raw_connection()).driver_connection
        session.info[_CACHED] = (session.sync_session.get_transaction(), driver)
    if driver is None or not driver.is_in_transaction():
        return None
    return driver


#: SQLSTATE classes and codes that mean the connection is gone (08: connection exception;
#: 57P01-57P03: the server is shutting down or cannot take connections).
_GONE = ("08", "57P01", "57P02", "57P03")


def _translate(exc: Exception, sql: str, args: Sequence[Any]) -> tuple[sa_exc.DBAPIError, bool]:
    """The SQLAlchemy error for a driver error, and whether the connection is lost."""
    sqlstate = str(getattr(exc, "sqlstate", "") or "")
    if not isinstance(exc, asyncpg.PostgresError) or sqlstate.startswith(_GONE):
        return sa_exc.OperationalError(sql, args, exc, connection_invalidated=True), True
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return sa_exc.IntegrityError(sql, args, exc), False
    return sa_exc.DBAPIError(sql, args, exc), False


def _dbapi_fetch(sync_conn: Any, sql: str, args: Sequence[Any]) -> list[Any]:
    """Run on the DBAPI connection SQLAlchemy holds (its asyncpg adapter), which begins the
    transaction at the driver the way SQLAlchemy's own statements do."""
    cursor = sync_conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(sql, args)
        return list(cursor.fetchall()) if cursor.description else []
    finally:
        cursor.close()


async def fetch(
    session: AsyncSession, hot: HotStatement, params: Mapping[str, Any]
) -> Sequence[Sequence[Any]]:
    """Run `hot` with `params` in the session's transaction; its rows, positionally."""
    dialect = session.get_bind().dialect
    if asyncpg is None or dialect.driver != "asyncpg":
        result = cast(CursorResult[Any], await session.execute(hot.other, dict(params)))
        return result.all() if result.returns_rows else []
    sql, _ = hot.compiled(dialect)
    try:
        args = hot.arguments(dialect, params)
    except Exception as exc:  # a bind processor refused a value, as SQLAlchemy reports it
        raise sa_exc.StatementError(str(exc), sql, dict(params), exc) from exc
    driver = await _driver(session)
    if driver is not None:
        try:
            rows: Sequence[Sequence[Any]] = await driver.fetch(sql, *args)
        except (
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,
            OSError,
        ) as exc:
            error, lost = _translate(exc, sql, args)
            if lost:
                # As SQLAlchemy does for a disconnect it meets: the pool drops this connection
                # and the session's rollback does not touch it again.
                await (await session.connection()).invalidate(exc)
            raise error from exc
        return rows
    # The transaction has not begun at the driver yet (the request's first statement): through
    # the DBAPI adapter, which begins it, still without SQLAlchemy's statement machinery.
    conn = await session.connection()
    dbapi_error = dialect.loaded_dbapi.Error
    try:
        return await conn.run_sync(_dbapi_fetch, sql, args)
    except dbapi_error as exc:
        lost = dialect.is_disconnect(exc, None, None)
        if lost:
            await conn.invalidate(exc)
        raise sa_exc.DBAPIError.instance(
            sql, args, exc, dbapi_error, connection_invalidated=lost, dialect=dialect
        ) from exc


async def fetch_alone(
    session: AsyncSession, hot: HotStatement, params: Mapping[str, Any]
) -> Sequence[Sequence[Any]]:
    """Run `hot` as the request's whole transaction: for a request whose one write is this one
    statement (a statement is atomic on its own), when nothing has begun the session's
    transaction at the driver yet, it runs alone on the driver connection — one round trip
    instead of three (BEGIN, the statement, COMMIT); the session's commit then has nothing to
    do. Once the transaction has begun (or on another backend) it runs inside it, as `fetch`.

    The caller must write nothing else in the request after it, except on a path where the
    statement changed nothing."""
    dialect = session.get_bind().dialect
    if asyncpg is None or dialect.driver != "asyncpg":
        return await fetch(session, hot, params)
    conn = await session.connection()
    driver = (await conn.get_raw_connection()).driver_connection
    if driver is None or driver.is_in_transaction():
        return await fetch(session, hot, params)
    sql, _ = hot.compiled(dialect)
    try:
        args = hot.arguments(dialect, params)
    except Exception as exc:  # a bind processor refused a value, as SQLAlchemy reports it
        raise sa_exc.StatementError(str(exc), sql, dict(params), exc) from exc
    try:
        rows: Sequence[Sequence[Any]] = await driver.fetch(sql, *args)
    except (
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
        OSError,
    ) as exc:
        error, lost = _translate(exc, sql, args)
        if lost:
            await conn.invalidate(exc)
        raise error from exc
    return rows

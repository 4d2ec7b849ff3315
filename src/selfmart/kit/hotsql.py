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

`fetch_plain` is `fetch` that on SQLite too runs on the driver (the aiosqlite connection beneath
the session), for reads of thousands of plain rows (a bill chunk's look-ups).

`insert_rows` is the bulk counterpart (an import's 50,000 products): many rows in one
statement, what every row shares processed once, on both backends.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import repeat
from typing import Any, NoReturn, cast

from sqlalchemy import Table, bindparam, func, insert, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import CursorResult, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
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

    __slots__ = ("_compiled_for", "_other", "_plan", "_sql", "other", "stmt")

    def __init__(self, stmt: Executable, *, other: Executable | None = None) -> None:
        self.stmt = stmt
        self.other = other if other is not None else stmt
        self._compiled_for: Dialect | None = None
        self._sql = ""
        self._plan: list[tuple[str, Processor]] = []
        self._other: HotStatement | None = None

    def for_other(self) -> HotStatement:
        """`other` as a hot statement of its own (compiled once for another backend)."""
        if self._other is None:
            self._other = self if self.other is self.stmt else HotStatement(self.other)
        return self._other

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


async def driver_of(session: AsyncSession) -> Any | None:
    """The asyncpg connection beneath the session (its transaction begun at the driver or
    not); None on another backend. Looked up once per session transaction (a session keeps one
    connection for the whole of a transaction): a hot path's batches on one session (the
    callbacks' group commit) do not each go through the session for it."""
    if asyncpg is None or session.get_bind().dialect.driver != "asyncpg":
        return None
    trans = session.sync_session.get_transaction()
    cached = session.info.get(_CACHED)
    if trans is not None and cached is not None and cached[0] is trans:
        return cached[1]
    conn = await session.connection()
    driver = (await conn.get_raw_connection()).driver_connection
    session.info[_CACHED] = (session.sync_session.get_transaction(), driver)
    return driver


async def _driver(session: AsyncSession) -> Any | None:
    """The asyncpg connection beneath the session, if it is inside the session's transaction;
    None on another backend or before the transaction has begun at the driver."""
    driver = await driver_of(session)
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


#: What the driver raises when a statement or the connection fails.
_DRIVER_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)


async def _raise_translated(
    exc: Exception, sql: str, args: Sequence[Any], conn: AsyncConnection
) -> NoReturn:
    """Raise a driver error as SQLAlchemy would; a lost connection is invalidated first, as
    SQLAlchemy does for a disconnect it meets (the pool drops it and the session's rollback
    does not touch it again)."""
    error, lost = _translate(exc, sql, args)
    if lost:
        await conn.invalidate(exc)
    raise error from exc


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
        except _DRIVER_ERRORS as exc:
            await _raise_translated(exc, sql, args, await session.connection())
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


async def fetch_plain(
    session: AsyncSession, hot: HotStatement, params: Mapping[str, Any]
) -> Sequence[Sequence[Any]]:
    """`fetch`, on SQLite too without SQLAlchemy's statement and row machinery: `hot.other`
    compiled once and run on the session's own aiosqlite connection (in its transaction, as
    SQLAlchemy's own statements run there), its rows the driver's tuples, no result processor
    applied (plain ids, numbers and text only, as on PostgreSQL). Reading 5,000 rows, the
    Row objects and the cursor wrapping cost about what SQLite's own work does."""
    dialect = session.get_bind().dialect
    if dialect.driver != "aiosqlite":
        return await fetch(session, hot, params)
    other = hot.for_other()
    sql, _ = other.compiled(dialect)
    args = other.arguments(dialect, params)
    conn = await session.connection()
    driver: Any = (await conn.get_raw_connection()).driver_connection
    try:
        rows = await driver.execute_fetchall(sql, args)
    except sqlite3.Error as exc:
        raise sa_exc.DBAPIError.instance(sql, args, exc, sqlite3.Error, dialect=dialect) from exc
    return cast(Sequence[Sequence[Any]], rows)


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
    driver = await driver_of(session)
    if driver is None or driver.is_in_transaction():
        return await fetch(session, hot, params)
    sql, _ = hot.compiled(dialect)
    try:
        args = hot.arguments(dialect, params)
    except Exception as exc:  # a bind processor refused a value, as SQLAlchemy reports it
        raise sa_exc.StatementError(str(exc), sql, dict(params), exc) from exc
    try:
        rows: Sequence[Sequence[Any]] = await driver.fetch(sql, *args)
    except _DRIVER_ERRORS as exc:
        await _raise_translated(exc, sql, args, await session.connection())
    return rows


# --- many rows at once ----------------------------------------------------------------------


async def _copy(
    session: AsyncSession,
    driver: Any,
    table: Table,
    shared: Mapping[str, Any],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """`rows` (with the `shared` values) by COPY, every value processed as SQLAlchemy would
    process it for the driver (a JSON document serialised; the driver encodes the rest). A
    column every row leaves NULL is left out of the COPY, which gives it NULL all the same
    when it has no server default (a reconciled bill's matched lines leave nine such)."""
    dialect = session.get_bind().dialect
    shared = {
        c: v for c, v in shared.items() if v is not None or table.c[c].server_default is not None
    }
    head = tuple(
        v if v is None or (proc := _processor(table.c[c].type, dialect)) is None else proc(v)
        for c, v in shared.items()
    )
    procs = [_processor(table.c[c].type, dialect) for c in columns]
    if any(p is not None for p in procs):
        cols: list[Sequence[Any]] = list(zip(*rows, strict=True))
        for i, proc in enumerate(procs):
            if proc is not None:
                cols[i] = [None if v is None else proc(v) for v in cols[i]]
        rows = list(zip(*cols, strict=True))
    records = [(*head, *row) for row in rows] if head else rows
    names = [*shared, *columns]
    try:
        await driver.copy_records_to_table(
            table.name, records=records, columns=names, schema_name=table.schema
        )
    except _DRIVER_ERRORS as exc:
        sql = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
        await _raise_translated(exc, sql, [], await session.connection())


class _Bulk:
    """The compiled pieces of one `insert_rows` shape for one dialect."""

    __slots__ = ("columns", "hot", "shared", "table", "varying")

    def __init__(
        self,
        hot: HotStatement | None,
        table: str = "",
        shared: Sequence[tuple[str, Processor]] = (),
        varying: Sequence[Processor] = (),
        columns: Sequence[str] = (),
    ) -> None:
        self.hot, self.table, self.shared, self.varying = hot, table, shared, varying
        #: the quoted names of the shared columns, then of the varying ones (SQLite)
        self.columns = columns


#: (table, shared columns, varying columns, returning ids, dialect name) -> compiled shape
_BULK: dict[tuple[str, tuple[str, ...], tuple[str, ...], bool, str], _Bulk] = {}


def _bulk(
    table: Table, shared: tuple[str, ...], columns: tuple[str, ...], ids: bool, dialect: Dialect
) -> _Bulk:
    key = (table.fullname, shared, columns, ids, dialect.name)
    found = _BULK.get(key)
    if found is not None:
        return found
    # A Core INSERT fills a missing column's Python-side default; this one would not.
    missing = [
        c.name
        for c in table.columns
        if c.default is not None and c.name not in shared and c.name not in columns
    ]
    if missing:
        raise ValueError(f"insert_rows into {table.name} needs a value for {missing}")
    if dialect.name == "postgresql":
        # One statement: the varying columns as arrays through unnest(), in the rows' order.
        rows = (
            func.unnest(
                *(bindparam(f"c_{c}", type_=postgresql.ARRAY(table.c[c].type)) for c in columns)
            )
            .table_valued(*columns, with_ordinality="ord")
            .render_derived(name="u")
        )
        source = select(
            *(bindparam(f"s_{c}", type_=table.c[c].type) for c in shared),
            *(rows.c[c] for c in columns),
        ).order_by(rows.c.ord)
        stmt = insert(table).from_select([*shared, *columns], source)
        if ids:
            stmt = stmt.returning(table.c.id)
        found = _Bulk(HotStatement(stmt))
    else:
        # One executemany of ready tuples; its statement is written per call (`_sqlite_sql`),
        # since a shared value goes into it as a literal.
        quote = dialect.identifier_preparer.quote
        procs = {c: _processor(table.c[c].type, dialect) for c in (*shared, *columns)}
        found = _Bulk(
            None,
            dialect.identifier_preparer.format_table(table),
            [(c, procs[c]) for c in shared],
            [procs[c] for c in columns],
            [quote(c) for c in (*shared, *columns)],
        )
    _BULK[key] = found
    return found


#: the integers SQLite holds as integers (a larger one written out would be read as a real)
_SQLITE_INT = (-(2**63), 2**63 - 1)


def _sqlite_literal(value: Any) -> str | None:
    """`value` (as processed for the driver) written as a SQLite literal, or None when it is
    to be bound: only NULL, an integer SQLite holds and text without a NUL are written out (a
    float's text, a bool, bytes or anything else are bound, as they would have been)."""
    if value is None:
        return "NULL"
    kind = type(value)
    if kind is int and _SQLITE_INT[0] <= value <= _SQLITE_INT[1]:
        return str(value)
    if kind is str and "\x00" not in value:
        text: str = value
        return "'" + text.replace("'", "''") + "'"
    return None


async def insert_rows(
    session: AsyncSession,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    shared: Mapping[str, Any] | None = None,
    ids: bool = False,
    copy: bool = False,
) -> list[int]:
    """Insert `rows` (one value per name in `columns`, in that order) into `table`, with the
    `shared` values in every row, in the session's transaction; with `ids`, the new rows'
    integer `id`s in the order of `rows` (otherwise []).

    For bulk work (an import's 50,000 products), where SQLAlchemy's executemany costs more than
    the rows: a shared value is processed by its type once, not once per row, and no row is
    turned into a dict and back. Every value is processed as SQLAlchemy would process it.

    PostgreSQL: one statement, the rows as arrays through unnest() run on the driver connection
    as `fetch` runs; the ids come back by RETURNING from an INSERT ... SELECT ordered by the
    rows' position, which draws the sequence in that order (what SQLAlchemy's own
    `sort_by_parameter_order` relies on there). SQLite: one executemany through the
    connection; the ids are the n largest, since SQLite gives a new row the largest id plus
    one and the write lock the first row took keeps every other writer out until commit.

    With `copy` (and not `ids`), PostgreSQL takes the rows by COPY on the driver connection,
    inside the session's transaction: for a bill's 100,000 lines, a fifth of the client's CPU
    of the unnest() statement (whose arrays asyncpg checks item by item) and less of the
    server's. Before the transaction has begun at the driver it is the statement, as above."""
    if not rows:
        return []
    shared = shared or {}
    dialect = session.get_bind().dialect
    shape = _bulk(table, tuple(shared), tuple(columns), ids, dialect)
    if copy and not ids and shape.hot is not None:
        driver = await _driver(session)
        if driver is not None:
            await _copy(session, driver, table, shared, columns, rows)
            return []
    if shape.hot is not None:
        params: dict[str, Any] = {f"s_{c}": v for c, v in shared.items()}
        for c, values in zip(columns, zip(*rows, strict=True), strict=True):
            params[f"c_{c}"] = list(values)
        found = await fetch(session, shape.hot, params)
        return sorted(int(r[0]) for r in found) if ids else []
    head = [
        v if proc is None or v is None else proc(v)
        for (_, proc), v in zip(shape.shared, shared.values(), strict=True)
    ]
    # Column by column: a JSON document is serialised, an id is left as it is; then the rows
    # are put together in one zip of the columns (no Python per row beyond a processed
    # column's values). A shared value that can be written as SQL (NULL, an integer, text) is
    # written into the statement once rather than bound in every row: binding is most of
    # what SQLite's executemany costs per row beyond the row's own insert.
    n = len(rows)
    placeholders: list[str] = []
    cols: list[Iterable[Any]] = []
    for v in head:
        literal = _sqlite_literal(v)
        placeholders.append("?" if literal is None else literal)
        if literal is None:
            cols.append(repeat(v, n))
    for proc, column in zip(shape.varying, zip(*rows, strict=True), strict=True):
        placeholders.append("?")
        cols.append(column if proc is None else [None if v is None else proc(v) for v in column])
    sql = (
        f"INSERT INTO {shape.table} ({', '.join(shape.columns)}) VALUES ({', '.join(placeholders)})"
    )
    ready = list(zip(*cols, strict=True)) if cols else [()] * n
    conn = await session.connection()
    await conn.exec_driver_sql(sql, ready)
    if not ids:
        return []
    last = select(table.c.id).order_by(table.c.id.desc()).limit(len(rows))
    return sorted(int(i) for i in (await conn.scalars(last)).all())

"""Dumping and restoring the database: SQLite through its online backup API, PostgreSQL with
`pg_dump --format=custom` / `pg_restore`. Plain blocking functions (callers run them in a
thread) plus the async reads the manifest needs (row counts, migration head)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from selfmart.backup.exceptions import ArchiveInvalid, BackupFailed
from selfmart.db import Base, make_engine
from selfmart.migrate import alembic_config

SQLITE_FILE = "database/selfmart.sqlite3"
PG_FILE = "database/selfmart.pgdump"


def dialect_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupFailed("an in-memory SQLite database cannot be backed up")
    return Path(database)


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The URL as pg_dump reads it (no driver name, no password on the command line) and the
    environment carrying the password."""
    u = make_url(url)
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    query = dict(u.query)
    ssl = query.pop("ssl", None)
    if isinstance(ssl, str):
        query["sslmode"] = ssl
    u = u.set(drivername="postgresql", password=None, query=query)
    return u.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupFailed(
            f"{name} was not found on PATH: install the PostgreSQL client tools "
            f"(Debian: apt install postgresql-client) of the server's major version or newer"
        )
    return path


def _killed(returncode: int) -> str:
    """What a negative return code means: the signal that killed the tool, in words."""
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        return f"killed by signal {-returncode}"
    if name == "SIGXFSZ":  # pg_dump ran past the process's file size limit
        return "killed by SIGXFSZ: the file size limit (ulimit -f) was exceeded"
    return f"killed by {name}"


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode < 0:
        said = done.stderr.strip()[-800:]
        raise BackupFailed(f"{what} was {_killed(done.returncode)}" + (f": {said}" if said else ""))
    if done.returncode != 0:
        raise BackupFailed(f"{what} failed ({done.returncode}): {done.stderr.strip()[-800:]}")


def dump(url: str, staging: Path) -> str:
    """Write the database into `staging`; returns the archive path it was written under."""
    if dialect_of(url) == "sqlite":
        target = staging / SQLITE_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        source = sqlite3.connect(f"file:{sqlite_path(url)}?mode=ro", uri=True)
        try:
            copy = sqlite3.connect(target)
            try:
                source.backup(copy)  # a consistent copy while others keep writing
            finally:
                copy.close()
        finally:
            source.close()
        return SQLITE_FILE
    pg_dump = _tool("pg_dump")  # before anything is written
    target = staging / PG_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    dsn, env = _libpq(url)
    _run(
        [
            pg_dump,
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            f"--file={target}",
            f"--dbname={dsn}",
        ],
        env,
        "pg_dump",
    )
    return PG_FILE


def check_tools(url: str) -> None:
    """Raise BackupFailed naming the missing tool before a restore touches anything."""
    if dialect_of(url) == "postgresql":
        _tool("pg_restore")


def restore(url: str, dumped: Path) -> None:
    """Replace the database's contents with the dump."""
    if dialect_of(url) == "sqlite":
        source = sqlite3.connect(f"file:{dumped}?mode=ro", uri=True)
        try:
            target = sqlite3.connect(sqlite_path(url))
            try:
                source.backup(target)  # page by page under the target's write lock
            finally:
                target.close()
        finally:
            source.close()
        return
    dsn, env = _libpq(url)
    _run(
        [
            _tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={dsn}",
            str(dumped),
        ],
        env,
        "pg_restore",
    )


async def _read(conn: AsyncConnection) -> tuple[str | None, dict[str, int]]:
    existing = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    head = None
    if "alembic_version" in existing:
        head = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    counts: dict[str, int] = {}
    for table in Base.metadata.sorted_tables:
        if table.name in existing:
            counts[table.name] = int(
                await conn.scalar(select(func.count()).select_from(table)) or 0
            )
    return head, counts


async def state(url: str) -> tuple[str | None, dict[str, int]]:
    """The database's migration head and each table's row count."""
    engine = (
        make_engine(url, pool_size=1, max_overflow=0)
        if not url.startswith("sqlite")
        else (make_engine(url))
    )
    try:
        async with engine.connect() as conn:
            return await _read(conn)
    finally:
        await engine.dispose()


def code_heads() -> list[str]:
    return list(ScriptDirectory.from_config(alembic_config()).get_heads())


def check_head(head: str | None) -> None:
    """The archive's migration head must be one this code knows (equal to or older than its
    head): an archive from a newer selfmart cannot be restored by this one."""
    if not head:
        raise ArchiveInvalid("the archive's manifest names no migration head")
    script = ScriptDirectory.from_config(alembic_config())
    try:
        known = script.get_revision(head)
    except Exception as exc:  # alembic raises several kinds for an unknown id
        raise ArchiveInvalid(
            f"the archive's migration head {head} is unknown to this selfmart "
            f"(made by a newer version?); upgrade selfmart first"
        ) from exc
    if known is None:
        raise ArchiveInvalid(f"the archive's migration head {head} is unknown to this selfmart")

"""Maintenance mode: while it is on, every write through the API is refused with 503
`maintenance` (reads still work), except signing in and out, turning it off, payment
platforms' callbacks (money already taken must be recorded) and terminal heartbeats. Terminals
queue their orders offline and resend them later; the console shows a banner.

The flag lives in the database (`system_flags`), so every API process on every machine sees
it. Each process keeps it in a `Cache`: a change forgets it on every process at once through
`selfmart.kit.invalidation` (Redis pub/sub when `redis_url` is set), and a process re-reads it
anyway every `CACHE_SECONDS` (`SHARED_CACHE_SECONDS` with Redis, where the announcement is the
way and the re-read only a last resort)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart import __version__
from selfmart.audit import service as audit
from selfmart.config import Settings
from selfmart.iam.actor import Actor
from selfmart.kit.time import utcnow
from selfmart.maintenance.schemas import AboutRead, MaintenanceRead
from selfmart.migrate import alembic_config
from selfmart.models import SystemFlag

KEY = "maintenance"
#: How stale a process's view of the flag may be (without Redis: other processes on the same
#: database are not told of a change).
CACHE_SECONDS = 2.0
#: With Redis every process is told of a change at once; this re-read covers a lost message.
SHARED_CACHE_SECONDS = 60.0
#: The name changes are announced under (selfmart.kit.invalidation).
INVALIDATION = KEY

#: Writes allowed during maintenance: (method or "*", path prefix).
ALLOWED_WRITES: tuple[tuple[str, str], ...] = (
    ("*", "/api/v1/auth/"),
    ("*", "/api/v1/system/maintenance"),
    ("POST", "/api/payments/notify/"),
    ("POST", "/api/terminal/v1/heartbeat"),
)
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class State:
    on: bool
    message: str = ""
    since: datetime | None = None
    by: str | None = None

    def read(self) -> MaintenanceRead:
        return MaintenanceRead(on=self.on, message=self.message, since=self.since, by=self.by)


OFF = State(on=False)


def refused(method: str, path: str) -> bool:
    """Whether maintenance mode refuses this request (only writes to the API)."""
    if method not in WRITES or not path.startswith("/api/"):
        return False
    return not any((m == "*" or m == method) and path.startswith(p) for m, p in ALLOWED_WRITES)


async def get(session: AsyncSession) -> State:
    flag = await session.get(SystemFlag, KEY, populate_existing=True)
    if flag is None:
        return OFF
    return _state(flag)


def _state(flag: SystemFlag) -> State:
    value: dict[str, Any] = flag.value or {}
    return State(
        on=bool(value.get("on")),
        message=str(value.get("message") or ""),
        since=flag.updated_at,
        by=flag.updated_by,
    )


async def change(session: AsyncSession, *, on: bool, message: str, actor: Actor) -> State:
    """Turn maintenance mode on or off (audited: who, when, the message)."""
    flag = await session.get(SystemFlag, KEY, with_for_update=True)
    before = _state(flag) if flag is not None else OFF
    now = utcnow()
    if flag is None:
        flag = SystemFlag(key=KEY, value={}, updated_at=now)
        session.add(flag)
    flag.value = {"on": on, "message": message}
    flag.updated_at = now
    flag.updated_by = actor.name
    await session.flush()
    await audit.record(
        session,
        actor,
        "system.maintenance_on" if on else "system.maintenance_off",
        "system",
        KEY,
        before={"on": before.on, "message": before.message},
        after={"on": on, "message": message},
        label="maintenance",
    )
    return _state(flag)


class Cache:
    """An app's view of the flag (`app.state.maintenance`), re-read from the database when a
    change is announced (`forget`) and at most every `seconds` otherwise. A database that
    cannot be reached reads as the last state seen.

    One request re-reads it at a time: the others that come while it reads take the last
    state seen (as stale as the read is slow), rather than each reading it (on a busy server
    every request in flight would, each on a connection of its own, when the window ends)."""

    def __init__(self, seconds: float | None = None) -> None:
        #: None: CACHE_SECONDS
        self.seconds = seconds
        self._state: State = OFF
        self._read_at = float("-inf")
        self._reading = False

    def forget(self) -> None:
        self._read_at = float("-inf")

    async def current(self, sessionmaker: async_sessionmaker[AsyncSession]) -> State:
        window = CACHE_SECONDS if self.seconds is None else self.seconds
        if time.monotonic() - self._read_at < window or (
            self._reading and self._read_at > float("-inf")
        ):
            return self._state
        self._reading = True
        try:
            async with sessionmaker() as session:
                self._state = await get(session)
        except Exception:  # the database is away: the request itself will say so
            return self._state
        finally:
            self._reading = False
        self._read_at = time.monotonic()
        return self._state


def _current_revisions(connection: Any) -> list[str]:
    return sorted(MigrationContext.configure(connection).get_current_heads())


async def about(session: AsyncSession, settings: Settings) -> AboutRead:
    """What is running: version, database, migrations (current against this code's head)."""
    connection = await session.connection()
    current = await connection.run_sync(_current_revisions)
    head = sorted(ScriptDirectory.from_config(alembic_config()).get_heads())
    return AboutRead(
        version=__version__,
        python=sys.version.split()[0],
        database=connection.dialect.name,
        migration_current=current,
        migration_head=head,
        migrations_up_to_date=current == head,
        redis=bool(settings.redis_url),
        maintenance=(await get(session)).read(),
    )

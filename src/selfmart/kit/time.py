"""Time helpers: everything stored is timezone-aware UTC; shown in the store's zone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["UTC", "utcnow", "to_zone", "clock_at", "local_day_bounds"]

#: A moment the current task acts at instead of the wall clock (demo history); None: real time.
_pinned: ContextVar[datetime | None] = ContextVar("selfmart_clock", default=None)


def utcnow() -> datetime:
    pinned = _pinned.get()
    return pinned if pinned is not None else datetime.now(UTC)


@contextmanager
def clock_at(moment: datetime) -> Iterator[None]:
    """Within the block, `utcnow()` is `moment` for this task only, so the services can write
    a history (demo orders of last month) with the times it happened at."""
    if moment.tzinfo is None:
        raise ValueError("clock_at needs an aware datetime")
    token = _pinned.set(moment.astimezone(UTC))
    try:
        yield
    finally:
        _pinned.reset(token)


def to_zone(value: datetime, tz: str) -> datetime:
    return value.astimezone(ZoneInfo(tz))


def local_day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants a local day starts and ends at (23 or 25 hours across DST)."""
    start = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).astimezone(UTC)
    return start, end

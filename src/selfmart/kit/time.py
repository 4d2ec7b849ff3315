"""Time helpers: everything stored is timezone-aware UTC; shown in the store's zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

__all__ = ["UTC", "utcnow", "to_zone"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_zone(value: datetime, tz: str) -> datetime:
    return value.astimezone(ZoneInfo(tz))

"""When each terminal was last heard from: the figures monitoring and alerts read (they do not
query the terminals table themselves)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import Terminal


@dataclass(frozen=True, slots=True)
class Presence:
    terminal_id: int
    code: str
    name: str
    store_id: int
    #: the last heartbeat or signed request; a terminal never heard from counts from when it
    #: was activated (or created)
    last_heard_at: datetime


async def online_count(session: AsyncSession, now: datetime, window: timedelta) -> int:
    """Active terminals seen within `window` before `now`."""
    n = await session.scalar(
        select(func.count())
        .select_from(Terminal)
        .where(Terminal.status == "active", Terminal.last_seen_at >= now - window)
    )
    return int(n or 0)


async def active_terminals(
    session: AsyncSession, store_ids: Sequence[int] | None = None
) -> list[Presence]:
    """Every active terminal (of the stores asked for) and when it was last heard from."""
    heard = func.coalesce(Terminal.last_seen_at, Terminal.activation_used_at, Terminal.created_at)
    stmt = (
        select(Terminal.id, Terminal.code, Terminal.name, Terminal.store_id, heard)
        .where(Terminal.status == "active")
        .order_by(Terminal.id)
    )
    if store_ids is not None:
        stmt = stmt.where(Terminal.store_id.in_(list(store_ids)))
    return [
        Presence(terminal_id=i, code=c, name=n, store_id=s, last_heard_at=h)
        for i, c, n, s, h in await session.execute(stmt)
    ]

"""Telling people about stock alerts, after the transaction that raised them has committed.

`announce()` is called inside the business transaction; nothing leaves the process until the
commit. The delivery itself is done by `deliver_alerts`, which opens its own session.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.kit import aftercommit

log = logging.getLogger(__name__)

#: Called after commit with a fresh session factory and the ids of the alerts just opened.
Deliverer = Callable[[async_sessionmaker[AsyncSession], list[int]], Awaitable[None]]
_deliverers: list[Deliverer] = []


def register(deliverer: Deliverer) -> None:
    if deliverer not in _deliverers:
        _deliverers.append(deliverer)


def announce(session: AsyncSession, alert_ids: Sequence[int]) -> None:
    """Queue a notification for newly opened alerts, sent only if the transaction commits."""
    ids = list(alert_ids)
    bind = session.bind

    async def send() -> None:
        factory = async_sessionmaker(bind, expire_on_commit=False, autoflush=False)
        for deliver in list(_deliverers):
            try:
                await deliver(factory, ids)
            except Exception:  # a failed notification must not undo the sale
                log.exception("stock alert delivery failed", extra={"alert_ids": ids})

    aftercommit.on_commit(session, send)

"""Side effects that must only happen once the request's transaction has committed.

Services call `on_commit(session, fn)`; the session scope runs the callbacks after a
successful commit and drops them on rollback, so a rolled-back request sends nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

AfterCommit = Callable[[], Awaitable[None]]
_KEY = "selfmart.after_commit"
log = logging.getLogger(__name__)


def on_commit(session: AsyncSession, callback: AfterCommit) -> None:
    session.info.setdefault(_KEY, []).append(callback)


def pending(session: AsyncSession) -> list[AfterCommit]:
    """The callbacks registered for the current transaction (so a caller can batch into one)."""
    callbacks: list[AfterCommit] = session.info.get(_KEY, [])
    return callbacks


def discard(session: AsyncSession) -> None:
    session.info.pop(_KEY, None)


async def run_pending(session: AsyncSession) -> None:
    callbacks: list[AfterCommit] = session.info.pop(_KEY, [])
    for callback in callbacks:
        try:
            await callback()
        except Exception:  # a failed side effect must not fail a committed request
            log.exception("after-commit callback failed")

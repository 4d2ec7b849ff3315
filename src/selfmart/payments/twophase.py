"""Asking a payment platform from inside a unit of work, in three phases, so that nothing the
platform is asked to do is lost, done twice, or waited for with a row locked.

1. The caller records what it is about to ask, under the order's lock, in its transaction: a
   pending attempt or refund carrying our own number for it (`out_trade_no`, `out_refund_no`),
   with everything that goes with it (reserved units, audit, events).
2. `call_outside` commits that transaction (and runs its after-commit work), then calls the
   platform with no transaction open and no row locked: a slow platform blocks nobody.
3. The caller applies the answer in a new transaction that starts with `relock_order` and
   reads its record afresh (a callback or a job may have applied the answer meanwhile), so
   the answer is applied once.

If the process dies between 1 and 3 the record stays pending, and the query jobs
(`payments.tasks`) settle it: a payment is asked about; a refund whose answer never arrived is
sent again under the same `out_refund_no`, which every platform treats as the same refund.
A service commits before asking a platform only through `call_outside`, never on its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit import aftercommit
from selfmart.models import Order
from selfmart.orders.lookup import OrderNotFound
from selfmart.payments.platform import PlatformError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """What phase 2 brought back: the platform's answer, or why there is none (the outcome is
    then unknown, and the record stays pending for the query job)."""

    answer: T | None
    error: PlatformError | None = None


async def end_phase_one(session: AsyncSession) -> None:
    """Commit what was recorded, so it outlives this process, and run the work that waited
    for that commit (it belongs to what was just committed, whatever happens next)."""
    await session.commit()
    await aftercommit.run_pending(session)


async def _phase_two(call: Callable[[], Awaitable[T]]) -> Outcome[T]:
    try:
        return Outcome(await call())
    except PlatformError as exc:
        return Outcome(None, exc)


async def call_outside(session: AsyncSession, call: Callable[[], Awaitable[T]]) -> Outcome[T]:
    """Phases 1 → 2: commit, then `call()` the platform outside any transaction."""
    await end_phase_one(session)
    return await _phase_two(call)


async def relock_order(session: AsyncSession, order_id: int) -> Order:
    """Phase 3 starts here: the order's row locked again and read as it now stands."""
    order = await session.scalar(
        select(Order)
        .where(Order.id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if order is None:
        raise OrderNotFound(field="order_no")
    return order

"""Stores of the chain: create, read, update — always within the actor's stores."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import refresh as analytics_summaries
from selfmart.audit import service as audit
from selfmart.errors import AlreadyExists, NotFound
from selfmart.iam.actor import Actor
from selfmart.kit.pagination import PageParams, paginate
from selfmart.kit.time import to_zone
from selfmart.models import Store, Terminal
from selfmart.stores.schemas import StoreCreate, StoreRead, StoreUpdate

#: The fields an audit entry compares.
AUDITED = (
    "code",
    "name",
    "address",
    "city",
    "phone",
    "timezone",
    "opening_hours",
    "status",
    "allow_negative_stock",
    "auto_refund_duplicates",
)


class StoreNotFound(NotFound):
    code, message = "store_not_found", "No such store"


def scoped(stmt: Select[Any], actor: Actor) -> Select[Any]:
    """Restrict a query over Store to the stores `actor` may see."""
    if actor.store_ids is not None:
        stmt = stmt.where(Store.id.in_(actor.store_ids))
    return stmt


async def get_store(
    session: AsyncSession, store_id: int, *, actor: Actor, field: str | None = None
) -> Store:
    """The store, if `actor` may see it; another store's id is a 404 like an unknown one."""
    store: Store | None = await session.scalar(
        scoped(select(Store).where(Store.id == store_id), actor)
    )
    if store is None:
        raise StoreNotFound(f"No store {store_id}", field=field)
    return store


async def _terminal_counts(session: AsyncSession, store_ids: list[int]) -> dict[int, int]:
    if not store_ids:
        return {}
    rows = await session.execute(
        select(Terminal.store_id, func.count())
        .where(Terminal.store_id.in_(store_ids))
        .group_by(Terminal.store_id)
    )
    return {sid: int(n) for sid, n in rows}


def _read(store: Store, terminal_count: int) -> StoreRead:
    return StoreRead.model_validate(
        {**{f: getattr(store, f) for f in StoreRead.model_fields if f != "terminal_count"}}
        | {"terminal_count": terminal_count}
    )


async def read(session: AsyncSession, store: Store) -> StoreRead:
    counts = await _terminal_counts(session, [store.id])
    return _read(store, counts.get(store.id, 0))


async def list_stores(
    session: AsyncSession,
    params: PageParams,
    *,
    actor: Actor,
    q: str | None = None,
    city: str | None = None,
    status: str | None = None,
) -> tuple[list[StoreRead], int]:
    stmt = scoped(select(Store), actor).order_by(Store.id)
    if q:
        stmt = stmt.where(
            or_(
                Store.code.icontains(q, autoescape=True),
                Store.name.icontains(q, autoescape=True),
                Store.address.icontains(q, autoescape=True),
            )
        )
    if city:
        stmt = stmt.where(Store.city == city)
    if status:
        stmt = stmt.where(Store.status == status)
    stores, total = await paginate(session, stmt, params)
    counts = await _terminal_counts(session, [s.id for s in stores])
    return [_read(s, counts.get(s.id, 0)) for s in stores], total


async def _ensure_code_free(session: AsyncSession, code: str, *, except_id: int | None) -> None:
    stmt = select(Store.id).where(Store.code == code)
    if except_id is not None:
        stmt = stmt.where(Store.id != except_id)
    if await session.scalar(stmt) is not None:
        raise AlreadyExists(f"A store with code {code!r} already exists", field="code")


async def _flush_unique(session: AsyncSession, code: str) -> None:
    """Flush in a savepoint so a concurrent insert of the same code is a 409, not a 500."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise AlreadyExists(f"A store with code {code!r} already exists", field="code") from exc


async def create_store(session: AsyncSession, data: StoreCreate, *, actor: Actor) -> StoreRead:
    await _ensure_code_free(session, data.code, except_id=None)
    store = Store(**data.model_dump())
    session.add(store)
    await _flush_unique(session, data.code)
    await audit.record(
        session,
        actor,
        "store.create",
        "store",
        store.id,
        store_id=store.id,
        after=audit.snapshot(store, AUDITED),
    )
    return _read(store, 0)


async def update_store(
    session: AsyncSession, store: Store, data: StoreUpdate, *, actor: Actor
) -> StoreRead:
    changes = data.model_dump(exclude_unset=True)
    if "code" in changes and changes["code"] != store.code:
        await _ensure_code_free(session, changes["code"], except_id=store.id)
    before = audit.snapshot(store, AUDITED)
    zone_changed = "timezone" in changes and changes["timezone"] != store.timezone
    for name, value in changes.items():
        setattr(store, name, value)
    await _flush_unique(session, store.code)
    if zone_changed:
        # Its sales figures are by local day: the analytics refresh restates them.
        await analytics_summaries.restate_store(session, store.id)
    await audit.record(
        session,
        actor,
        "store.update",
        "store",
        store.id,
        store_id=store.id,
        before=before,
        after=audit.snapshot(store, AUDITED),
    )
    return await read(session, store)


def _parse_hhmm(text: str) -> time:
    hour, minute = text.split(":")
    return time(int(hour), int(minute))


def opening_hours_contain(opening_hours: str, local: time) -> bool:
    """Whether `local` (a wall-clock time in the store's zone) falls within the opening hours.

    The opening minute is inside, the closing minute is not; "22:00-06:00" wraps midnight.
    """
    if opening_hours == "24h":
        return True
    start_text, end_text = opening_hours.split("-")
    start, end = _parse_hhmm(start_text), _parse_hhmm(end_text)
    if start < end:
        return start <= local < end
    return local >= start or local < end


def is_open(store: Store, at: datetime) -> bool:
    """Whether `store` is active and open at the UTC instant `at` (judged in its own zone)."""
    if store.status != "active":
        return False
    return opening_hours_contain(store.opening_hours, to_zone(at, store.timezone).time())


def opened_at(store: Store, at: datetime) -> datetime | None:
    """When the opening period `at` falls in began (UTC), or None when the store is closed at
    `at`. A "24h" store's period began when the store was created."""
    if not is_open(store, at):
        return None
    if store.opening_hours == "24h":
        return store.created_at
    start = _parse_hhmm(store.opening_hours.split("-")[0])
    local = to_zone(at, store.timezone)
    day = local.date() if local.time() >= start else local.date() - timedelta(days=1)
    return datetime.combine(day, start, tzinfo=ZoneInfo(store.timezone)).astimezone(at.tzinfo)


async def list_by_ids(session: AsyncSession, store_ids: Sequence[int] | None = None) -> list[Store]:
    """The stores asked for (every store when None), by id."""
    stmt = select(Store).order_by(Store.id)
    if store_ids is not None:
        stmt = stmt.where(Store.id.in_(list(store_ids)))
    return list((await session.scalars(stmt)).all())


async def zones(session: AsyncSession, store_ids: Sequence[int] | None = None) -> dict[int, str]:
    """Each store's time zone (every store's, or those asked for): the day of a sale is the
    store's day."""
    stmt = select(Store.id, Store.timezone)
    if store_ids is not None:
        stmt = stmt.where(Store.id.in_(list(store_ids)))
    return {int(sid): str(tz) for sid, tz in await session.execute(stmt)}


async def names(session: AsyncSession, store_ids: Sequence[int]) -> dict[int, str]:
    """Each store's name, for reports that list stores by id."""
    if not store_ids:
        return {}
    rows = await session.execute(
        select(Store.id, Store.name).where(Store.id.in_(list(set(store_ids))))
    )
    return {int(sid): str(name) for sid, name in rows}

"""Messages a member reads on their own page: the abnormal-order reminder's "member message"
and their tier changes. Unread until the page marks them read; the page shows how many are
unread."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import utcnow
from selfmart.members.exceptions import MessageNotFound
from selfmart.models import Member, MemberMessage


def row(
    member_id: int, kind: str, title: str, body: str, *, order_id: int | None, now: datetime
) -> dict[str, Any]:
    """A message as an INSERT row (the nightly job writes them in bulk)."""
    return {
        "member_id": member_id, "kind": kind, "title": title[:200], "body": body[:1000],
        "order_id": order_id, "created_at": now, "read_at": None,
    }  # fmt: skip


async def post(
    session: AsyncSession,
    member_id: int,
    *,
    kind: str,
    title: str,
    body: str,
    order_id: int | None = None,
    now: datetime | None = None,
) -> None:
    await session.execute(
        insert(MemberMessage),
        [row(member_id, kind, title, body, order_id=order_id, now=now or utcnow())],
    )


async def unread(session: AsyncSession, member_id: int) -> int:
    n = await session.scalar(
        select(func.count()).where(
            MemberMessage.member_id == member_id, MemberMessage.read_at.is_(None)
        )
    )
    return int(n or 0)


async def page(
    session: AsyncSession, member_id: int, *, offset: int, limit: int
) -> tuple[list[MemberMessage], int]:
    total = await session.scalar(select(func.count()).where(MemberMessage.member_id == member_id))
    rows = await session.scalars(
        select(MemberMessage)
        .where(MemberMessage.member_id == member_id)
        .order_by(MemberMessage.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(rows.all()), int(total or 0)


async def mark_read(
    session: AsyncSession, member_id: int, message_id: int | None, *, now: datetime | None = None
) -> int:
    """Mark one of the member's messages read (404 when it is not theirs), or all of them
    when `message_id` is None; returns how many were unread. Reading twice changes nothing."""
    stmt = update(MemberMessage).where(
        MemberMessage.member_id == member_id, MemberMessage.read_at.is_(None)
    )
    if message_id is not None:
        mine = await session.scalar(
            select(MemberMessage.id).where(
                MemberMessage.id == message_id, MemberMessage.member_id == member_id
            )
        )
        if mine is None:
            raise MessageNotFound(field="message_id")
        stmt = stmt.where(MemberMessage.id == message_id)
    done = await session.execute(
        stmt.values(read_at=now or utcnow()).execution_options(synchronize_session=False)
    )
    return int(done.rowcount or 0)  # type: ignore[attr-defined]


async def order_member(session: AsyncSession, member_id: int | None) -> Member | None:
    """The active member an order's message goes to: the order's member, or the record it was
    merged into; None when there is none (no member, disabled, erased)."""
    seen: set[int] = set()
    while member_id is not None and member_id not in seen:
        seen.add(member_id)
        member = await session.get(Member, member_id)
        if member is None:
            return None
        if member.status == "merged":
            member_id = member.merged_into_id
            continue
        return member if member.status == "active" else None
    return None

"""Notifications: one `send` for every channel, and the in-app message centre.

`send` writes in-app messages and one delivery per other channel and recipient in the
caller's transaction; each delivery goes out after commit through the outbox, which records
and retries the attempts (see notify/tasks.py). A rolled-back transaction sends nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.errors import NotFound
from selfmart.iam.actor import Actor
from selfmart.jobs import outbox
from selfmart.kit.pagination import PageParams, paginate
from selfmart.kit.time import utcnow
from selfmart.models import Message, NotificationDelivery, NotificationImage, User
from selfmart.notify import channels as channel_registry
from selfmart.notify.channels import IN_APP, InlineImage
from selfmart.notify.email import EmailChannel
from selfmart.notify.sms import SmsChannel
from selfmart.notify.texts import MessageText

log = logging.getLogger(__name__)

channel_registry.register(EmailChannel())
channel_registry.register(SmsChannel())

DELIVER_TOPIC = "notify.deliver"
#: where an in-app message keeps its text as keys and parameters (in `data`)
TEXT_KEY = "text"


@dataclass
class Notification:
    """What one `send` created."""

    messages: list[Message] = field(default_factory=list)
    deliveries: list[NotificationDelivery] = field(default_factory=list)
    #: (user id, channel) pairs the channel cannot reach (e.g. no email address on file)
    unreachable: list[tuple[int, str]] = field(default_factory=list)


async def send(
    session: AsyncSession,
    *,
    kind: str,
    title: str,
    body: str,
    user_ids: Iterable[int] = (),
    channels: Sequence[str] = (IN_APP, "email"),
    store_id: int | None = None,
    link: str | None = None,
    data: Mapping[str, Any] | None = None,
    addresses: Iterable[tuple[str, str]] = (),
    text: MessageText | None = None,
    images: Sequence[InlineImage] = (),
) -> Notification:
    """Notify active users `user_ids` on each of `channels`, plus explicit `(channel, address)`
    pairs (group-chat robots, a shared mailbox). `kind` is machine-readable ("stock.low");
    `link` is a console path ("/alerts/12"). Inactive or unknown users are skipped.

    `text` is the same message as keys and parameters: the message centre shows it in each
    reader's language (stored with the in-app message; `title`/`body` go to the channels).
    `images` go with every delivery, shown inline by the channels that can (email)."""
    wanted = list(dict.fromkeys(channels))
    for name in wanted:
        if name != IN_APP:
            channel_registry.get(name)
    extra = list(dict.fromkeys(addresses))
    for name, _address in extra:
        channel_registry.get(name)
    ids = sorted(set(user_ids))
    users: list[User] = []
    if ids:
        users = list(
            (
                await session.scalars(
                    select(User).where(User.id.in_(ids), User.is_active.is_(True))
                )
            ).all()
        )
    now = utcnow()
    out = Notification()
    title = title[:200]
    if IN_APP in wanted:
        for user in users:
            msg = Message(
                user_id=user.id,
                kind=kind,
                title=title,
                body=body,
                link=link,
                data={**(data or {}), **({TEXT_KEY: text.as_json()} if text else {})},
                store_id=store_id,
                created_at=now,
            )
            session.add(msg)
            out.messages.append(msg)

    targets: list[tuple[str, str, int | None]] = []
    for name in wanted:
        if name == IN_APP:
            continue
        channel = channel_registry.get(name)
        for user in users:
            address = channel.address_of(user)
            if address:
                targets.append((name, address, user.id))
            else:
                out.unreachable.append((user.id, name))
    targets.extend((name, address, None) for name, address in extra)

    seen: set[tuple[str, str]] = set()
    for name, address, user_id in targets:
        if (name, address) in seen:
            continue
        seen.add((name, address))
        out.deliveries.append(
            NotificationDelivery(
                channel=name,
                recipient=address[:300],
                user_id=user_id,
                store_id=store_id,
                subject=title,
                body=body,
                link=link,
                kind=kind,
                status="pending",
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            )
        )
    session.add_all(out.deliveries)
    await session.flush()
    session.add_all(
        NotificationImage(
            delivery_id=delivery.id, filename=image.filename, subtype=image.subtype, data=image.data
        )
        for delivery in out.deliveries
        for image in images
    )
    for delivery in out.deliveries:
        await outbox.enqueue(session, DELIVER_TOPIC, {"delivery_id": delivery.id})
    if out.unreachable:
        # A user with no address for a channel (no email on file, say) is worth a warning only
        # when no channel reached them at all; otherwise (the message centre got it) it is
        # routine, and at start-up the demo's alerts would fill the log with it.
        reached = {user.id for user in users} if IN_APP in wanted else {t[2] for t in targets}
        missed = sorted({uid for uid, _ in out.unreachable if uid not in reached})
        if missed:
            log.warning("notification %s reached no channel of user(s) %s", kind, missed)
        else:
            log.debug("notification %s: %d address(es) missing", kind, len(out.unreachable))
    return out


# --- the message centre: a user's own messages ---


def _own(actor: Actor) -> Any:
    return Message.user_id == actor.id


async def list_messages(
    session: AsyncSession, actor: Actor, params: PageParams, *, unread: bool | None = None
) -> tuple[list[Message], int]:
    stmt = select(Message).where(_own(actor))
    if unread is True:
        stmt = stmt.where(Message.read_at.is_(None))
    elif unread is False:
        stmt = stmt.where(Message.read_at.is_not(None))
    stmt = stmt.order_by(Message.created_at.desc(), Message.id.desc())
    return await paginate(session, stmt, params)


async def unread_count(session: AsyncSession, actor: Actor) -> int:
    n = await session.scalar(
        select(func.count()).select_from(Message).where(_own(actor), Message.read_at.is_(None))
    )
    return int(n or 0)


async def mark_read(session: AsyncSession, actor: Actor, message_id: int) -> Message:
    """Mark one of the actor's messages read (again is harmless); another's is a 404."""
    msg = await session.scalar(select(Message).where(Message.id == message_id, _own(actor)))
    if msg is None:
        raise NotFound("No such message", field="message_id")
    if msg.read_at is None:
        msg.read_at = utcnow()
        await session.flush()
    return msg


async def mark_all_read(session: AsyncSession, actor: Actor) -> int:
    result = await session.execute(
        update(Message)
        .where(_own(actor), Message.read_at.is_(None))
        .values(read_at=utcnow())
        .returning(Message.id)
    )
    return len(result.all())

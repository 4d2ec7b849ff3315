"""Delivering notifications: the outbox handler that hands each delivery to its channel."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.jobs import outbox, runtime
from selfmart.kit.time import utcnow
from selfmart.models import NotificationAttempt, NotificationDelivery, NotificationImage
from selfmart.notify import channels
from selfmart.notify import service as _service  # noqa: F401  (registers the built-in channels)
from selfmart.notify.service import DELIVER_TOPIC


def _absolute(link: str | None, base: str) -> str | None:
    if link and link.startswith("/"):
        return base.rstrip("/") + link
    return link


async def _attempt_failed(
    session: AsyncSession, payload: dict[str, Any], failure: outbox.Failure
) -> None:
    delivery = await session.get(NotificationDelivery, int(payload["delivery_id"]))
    if delivery is None or delivery.status != "pending":
        return
    delivery.attempts += 1
    delivery.last_error = failure.error
    delivery.next_attempt_at = failure.retry_at
    if failure.final:
        delivery.status = "failed"
    session.add(
        NotificationAttempt(
            delivery_id=delivery.id, attempted_at=utcnow(), success=False, error=failure.error
        )
    )


@outbox.handler(DELIVER_TOPIC, on_failure=_attempt_failed)
async def deliver(session: AsyncSession, payload: dict[str, Any]) -> None:
    delivery = await session.get(NotificationDelivery, int(payload["delivery_id"]))
    if delivery is None or delivery.status != "pending":
        return  # sent by an earlier run of this event, or given up
    settings = runtime.settings()
    channel = channels.get(delivery.channel)
    images = await session.scalars(
        select(NotificationImage)
        .where(NotificationImage.delivery_id == delivery.id)
        .order_by(NotificationImage.id)
    )
    await channel.deliver(
        channels.Outgoing(
            delivery_id=delivery.id,
            channel=delivery.channel,
            recipient=delivery.recipient,
            subject=delivery.subject,
            body=delivery.body,
            kind=delivery.kind,
            link=_absolute(delivery.link, settings.public_base_url),
            store_id=delivery.store_id,
            user_id=delivery.user_id,
            images=tuple(
                channels.InlineImage(data=i.data, filename=i.filename, subtype=i.subtype)
                for i in images.all()
            ),
        ),
        settings,
    )
    now = utcnow()
    delivery.status = "sent"
    delivery.sent_at = now
    delivery.attempts += 1
    delivery.last_error = None
    delivery.next_attempt_at = None
    session.add(NotificationAttempt(delivery_id=delivery.id, attempted_at=now, success=True))

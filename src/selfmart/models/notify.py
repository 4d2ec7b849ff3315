"""The outbox for after-commit side effects, in-app messages, and delivery attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from selfmart.db import Base, BigIntId, JSONDoc


class OutboxEvent(Base):
    """A side effect recorded in the business transaction and carried out after commit."""

    __tablename__ = "outbox_events"
    __table_args__ = (Index("ix_outbox_events_pending", "status", "available_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    #: pending | done | failed (gave up after the last attempt)
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    created_at: Mapped[datetime]
    #: when the event may next be claimed; a claim pushes it forward by the lease, so an event
    #: whose worker died becomes available again when the lease runs out
    available_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None]


class Message(Base):
    """An in-app message in a user's message centre."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_user_unread", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: machine-readable kind, e.g. "stock.low"; the console may translate by it
    kind: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str | None] = mapped_column(String(300))
    data: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    store_id: Mapped[int | None]
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]


class NotificationDelivery(Base):
    """One notification sent (or tried) through one channel to one recipient."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (Index("ix_notification_deliveries_status", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    #: a registered channel name: email | sms | wecom | dingtalk | feishu ...
    channel: Mapped[str] = mapped_column(String(16))
    #: the channel's address: an email address, a phone number, a webhook reference
    recipient: Mapped[str] = mapped_column(String(300))
    #: the user it was meant for, when it was addressed to a user
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    store_id: Mapped[int | None]
    subject: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str | None] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(64), default="")
    #: pending | sent | failed (gave up)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]


class NotificationAttempt(Base):
    """One try at handing a delivery to its channel: when, whether it worked, and why not."""

    __tablename__ = "notification_attempts"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("notification_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime]
    success: Mapped[bool]
    error: Mapped[str | None] = mapped_column(Text)


class NotificationImage(Base):
    """An image shown inline with a delivery's text (a report's chart), kept with the delivery
    so that every retry sends the same message."""

    __tablename__ = "notification_images"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("notification_deliveries.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(200))
    #: the image/* subtype: png, jpeg
    subtype: Mapped[str] = mapped_column(String(16))
    data: Mapped[bytes] = mapped_column(LargeBinary)

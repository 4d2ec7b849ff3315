"""The outbox for after-commit side effects, in-app messages, and delivery attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from selfmart.db import Base, BigIntId, JSONDoc


class OutboxEvent(Base):
    """A side effect recorded in the business transaction and carried out after commit."""

    __tablename__ = "outbox_events"
    __table_args__ = (Index("ix_outbox_events_pending", "done_at", "available_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    created_at: Mapped[datetime]
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
    #: in_app | email | sms | webhook
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(64), default="")
    #: pending | sent | failed (gave up)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]

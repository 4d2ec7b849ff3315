"""Money in and out of an order: payments and refunds, through a payment channel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from selfmart.db import Base, BigIntId, JSONDoc


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        # A platform's transaction is recorded once, however often its callback arrives.
        UniqueConstraint("channel", "channel_txn_id"),
        Index("ix_payments_order", "order_id"),
        Index("ix_payments_store_created", "store_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"))
    store_id: Mapped[int]
    #: manual | wechat | alipay | card
    channel: Mapped[str] = mapped_column(String(16))
    #: pending | succeeded | failed
    status: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int]
    channel_txn_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    succeeded_at: Mapped[datetime | None]
    failure_reason: Mapped[str | None] = mapped_column(String(300))
    note: Mapped[str | None] = mapped_column(String(500))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(100), default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (
        UniqueConstraint("channel", "channel_refund_id"),
        Index("ix_refunds_order", "order_id"),
        Index("ix_refunds_store_created", "store_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"))
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id", ondelete="RESTRICT"))
    store_id: Mapped[int]
    channel: Mapped[str] = mapped_column(String(16))
    #: pending | succeeded | failed
    status: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int]
    reason: Mapped[str] = mapped_column(String(300))
    note: Mapped[str | None] = mapped_column(String(500))
    channel_refund_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    failure_reason: Mapped[str | None] = mapped_column(String(300))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(100), default="")

    lines: Mapped[list[RefundLine]] = relationship(lazy="raise", order_by="RefundLine.id")


class RefundLine(Base):
    __tablename__ = "refund_lines"
    __table_args__ = (Index("ix_refund_lines_refund", "refund_id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    refund_id: Mapped[int] = mapped_column(ForeignKey("refunds.id", ondelete="CASCADE"))
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id", ondelete="RESTRICT"))
    quantity: Mapped[int]
    amount_fen: Mapped[int]
    #: restock (resellable, back into stock) | write_off (not resellable)
    disposition: Mapped[str] = mapped_column(String(16))

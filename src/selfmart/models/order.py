"""Orders: the header, its lines, its timeline, and the issues (abnormal orders) it raises.

The status column follows selfmart.orders.statemachine; only the orders service moves it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from selfmart.db import Base, BigIntId, JSONDoc
from selfmart.kit.time import utcnow


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        # The idempotency key: a terminal's own order id is accepted once.
        UniqueConstraint("terminal_id", "client_order_id"),
        Index("ix_orders_store_created", "store_id", "created_at"),
        Index("ix_orders_status_expires", "status", "expires_at"),
        Index("ix_orders_created_at", "created_at"),
        Index("ix_orders_client_order_id", "client_order_id"),
        Index("ix_orders_customer_phone", "customer_phone"),
        Index("ix_orders_member_no", "member_no"),
        Index("ix_orders_member_created", "member_id", "created_at"),
        Index("ix_orders_phone_last4", "order_no", "phone_last4"),
        # The console's search by a phone's last digits.
        Index("ix_orders_phone_tail", "phone_last4", "created_at"),
        # A part of an order number: trigrams on PostgreSQL (LIKE '%55534%' uses it); on
        # SQLite, the embedded single-store database, a plain index the search does not need.
        Index(
            "ix_orders_order_no_trgm",
            "order_no",
            postgresql_using="gin",
            postgresql_ops={"order_no": "gin_trgm_ops"},
        ),
        # The abnormal-orders filter: few rows, found without scanning the rest.
        Index(
            "ix_orders_abnormal",
            "created_at",
            postgresql_where=text("open_issues > 0"),
            sqlite_where=text("open_issues > 0"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    #: The server's order number, printed on the receipt.
    order_no: Mapped[str] = mapped_column(String(24), unique=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="RESTRICT"))
    terminal_id: Mapped[int | None] = mapped_column(ForeignKey("terminals.id", ondelete="RESTRICT"))
    client_order_id: Mapped[str | None] = mapped_column(String(64))
    #: SHA-256 of the order as the terminal sent it: the same id with another body is a 409.
    request_hash: Mapped[str | None] = mapped_column(String(64))
    #: terminal (online) | offline (uploaded in a batch) | console
    source: Mapped[str] = mapped_column(String(16), default="terminal")
    status: Mapped[str] = mapped_column(String(24))

    #: When the customer bought, by the terminal's clock (offline orders arrive later).
    purchased_at: Mapped[datetime]
    #: When the server received it.
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    #: Unpaid past this moment, the close-unpaid job closes it.
    expires_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    #: When it reached cancelled, closed or refunded.
    ended_at: Mapped[datetime | None]

    member_id: Mapped[int | None]
    member_no: Mapped[str | None] = mapped_column(String(32))
    customer_name: Mapped[str | None] = mapped_column(String(100))
    customer_phone: Mapped[str | None] = mapped_column(String(32))
    #: For the customer's look-up by order number and the last four digits of the phone.
    phone_last4: Mapped[str | None] = mapped_column(String(4))

    item_count: Mapped[int] = mapped_column(default=0)
    #: Sum of the regular (store) price times quantity.
    subtotal_fen: Mapped[int] = mapped_column(default=0)
    #: Member prices and promotions together.
    discount_fen: Mapped[int] = mapped_column(default=0)
    #: What the customer owes: the server's price, never the terminal's.
    total_fen: Mapped[int] = mapped_column(default=0)
    #: The member coupon the order redeemed and what it took off (part of discount_fen);
    #: kept when the coupon is given back, so the order still reads as it was charged.
    coupon_code: Mapped[str | None] = mapped_column(String(20))
    coupon_fen: Mapped[int] = mapped_column(default=0, server_default="0")
    #: What the terminal showed the customer, when it said.
    terminal_total_fen: Mapped[int | None]
    paid_fen: Mapped[int] = mapped_column(default=0)
    refunded_fen: Mapped[int] = mapped_column(default=0)
    #: The channel of the (last) successful payment, for search: manual | wechat | alipay | ...
    payment_method: Mapped[str | None] = mapped_column(String(16))

    #: The sale is booked in the stock ledger (reversed when the order is cancelled or closed).
    stock_booked: Mapped[bool] = mapped_column(default=False)
    price_mismatch: Mapped[bool] = mapped_column(default=False)
    stock_short: Mapped[bool] = mapped_column(default=False)
    #: Open issues on this order (the abnormal-order queue); kept with the issues.
    open_issues: Mapped[int] = mapped_column(default=0)
    note: Mapped[str | None] = mapped_column(String(500))

    lines: Mapped[list[OrderLine]] = relationship(
        lazy="raise", order_by="OrderLine.line_no", back_populates="order"
    )


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        UniqueConstraint("order_id", "line_no"),
        Index("ix_order_lines_product", "product_id", "order_id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    line_no: Mapped[int]
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    barcode: Mapped[str | None] = mapped_column(String(32))
    #: Snapshots at the time of sale: later catalog edits do not rewrite history.
    name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[str] = mapped_column(String(64), default="")
    #: The store's regular price per unit.
    list_price_fen: Mapped[int]
    #: The price per unit charged before line discounts (member price when it applies).
    unit_price_fen: Mapped[int]
    quantity: Mapped[int]
    #: Promotions on this line.
    discount_fen: Mapped[int] = mapped_column(default=0)
    #: unit_price_fen * quantity - discount_fen
    amount_fen: Mapped[int]
    #: store | retail | member | promotion
    price_source: Mapped[str] = mapped_column(String(16), default="store")
    #: The unit price the terminal showed, when it said.
    terminal_unit_price_fen: Mapped[int | None]
    refunded_qty: Mapped[int] = mapped_column(default=0)
    refunded_fen: Mapped[int] = mapped_column(default=0)
    #: Units taken off the bill before payment (the shelf did not have them): what the line
    #: charges is amount_fen - cancelled_fen for quantity - cancelled_qty units.
    cancelled_qty: Mapped[int] = mapped_column(default=0)
    cancelled_fen: Mapped[int] = mapped_column(default=0)
    #: When the line was written: what PostgreSQL partitions the lines by, by month, once
    #: `selfmart partition-order-lines` has run (docs/analytics.md).
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    order: Mapped[Order] = relationship(lazy="raise", back_populates="lines")


class OrderEvent(Base):
    """The order's timeline: every transition and notable act, by whom and why.

    Also the change feed behind the console's live list (ids only grow)."""

    __tablename__ = "order_events"
    __table_args__ = (
        Index("ix_order_events_order", "order_id", "id"),
        Index("ix_order_events_store", "store_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    store_id: Mapped[int]
    occurred_at: Mapped[datetime]
    #: transition | payment | refund | issue | note | reminder
    kind: Mapped[str] = mapped_column(String(16), default="transition")
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str | None] = mapped_column(String(24))
    #: user | terminal | payment_callback | job | system
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(100), default="")
    #: A stable code saying why (e.g. "payment_timeout", "manual_payment").
    reason: Mapped[str] = mapped_column(String(64), default="")
    note: Mapped[str | None] = mapped_column(String(500))
    data: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)


class OrderIssue(Base):
    """An abnormal order: something about the order that needs working to an end.

    Automatic rules run first (stage "auto"); what they cannot settle waits for a person."""

    __tablename__ = "order_issues"
    __table_args__ = (
        # At most one open issue of a kind per order.
        Index(
            "uq_order_issues_open",
            "order_id",
            "kind",
            unique=True,
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
        Index("ix_order_issues_queue", "status", "stage", "opened_at"),
        Index("ix_order_issues_store", "store_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    store_id: Mapped[int]
    #: payment_failed | stock_short | price_mismatch | amount_mismatch | refund_failed
    kind: Mapped[str] = mapped_column(String(24))
    #: open | resolved
    status: Mapped[str] = mapped_column(String(16), default="open")
    #: auto (automatic rules are still trying) | person (waiting for someone)
    stage: Mapped[str] = mapped_column(String(16), default="person")
    detail: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    opened_at: Mapped[datetime]
    auto_attempts: Mapped[int] = mapped_column(default=0)
    next_auto_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    #: the action that settled it (retry_payment, write_off, close, ...)
    resolution: Mapped[str | None] = mapped_column(String(32))
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(String(500))


class RefundRequest(Base):
    """A refund above its requester's limit, waiting for someone whose limit covers it.

    Approving performs the refund (as the approver) through the refunds service; rejecting
    closes the request with a note. Either happens once: the decision is a conditional update
    of a pending request."""

    __tablename__ = "refund_requests"
    __table_args__ = (
        Index("ix_refund_requests_queue", "status", "requested_at"),
        Index("ix_refund_requests_order", "order_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    store_id: Mapped[int]
    #: pending | approved | rejected
    status: Mapped[str] = mapped_column(String(16), default="pending")
    #: what the refund gives back, as the server priced it when it was asked for
    amount_fen: Mapped[int]
    #: the refund asked for, as the refunds API takes it (lines or full, reason, note...)
    body: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    reason: Mapped[str] = mapped_column(String(300))
    requested_at: Mapped[datetime]
    requested_by_id: Mapped[str | None] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(String(100))
    #: the requester's limit when they asked (why it needed approval)
    requester_limit_fen: Mapped[int | None]
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[str | None] = mapped_column(String(64))
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decision_note: Mapped[str | None] = mapped_column(String(500))
    #: the refund approval made
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("refunds.id", ondelete="SET NULL"))

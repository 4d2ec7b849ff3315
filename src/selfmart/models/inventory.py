"""Stock per store and product: the append-only ledger of movements, the cached balance kept
in the same transaction, and what follows from them (discrepancies, alerts, expiry batches)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from selfmart.db import Base, BigIntId, JSONDoc

#: Every kind of movement, and the sign its quantity must have.
MOVEMENT_KINDS: dict[str, int] = {
    "purchase_receipt": +1,
    "sale": -1,
    "customer_return": +1,
    "transfer_out": -1,
    "transfer_in": +1,
    "stocktake_gain": +1,
    "stocktake_loss": -1,
    "write_off": -1,
    "supplier_return": -1,  # goods sent back to the supplier (document: supplier, its id)
    "adjustment": 0,  # either sign
}
#: Kinds that must say why.
REASON_REQUIRED = ("adjustment", "write_off")


class StockLevel(Base):
    """The cached balance of one product in one store: always the sum of its movements."""

    __tablename__ = "stock_levels"
    __table_args__ = (
        UniqueConstraint("store_id", "product_id"),
        Index("ix_stock_levels_product", "product_id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="RESTRICT"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    quantity: Mapped[int] = mapped_column(default=0)
    #: Bumped by every change, so a reader can tell that the balance moved under it.
    version: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime]


class StockMovement(Base):
    """One line of the ledger. Rows are only ever inserted, never updated or deleted."""

    __tablename__ = "stock_movements"
    __table_args__ = (
        Index("ix_stock_movements_store_product_time", "store_id", "product_id", "occurred_at"),
        Index("ix_stock_movements_store_time", "store_id", "occurred_at"),
        Index("ix_stock_movements_document", "document_type", "document_id"),
        CheckConstraint("quantity <> 0", name="quantity_nonzero"),
        CheckConstraint(
            "kind NOT IN ('adjustment', 'write_off') OR (reason IS NOT NULL AND reason <> '')",
            name="reason_required",
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="RESTRICT"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    #: one of MOVEMENT_KINDS
    kind: Mapped[str] = mapped_column(String(24))
    #: signed: positive into the store, negative out of it
    quantity: Mapped[int]
    balance_after: Mapped[int]
    #: the document that caused it, e.g. ("order", "123"), ("purchase_order", "7")
    document_type: Mapped[str | None] = mapped_column(String(32))
    document_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(300))
    batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("stock_batches.id", ondelete="SET NULL")
    )
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(100), default="")
    occurred_at: Mapped[datetime]


class StockDiscrepancy(Base):
    """A sale booked past the shelf (the store allows negative stock): someone should look."""

    __tablename__ = "stock_discrepancies"
    __table_args__ = (Index("ix_stock_discrepancies_store_status", "store_id", "status"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="RESTRICT"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    document_type: Mapped[str | None] = mapped_column(String(32))
    document_id: Mapped[str | None] = mapped_column(String(64))
    requested: Mapped[int]
    #: how many units the ledger did not have when the sale was booked
    short_by: Mapped[int]
    balance_after: Mapped[int]
    #: open | resolved
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    resolution_note: Mapped[str | None] = mapped_column(String(500))


class StockAlert(Base):
    """Low stock or near expiry. At most one open alert per store, product, kind and batch."""

    __tablename__ = "stock_alerts"
    __table_args__ = (
        Index(
            "uq_stock_alerts_open",
            "store_id",
            "product_id",
            "kind",
            "batch_key",
            unique=True,
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
        Index("ix_stock_alerts_store_status", "store_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="RESTRICT"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    #: low_stock | near_expiry
    kind: Mapped[str] = mapped_column(String(16))
    #: the batch id for near_expiry, 0 otherwise (so the unique index also covers low stock)
    batch_key: Mapped[int] = mapped_column(default=0)
    #: open | resolved
    status: Mapped[str] = mapped_column(String(16), default="open")
    threshold: Mapped[int | None]
    quantity: Mapped[int]
    expiry_date: Mapped[date | None]
    opened_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    #: auto (stock back above the threshold) | manual
    resolution: Mapped[str | None] = mapped_column(String(16))
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    resolution_note: Mapped[str | None] = mapped_column(String(500))
    notified_at: Mapped[datetime | None]


class StockBatch(Base):
    """A received lot with its expiry date, for products that track batches.

    What is left of each batch is attributed first-expired-first-out from the balance (the
    newest batches hold what is on the shelf), so sales need not name batches.
    """

    __tablename__ = "stock_batches"
    __table_args__ = (
        Index("ix_stock_batches_store_product", "store_id", "product_id", "expiry_date"),
        Index("ix_stock_batches_expiry", "expiry_date"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="RESTRICT"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    batch_no: Mapped[str] = mapped_column(String(64), default="")
    expiry_date: Mapped[date]
    quantity_received: Mapped[int]
    quantity_written_off: Mapped[int] = mapped_column(default=0)
    received_at: Mapped[datetime]
    document_type: Mapped[str | None] = mapped_column(String(32))
    document_id: Mapped[str | None] = mapped_column(String(64))
    #: set when nothing of the batch is left to sell (written off or sold through)
    closed_at: Mapped[datetime | None]


class AlertRoute(Base):
    """Who hears about stock alerts: people by role (in-app, email, SMS), or a group-chat robot
    (WeCom, DingTalk, Feishu webhook), for one store or every store, at once or in a daily
    digest. With no route for a store, users who may read alerts there get in-app and email."""

    __tablename__ = "stock_alert_routes"
    __table_args__ = (
        CheckConstraint("target IN ('role', 'robot')", name="target_valid"),
        CheckConstraint("mode IN ('immediate', 'digest')", name="mode_valid"),
        Index("ix_stock_alert_routes_store", "store_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    #: None: every store
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    #: alert kinds this route carries; empty: all
    kinds: Mapped[list[Any]] = mapped_column(JSONDoc, default=list)
    #: role | robot
    target: Mapped[str] = mapped_column(String(8))
    role_id: Mapped[int | None] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"))
    #: for role targets: in_app, email, sms
    channels: Mapped[list[Any]] = mapped_column(JSONDoc, default=list)
    #: for robot targets: wecom | dingtalk | feishu
    robot_kind: Mapped[str | None] = mapped_column(String(16))
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    #: the signing secret (DingTalk, Feishu), encrypted at rest
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    #: immediate | digest (one message a day listing what is open)
    mode: Mapped[str] = mapped_column(String(16), default="immediate")
    is_active: Mapped[bool] = mapped_column(default=True)
    last_digest_on: Mapped[date | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

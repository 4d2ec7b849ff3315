"""Buying and moving goods: suppliers, purchase orders, transfers between stores, stocktakes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from selfmart.db import Base, JSONDoc
from selfmart.models.mixins import Timestamps


class Supplier(Timestamps, Base):
    __tablename__ = "suppliers"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    contact_name: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(254))
    address: Mapped[str] = mapped_column(String(300), default="")
    #: e.g. "prepaid", "cod", "net30": free text shown on purchase orders
    payment_terms: Mapped[str] = mapped_column(String(100), default="")
    #: days of credit the supplier gives (0 = pay on delivery)
    payment_days: Mapped[int] = mapped_column(default=0)
    #: active | inactive
    status: Mapped[str] = mapped_column(String(16), default="active")
    note: Mapped[str] = mapped_column(Text, default="")
    #: what a settlement statement charges: goods received (purchase receipts at the order's
    #: cost) | consignment (goods sold, at the supplier's cost)
    settlement_basis: Mapped[str] = mapped_column(String(16), default="received")
    #: stocktake losses and write-offs of the supplier's products are deducted from what is owed
    shrinkage_borne: Mapped[bool] = mapped_column(default=False)

    products: Mapped[list[SupplierProduct]] = relationship(
        lazy="raise", cascade="all, delete-orphan", back_populates="supplier"
    )


class SupplierProduct(Base):
    """A product a supplier delivers: its cost to us and how long it takes to arrive."""

    __tablename__ = "supplier_products"
    __table_args__ = (
        UniqueConstraint("supplier_id", "product_id"),
        Index("ix_supplier_products_product", "product_id"),
        CheckConstraint("cost_fen >= 0", name="cost_nonnegative"),
        CheckConstraint("lead_time_days >= 0", name="lead_time_nonnegative"),
        CheckConstraint("min_order_qty >= 1", name="min_order_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    supplier_sku: Mapped[str] = mapped_column(String(64), default="")
    cost_fen: Mapped[int]
    lead_time_days: Mapped[int] = mapped_column(default=1)
    #: order in multiples of this (a case of 24)
    min_order_qty: Mapped[int] = mapped_column(default=1)
    #: the supplier reorder suggestions pick for this product
    is_preferred: Mapped[bool] = mapped_column(default=False)

    supplier: Mapped[Supplier] = relationship(lazy="raise", back_populates="products")


class PurchaseOrder(Timestamps, Base):
    __tablename__ = "purchase_orders"
    __table_args__ = (
        Index("ix_purchase_orders_store_status", "store_id", "status"),
        Index("ix_purchase_orders_supplier", "supplier_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="RESTRICT"))
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id", ondelete="RESTRICT"))
    #: draft | submitted | partially_received | received | closed | cancelled
    status: Mapped[str] = mapped_column(String(24), default="draft")
    expected_on: Mapped[date | None]
    note: Mapped[str] = mapped_column(Text, default="")
    total_fen: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    submitted_at: Mapped[datetime | None]
    received_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]

    lines: Mapped[list[PurchaseOrderLine]] = relationship(
        lazy="raise",
        cascade="all, delete-orphan",
        back_populates="order",
        order_by="PurchaseOrderLine.id",
    )


class PurchaseOrderLine(Base):
    __tablename__ = "purchase_order_lines"
    __table_args__ = (
        UniqueConstraint("purchase_order_id", "product_id"),
        CheckConstraint("quantity_ordered > 0", name="ordered_positive"),
        CheckConstraint("quantity_received >= 0", name="received_nonnegative"),
        CheckConstraint("cost_fen >= 0", name="cost_nonnegative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_order_id: Mapped[int] = mapped_column(
        ForeignKey("purchase_orders.id", ondelete="CASCADE")
    )
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    quantity_ordered: Mapped[int]
    quantity_received: Mapped[int] = mapped_column(default=0)
    cost_fen: Mapped[int]

    order: Mapped[PurchaseOrder] = relationship(lazy="raise", back_populates="lines")


class StockTransfer(Timestamps, Base):
    """Goods sent from one store to another: out at the source, in transit, in at the target."""

    __tablename__ = "stock_transfers"
    __table_args__ = (
        Index("ix_stock_transfers_from", "from_store_id", "status"),
        Index("ix_stock_transfers_to", "to_store_id", "status"),
        CheckConstraint("from_store_id <> to_store_id", name="distinct_stores"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    from_store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="RESTRICT"))
    to_store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="RESTRICT"))
    #: draft | in_transit | partially_received | received | cancelled
    status: Mapped[str] = mapped_column(String(24), default="draft")
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(100), default="")
    shipped_at: Mapped[datetime | None]
    received_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]

    lines: Mapped[list[StockTransferLine]] = relationship(
        lazy="raise",
        cascade="all, delete-orphan",
        back_populates="transfer",
        order_by="StockTransferLine.id",
    )


class StockTransferLine(Base):
    __tablename__ = "stock_transfer_lines"
    __table_args__ = (
        UniqueConstraint("transfer_id", "product_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "quantity_received IS NULL"
            " OR (quantity_received >= 0 AND quantity_received <= quantity)",
            name="received_within_quantity",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("stock_transfers.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    quantity: Mapped[int]
    #: what has arrived so far, over one or more receipts (None until the first); less than
    #: `quantity` once the transfer is received means goods were lost on the way
    quantity_received: Mapped[int | None]

    transfer: Mapped[StockTransfer] = relationship(lazy="raise", back_populates="lines")


class Stocktake(Timestamps, Base):
    """A count of a store's shelves (all of it, or some categories), then posted to the ledger."""

    __tablename__ = "stocktakes"
    __table_args__ = (Index("ix_stocktakes_store_status", "store_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="RESTRICT"))
    #: counting | posted | cancelled
    status: Mapped[str] = mapped_column(String(16), default="counting")
    #: category ids counted (with their sub-categories); empty means the whole store
    category_ids: Mapped[list[Any]] = mapped_column(JSONDoc, default=list)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(100), default="")
    posted_at: Mapped[datetime | None]
    posted_by: Mapped[str | None] = mapped_column(String(100))
    cancelled_at: Mapped[datetime | None]

    lines: Mapped[list[StocktakeLine]] = relationship(
        lazy="raise",
        cascade="all, delete-orphan",
        back_populates="stocktake",
        order_by="StocktakeLine.id",
    )


class StocktakeLine(Base):
    """One product to count. The variance is measured against the book quantity at the moment
    the count was entered, so sales between the count and the posting are not mistaken for loss."""

    __tablename__ = "stocktake_lines"
    __table_args__ = (
        UniqueConstraint("stocktake_id", "product_id"),
        CheckConstraint("counted_qty IS NULL OR counted_qty >= 0", name="counted_nonnegative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    stocktake_id: Mapped[int] = mapped_column(ForeignKey("stocktakes.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    #: the book quantity when the stocktake started (shown to counters as a guide)
    expected_qty: Mapped[int]
    counted_qty: Mapped[int | None]
    #: the book quantity at the moment the count was entered
    book_qty_at_count: Mapped[int | None]
    counted_at: Mapped[datetime | None]
    counted_by: Mapped[str | None] = mapped_column(String(100))

    stocktake: Mapped[Stocktake] = relationship(lazy="raise", back_populates="lines")

"""The chain-wide catalogue: products, their barcodes, categories, tags and images, and
which stores list each product at which price."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from selfmart.db import Base
from selfmart.kit.time import utcnow
from selfmart.models.mixins import Timestamps

#: Categories nest at most this deep (1 = top level).
MAX_CATEGORY_DEPTH = 3


class Category(Timestamps, Base):
    """A node of the category tree (饮料 › 碳酸饮料 › 可乐), at most three levels deep."""

    __tablename__ = "categories"
    __table_args__ = (
        CheckConstraint(f"depth >= 1 AND depth <= {MAX_CATEGORY_DEPTH}", name="depth_range"),
        UniqueConstraint("parent_id", "name"),
        Index("ix_categories_parent_sort", "parent_id", "sort_order"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("categories.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    #: 1 for a top-level category.
    depth: Mapped[int] = mapped_column(default=1)
    #: "/1/5/9/": ids from the root down to this node, so a sub-tree is one LIKE query.
    path: Mapped[str] = mapped_column(String(64), default="/", index=True)
    sort_order: Mapped[int] = mapped_column(default=0)


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    color: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProductTag(Base):
    __tablename__ = "product_tags"

    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(
        ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Product(Timestamps, Base):
    """A sellable item, chain-wide. Prices are integer fen."""

    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("price_fen >= 0", name="price_fen_nonneg"),
        CheckConstraint("cost_fen >= 0", name="cost_fen_nonneg"),
        CheckConstraint("member_price_fen IS NULL OR member_price_fen >= 0", name="member_nonneg"),
        CheckConstraint("shelf_life_days IS NULL OR shelf_life_days > 0", name="shelf_life_pos"),
        CheckConstraint("low_stock_threshold >= 0", name="threshold_nonneg"),
        CheckConstraint("status IN ('on_sale', 'off_sale')", name="status_valid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    brand: Mapped[str] = mapped_column(String(100), default="", index=True)
    #: 规格, e.g. "500ml", "24罐/箱".
    spec: Mapped[str] = mapped_column(String(64), default="")
    unit: Mapped[str] = mapped_column(String(16), default="件")
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("categories.id", ondelete="RESTRICT"), index=True
    )
    #: Retail price.
    price_fen: Mapped[int]
    cost_fen: Mapped[int] = mapped_column(default=0)
    member_price_fen: Mapped[int | None]
    shelf_life_days: Mapped[int | None]
    #: Receipts of this product carry expiry batches.
    track_batches: Mapped[bool] = mapped_column(default=False)
    #: Chain-wide low-stock threshold; a store may override it (StoreProduct).
    low_stock_threshold: Mapped[int] = mapped_column(default=0)
    #: on_sale | off_sale
    status: Mapped[str] = mapped_column(String(16), default="on_sale", index=True)
    #: Search helpers kept up to date by the catalog service from name and brand:
    #: "kekoukele" and "kkkl" for 可口可乐.
    pinyin_full: Mapped[str] = mapped_column(String(600), default="", index=True)
    pinyin_initials: Mapped[str] = mapped_column(String(200), default="", index=True)

    category: Mapped[Category | None] = relationship(lazy="raise")
    barcodes: Mapped[list[ProductBarcode]] = relationship(
        lazy="raise",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ProductBarcode.id",
    )
    tags: Mapped[list[Tag]] = relationship(
        secondary="product_tags", lazy="raise", order_by="Tag.name", passive_deletes=True
    )
    images: Mapped[list[ProductImage]] = relationship(
        lazy="raise",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by=lambda: [ProductImage.sort_order, ProductImage.id],
    )


class ProductBarcode(Base):
    """One of a product's barcodes; a code belongs to one product chain-wide."""

    __tablename__ = "product_barcodes"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(32), unique=True)
    #: ean13 | ean8 | upca | internal
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProductImage(Base):
    __tablename__ = "product_images"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    #: Keys in the configured media storage (local disk or S3-compatible).
    storage_key: Mapped[str] = mapped_column(String(255))
    thumb_key: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int]
    height: Mapped[int]
    size_bytes: Mapped[int]
    sort_order: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoreProduct(Timestamps, Base):
    """A product listed in one store, with an optional store price and threshold override."""

    __tablename__ = "store_products"
    __table_args__ = (
        UniqueConstraint("store_id", "product_id"),
        CheckConstraint("store_price_fen IS NULL OR store_price_fen >= 0", name="price_nonneg"),
        CheckConstraint(
            "low_stock_threshold IS NULL OR low_stock_threshold >= 0", name="threshold_nonneg"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    is_listed: Mapped[bool] = mapped_column(default=True)
    #: None: the product's retail price applies.
    store_price_fen: Mapped[int | None]
    #: None: the product's chain-wide threshold applies.
    low_stock_threshold: Mapped[int | None]

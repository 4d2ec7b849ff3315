"""Sales summaries: per store and local day (in the store's zone), kept by the analytics
refresh job so that dashboards never scan raw order lines.

Every row is a pure function of the raw orders and refunds of its store and day, so the job
recomputes whole days (idempotent) and `selfmart check-analytics` can compare them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from selfmart.db import Base, BigIntId
from selfmart.models.order import Order


class SalesDay(Base):
    """A store's day: orders paid that day and refunds that went through that day."""

    __tablename__ = "analytics_sales_days"
    __table_args__ = (Index("ix_analytics_sales_days_day", "day", "store_id"),)

    store_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    #: the local date in the store's time zone
    day: Mapped[date] = mapped_column(primary_key=True)
    orders: Mapped[int] = mapped_column(default=0)
    sales_fen: Mapped[int] = mapped_column(default=0)
    #: units sold (quantity less units taken off the bill)
    items: Mapped[int] = mapped_column(default=0)
    member_orders: Mapped[int] = mapped_column(default=0)
    member_sales_fen: Mapped[int] = mapped_column(default=0)
    refunds: Mapped[int] = mapped_column(default=0)
    refunds_fen: Mapped[int] = mapped_column(default=0)


class SalesMonth(Base):
    """A store's calendar month (in its zone): the sum of its `SalesDay` rows, so that a
    chain's year is read as 50 x 12 rows rather than 50 x 365. Recounted from the day rows
    whenever the refresh or the rebuild rewrites a day of the month. Money is 64-bit: a
    month of a busy store may pass 2^31 fen."""

    __tablename__ = "analytics_sales_months"

    store_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    #: the month's first local day
    month: Mapped[date] = mapped_column(primary_key=True)
    orders: Mapped[int] = mapped_column(default=0)
    sales_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    items: Mapped[int] = mapped_column(default=0)
    member_orders: Mapped[int] = mapped_column(default=0)
    member_sales_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    refunds: Mapped[int] = mapped_column(default=0)
    refunds_fen: Mapped[int] = mapped_column(BigInteger, default=0)


class ProductDay(Base):
    """A product's day in a store. `category_id` is the product's category when the day was
    summarised (a later move of the product shows after `selfmart rebuild-analytics`)."""

    __tablename__ = "analytics_product_days"
    __table_args__ = (
        # Covering on PostgreSQL (migration ana_0007): a product's statistics read by an
        # index-only scan rather than a heap fetch per store day.
        Index(
            "ix_analytics_product_days_product",
            "product_id",
            "day",
            postgresql_include=[
                "store_id",
                "orders",
                "quantity",
                "sales_fen",
                "refunds",
                "refunds_fen",
            ],
        ),
        Index("ix_analytics_product_days_category", "category_id", "day"),
        Index("ix_analytics_product_days_day", "day", "store_id"),
    )

    store_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    day: Mapped[date] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    category_id: Mapped[int | None]
    #: orders with at least one unit of the product
    orders: Mapped[int] = mapped_column(default=0)
    quantity: Mapped[int] = mapped_column(default=0)
    sales_fen: Mapped[int] = mapped_column(default=0)
    refund_qty: Mapped[int] = mapped_column(default=0)
    refunds_fen: Mapped[int] = mapped_column(default=0)
    #: refunds with at least one line of the product
    refunds: Mapped[int] = mapped_column(default=0, server_default="0")


class ProductMember(Base):
    """A paying member's day in a store with a product: distinct members of a product over
    any window (they do not add up over days or stores)."""

    __tablename__ = "analytics_product_members"
    __table_args__ = (
        # Covering on PostgreSQL: distinct members of a window by an index-only scan.
        Index(
            "ix_analytics_product_members_product",
            "product_id",
            "day",
            postgresql_include=["store_id", "member_id"],
        ),
    )

    store_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    day: Mapped[date] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    member_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    #: the member's orders with the product that day
    orders: Mapped[int] = mapped_column(default=0)


class CategoryDay(Base):
    """A category's day in a store, with everything below it: an order counts once in every
    category on the path from each of its products' categories up to the root, so a
    subtree's figures are its top category's row (orders do not add up over products).
    The tree is the one at the time the day was summarised; after moving a category or a
    product, `selfmart rebuild-analytics` restates history."""

    __tablename__ = "analytics_category_days"
    __table_args__ = (
        # Covering on PostgreSQL: a category's year is read by an index-only scan (18,000 rows
        # for 50 stores) instead of a heap fetch per row.
        Index(
            "ix_analytics_category_days_category",
            "category_id",
            "day",
            postgresql_include=[
                "store_id",
                "orders",
                "items",
                "sales_fen",
                "refunds",
                "refunds_fen",
            ],
        ),
    )

    store_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    day: Mapped[date] = mapped_column(primary_key=True)
    category_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    #: orders with at least one line of the subtree
    orders: Mapped[int] = mapped_column(default=0)
    items: Mapped[int] = mapped_column(default=0)
    sales_fen: Mapped[int] = mapped_column(default=0)
    #: refunds with at least one line of the subtree, and what those lines gave back
    refunds: Mapped[int] = mapped_column(default=0)
    refunds_fen: Mapped[int] = mapped_column(default=0)


class CategoryMember(Base):
    """A paying member's day in a store with a product of the category's subtree."""

    __tablename__ = "analytics_category_members"
    __table_args__ = (
        # Covering on PostgreSQL: distinct members of a window by an index-only scan.
        Index(
            "ix_analytics_category_members_category",
            "category_id",
            "day",
            postgresql_include=["store_id", "member_id"],
        ),
    )

    store_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    day: Mapped[date] = mapped_column(primary_key=True)
    category_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    member_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    orders: Mapped[int] = mapped_column(default=0)


class MemberDay(Base):
    """A paying member's day in a store: distinct members over any window come from here."""

    __tablename__ = "analytics_member_days"
    __table_args__ = (
        Index("ix_analytics_member_days_day", "day", "store_id"),
        # A member's days: the live tail's member correction, earlier days of repeat members.
        Index("ix_analytics_member_days_member", "member_id", "day"),
    )

    store_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    day: Mapped[date] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    orders: Mapped[int] = mapped_column(default=0)
    sales_fen: Mapped[int] = mapped_column(default=0)


class HourCell(Base):
    """Orders of a store's day by local hour and payment method: the heatmap and the mix."""

    __tablename__ = "analytics_hour_cells"

    store_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    day: Mapped[date] = mapped_column(primary_key=True)
    hour: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    payment_method: Mapped[str] = mapped_column(String(16), primary_key=True)
    orders: Mapped[int] = mapped_column(default=0)
    sales_fen: Mapped[int] = mapped_column(default=0)


class MemberCount(Base):
    """Distinct paying members of a store (or of the whole chain, store_id 0) over one day, ISO
    week, calendar month or year: distinct counts do not add up, so a dashboard asking for a
    chain's year would otherwise count a year of member days. Recomputed from
    `analytics_member_days` whenever the refresh or the rebuild rewrites a day of the period."""

    __tablename__ = "analytics_member_counts"

    #: the store, or 0 for every store of the chain
    store_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    #: day | week | month | year
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    #: the period's first local day
    start: Mapped[date] = mapped_column(primary_key=True)
    members: Mapped[int] = mapped_column(default=0)


class RefreshState(Base):
    """The refresh job's high-water mark in the orders' change feed (order_events ids):
    every change up to it is in the summaries."""

    __tablename__ = "analytics_refresh_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigIntId, default=0)
    refreshed_at: Mapped[datetime | None]
    days_refreshed: Mapped[int] = mapped_column(default=0)


#: The summaries recompute a store's day from the orders paid in it; this index finds them
#: without scanning the store's other orders. Declared here, with the analytics migration
#: that creates it; the intake writes no extra statement for it.
Index("ix_orders_store_paid", Order.store_id, Order.paid_at)

"""Request and response bodies of the statistics API. Money in fen; days are local dates in
each store's own zone."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from selfmart.kit.schema import Schema


class Figures(Schema):
    """A period's figures. For a product: orders are orders with the product, items its units,
    refunds the refunds with a line of it and refunds_fen what those lines gave back, paying
    members the members with an order of it. For a category the same over every product below
    it, each order, refund and member counted once."""

    orders: int
    sales_fen: int
    #: succeeded refunds
    refunds: int
    refunds_fen: int
    net_sales_fen: int
    #: sales over orders, rounded half up to the fen (0 when there are no orders)
    avg_order_value_fen: int
    items: int
    items_per_order: Decimal
    #: distinct members who paid for at least one order (with the product or the category)
    paying_members: int
    #: sales of members' orders (null for a product or a category)
    member_sales_fen: int | None


class PeriodFigures(Schema):
    period: str
    start: date
    end: date
    current: Figures
    previous: Figures
    last_year: Figures


class WindowFigures(Schema):
    start: date
    end: date
    current: Figures
    #: the same number of periods just before
    previous: Figures
    #: the same periods a year before
    last_year: Figures


class SalesSeries(Schema):
    granularity: str
    #: stores | category | product
    scope: str
    store_ids: list[int]
    #: the window widened to whole periods
    start: date
    end: date
    periods: list[PeriodFigures]
    total: WindowFigures


class TodayFigures(Schema):
    """Today so far in each store's own zone, including orders the summaries have not taken
    in yet."""

    as_of: datetime
    store_ids: list[int]
    figures: Figures


class ProductRank(Schema):
    product_id: int
    name: str
    spec: str
    orders: int
    quantity: int
    sales_fen: int
    refund_qty: int
    refunds_fen: int
    net_sales_fen: int


class CategoryShare(Schema):
    #: the top-level category; null for products in none
    category_id: int | None
    name: str | None
    quantity: int
    sales_fen: int
    refunds_fen: int
    net_sales_fen: int
    #: share of the window's net sales in basis points (10000 = 100%)
    share_bp: int


class HeatCell(Schema):
    #: ISO weekday, 1 = Monday
    weekday: int
    hour: int
    orders: int
    sales_fen: int


class PaymentShare(Schema):
    payment_method: str
    orders: int
    sales_fen: int


class StockFigures(Schema):
    """A store's or a category's ledger over the window (units unless _fen)."""

    #: products with any movement up to the window's end
    products: int
    opening_qty: int
    #: purchase receipts and transfers in
    received_qty: int
    #: sales less customer returns
    sold_qty: int
    #: stocktake losses and write-offs less stocktake gains
    shrinkage_qty: int
    #: shrinkage at the products' cost price now
    shrinkage_fen: int
    closing_qty: int
    #: closing units at the products' cost price now
    stock_value_fen: int
    #: sold / (opening + received), basis points, half up; null when nothing was available
    sell_through_bp: int | None
    #: average stock over units sold per day, to 0.1 day; null when nothing sold
    turnover_days: Decimal | None


class StoreStock(StockFigures):
    store_id: int
    name: str


class CategoryStock(StockFigures):
    #: the product's own category; null for products in none
    category_id: int | None
    name: str | None


class StockAnalysis(Schema):
    start: date
    end: date
    days: int
    store_ids: list[int]
    by_store: list[StoreStock]
    by_category: list[CategoryStock]
    total: StockFigures


class MemberFigures(Schema):
    """Members versus guests over a period. Sales are paid orders' totals before refunds."""

    orders: int
    sales_fen: int
    member_orders: int
    member_sales_fen: int
    #: orders without a member (guests)
    guest_orders: int
    guest_sales_fen: int
    #: members registered in the period (merged-away duplicates excluded)
    new_members: int
    #: distinct members who paid for at least one order
    paying_members: int
    #: paying members who had also paid before the period (in the same stores)
    repeat_members: int
    #: repeat_members / paying_members, 4 decimals (null when no member paid)
    repurchase_rate: Decimal | None


class MemberPeriod(Schema):
    period: str
    start: date
    end: date
    current: MemberFigures
    previous: MemberFigures


class MemberWindow(Schema):
    start: date
    end: date
    current: MemberFigures
    #: the same number of periods just before
    previous: MemberFigures


class MemberSeries(Schema):
    granularity: str
    store_ids: list[int]
    #: the window widened to whole periods
    start: date
    end: date
    periods: list[MemberPeriod]
    total: MemberWindow

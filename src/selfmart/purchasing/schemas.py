"""Request and response bodies of the purchasing API."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import EmailStr, Field

from selfmart.kit.ids import Id
from selfmart.kit.money import Fen
from selfmart.kit.schema import InSchema, Schema

Quantity = Annotated[int, Field(gt=0, le=1_000_000, strict=True, description="whole units > 0")]
SettlementBasis = Literal["received", "consignment"]
Code = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]


# --- suppliers -----------------------------------------------------------------------------


class SupplierCreate(InSchema):
    code: Code
    name: Annotated[str, Field(min_length=1, max_length=200)]
    contact_name: Annotated[str, Field(max_length=100)] = ""
    phone: Annotated[str | None, Field(max_length=32, pattern=r"^[0-9+\- ]{5,32}$")] = None
    email: Annotated[EmailStr, Field(max_length=254)] | None = None
    address: Annotated[str, Field(max_length=300)] = ""
    payment_terms: Annotated[str, Field(max_length=100)] = ""
    payment_days: Annotated[int, Field(ge=0, le=365, strict=True)] = 0
    note: Annotated[str, Field(max_length=2000)] = ""
    #: what settlement charges: goods received, or goods sold (consignment)
    settlement_basis: SettlementBasis = "received"
    #: stocktake losses and write-offs of its products are deducted from what is owed
    shrinkage_borne: bool = False


class SupplierUpdate(InSchema):
    name: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    contact_name: Annotated[str | None, Field(max_length=100)] = None
    phone: Annotated[str | None, Field(max_length=32, pattern=r"^[0-9+\- ]{5,32}$")] = None
    email: Annotated[EmailStr, Field(max_length=254)] | None = None
    address: Annotated[str | None, Field(max_length=300)] = None
    payment_terms: Annotated[str | None, Field(max_length=100)] = None
    payment_days: Annotated[int | None, Field(ge=0, le=365, strict=True)] = None
    status: Literal["active", "inactive"] | None = None
    note: Annotated[str | None, Field(max_length=2000)] = None
    settlement_basis: SettlementBasis | None = None
    shrinkage_borne: bool | None = None


class SupplierRead(Schema):
    id: int
    code: str
    name: str
    contact_name: str
    phone: str | None
    email: str | None
    address: str
    payment_terms: str
    payment_days: int
    status: str
    note: str
    settlement_basis: str
    shrinkage_borne: bool
    created_at: datetime
    updated_at: datetime


class SupplierProductIn(InSchema):
    cost_fen: Fen
    lead_time_days: Annotated[int, Field(ge=0, le=365, strict=True)] = 1
    min_order_qty: Annotated[int, Field(ge=1, le=100_000, strict=True)] = 1
    supplier_sku: Annotated[str, Field(max_length=64)] = ""
    is_preferred: bool = False


class SupplierProductRead(Schema):
    supplier_id: int
    product_id: int
    product_name: str
    #: the product's spec and first barcode: same-name products are told apart by them
    spec: str = ""
    barcode: str | None = None
    supplier_sku: str
    cost_fen: int
    lead_time_days: int
    min_order_qty: int
    is_preferred: bool


class SupplierDetail(SupplierRead):
    products: list[SupplierProductRead]


# --- purchase orders -----------------------------------------------------------------------


class POLineIn(InSchema):
    product_id: Id
    quantity: Quantity
    #: default: the supplier's cost for the product, else the product's cost
    cost_fen: Fen | None = None


class POCreate(InSchema):
    store_id: Id
    supplier_id: Id
    lines: Annotated[list[POLineIn], Field(min_length=1, max_length=500)]
    expected_on: date | None = None
    note: Annotated[str, Field(max_length=2000)] = ""


class POUpdate(InSchema):
    lines: Annotated[list[POLineIn] | None, Field(min_length=1, max_length=500)] = None
    expected_on: date | None = None
    note: Annotated[str | None, Field(max_length=2000)] = None


class POLineRead(Schema):
    id: int
    product_id: int
    product_name: str
    #: the product's spec and first barcode: same-name products are told apart by them
    spec: str = ""
    barcode: str | None = None
    quantity_ordered: int
    quantity_received: int
    cost_fen: int
    amount_fen: int


class PORead(Schema):
    id: int
    number: str
    store_id: int
    supplier_id: int
    supplier_name: str
    status: str
    expected_on: date | None
    note: str
    total_fen: int
    created_by: str
    created_at: datetime
    submitted_at: datetime | None
    received_at: datetime | None
    closed_at: datetime | None
    cancelled_at: datetime | None


class PODetail(PORead):
    lines: list[POLineRead]


class ReceiveLineIn(InSchema):
    product_id: Id
    quantity: Quantity
    expiry_date: date | None = None
    batch_no: Annotated[str, Field(max_length=64)] = ""


class POReceive(InSchema):
    lines: Annotated[list[ReceiveLineIn], Field(min_length=1, max_length=500)]
    note: Annotated[str, Field(max_length=300)] = ""


class ReturnLineIn(InSchema):
    product_id: Id
    quantity: Quantity


class SupplierReturnIn(InSchema):
    """Goods sent back to a supplier from one store's shelves."""

    store_id: Id
    lines: Annotated[list[ReturnLineIn], Field(min_length=1, max_length=500)]
    note: Annotated[str, Field(max_length=200)] = ""


class ReturnLineRead(Schema):
    product_id: int
    quantity: int
    balance_after: int


class SupplierReturnRead(Schema):
    number: str
    supplier_id: int
    store_id: int
    lines: list[ReturnLineRead]


class NoteIn(InSchema):
    note: Annotated[str, Field(max_length=300)] = ""


# --- reorder -------------------------------------------------------------------------------


class ReorderParams(InSchema):
    numbers_from_text = True  # read from the query string

    #: days of sales the velocity is measured over
    window_days: Annotated[int, Field(ge=1, le=365)] = 28
    #: days of sales kept in hand as safety stock
    safety_days: Annotated[int, Field(ge=0, le=90)] = 3
    #: days of sales each order should cover once it arrives (the review period)
    cover_days: Annotated[int, Field(ge=1, le=180)] = 7


class ReorderSuggestionRead(Schema):
    product_id: int
    product_name: str
    #: the product's spec and first barcode: same-name products are told apart by them
    spec: str = ""
    barcode: str | None = None
    supplier_id: int
    supplier_name: str
    on_hand: int
    on_order: int
    #: units sold net of returns in the window
    sold_in_window: int
    #: the stock analysis's shrinkage in the window: stocktake losses and write-offs less
    #: stocktake gains (negative when gains exceed losses)
    shrunk_in_window: int
    #: units sold per day (sales only)
    daily_velocity: float
    #: (sold + shrinkage, when positive) per day: what the reorder point and order-up-to use
    daily_outflow: float
    #: the stock analysis's turnover days over the window; null when nothing sold
    turnover_days: Decimal | None
    lead_time_days: int
    safety_stock: int
    reorder_point: int
    suggested_qty: int
    cost_fen: int
    amount_fen: int


class ReorderToOrders(ReorderParams):
    numbers_from_text = False  # a JSON body
    #: only these products (default: every suggestion)
    product_ids: Annotated[list[Id] | None, Field(max_length=1000)] = None
    #: quantities to order instead of the suggestion, by product id
    quantities: dict[int, Quantity] | None = None


# --- transfers -----------------------------------------------------------------------------


class TransferLineIn(InSchema):
    product_id: Id
    quantity: Quantity


class TransferCreate(InSchema):
    from_store_id: Id
    to_store_id: Id
    lines: Annotated[list[TransferLineIn], Field(min_length=1, max_length=500)]
    note: Annotated[str, Field(max_length=2000)] = ""


class TransferReceiveLine(InSchema):
    product_id: Id
    quantity: Annotated[int, Field(ge=0, le=1_000_000, strict=True)]


class TransferReceive(InSchema):
    #: what arrives now, per product (at most what is still in transit on that line)
    lines: Annotated[list[TransferReceiveLine], Field(max_length=500)] = []
    #: false: this receipt finishes the transfer; products left out bring everything still in
    #: transit, and what a listed line falls short by was lost on the way. true: only the
    #: listed quantities arrived; the rest stays in transit for a later receipt (the transfer is
    #: partially received until every unit has arrived or a final receipt is made).
    partial: bool = False
    note: Annotated[str, Field(max_length=300)] = ""


class TransferLineRead(Schema):
    product_id: int
    product_name: str
    #: the product's spec and first barcode: same-name products are told apart by them
    spec: str = ""
    barcode: str | None = None
    quantity: int
    #: received so far (over every receipt); None before the first receipt
    quantity_received: int | None
    #: shipped and not yet received (0 unless the transfer is in transit or partially received)
    quantity_in_transit: int
    #: shipped and never received: known once the transfer is received
    quantity_lost: int


class TransferRead(Schema):
    id: int
    number: str
    from_store_id: int
    to_store_id: int
    status: str
    note: str
    created_by: str
    created_at: datetime
    shipped_at: datetime | None
    received_at: datetime | None
    cancelled_at: datetime | None


class TransferDetail(TransferRead):
    lines: list[TransferLineRead]


# --- stocktakes ----------------------------------------------------------------------------


class StocktakeCreate(InSchema):
    store_id: Id
    #: count only these categories (with their sub-categories); empty: the whole store
    category_ids: Annotated[list[Id], Field(max_length=100)] = []
    note: Annotated[str, Field(max_length=2000)] = ""


class CountIn(InSchema):
    product_id: Id | None = None
    barcode: Annotated[str | None, Field(min_length=1, max_length=32)] = None
    counted_qty: Annotated[int, Field(ge=0, le=1_000_000, strict=True)]


class CountsIn(InSchema):
    counts: Annotated[list[CountIn], Field(min_length=1, max_length=2000)]


class StocktakePost(InSchema):
    #: what to do with products nobody counted: leave them as booked, or book them as zero
    uncounted: Literal["ignore", "zero"] = "ignore"


class StocktakeLineRead(Schema):
    product_id: int
    product_name: str
    #: the product's spec and first barcode: same-name products are told apart by them
    spec: str = ""
    barcode: str | None = None
    expected_qty: int
    counted_qty: int | None
    book_qty_at_count: int | None
    variance: int | None
    variance_cost_fen: int | None
    counted_at: datetime | None
    counted_by: str | None


class StocktakeRead(Schema):
    id: int
    number: str
    store_id: int
    status: str
    category_ids: list[int]
    note: str
    created_by: str
    created_at: datetime
    posted_at: datetime | None
    posted_by: str | None
    cancelled_at: datetime | None


class VarianceSummary(Schema):
    lines: int
    counted: int
    gains: int
    losses: int
    gain_qty: int
    loss_qty: int
    net_cost_fen: int


class StocktakeDetail(StocktakeRead):
    summary: VarianceSummary
    lines: list[StocktakeLineRead]

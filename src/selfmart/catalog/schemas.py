"""Request and response bodies of the catalog API. Money is integer fen; a float is refused."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from selfmart.kit.ids import Id
from selfmart.kit.rowimport import ImportRowError
from selfmart.kit.schema import InSchema, Schema

#: Fen in a request body: a JSON integer only (3.5 or "350" is a 422 naming the field).
StrictFen = Annotated[int, Field(strict=True, ge=0, le=10_000_000_000)]
StrictCount = Annotated[int, Field(strict=True, ge=0, le=10_000_000)]
ProductStatus = Literal["on_sale", "off_sale"]
#: ok: above the low-stock threshold; low: at or below it but above zero; out: zero or below;
#: negative: below zero (sold past the shelf). The same as inventory.service.STOCK_STATES.
StockState = Literal["ok", "low", "out", "negative"]
PriceField = Literal["price_fen", "member_price_fen", "cost_fen"]
SORTABLE = ("id", "name", "brand", "price_fen", "created_at", "updated_at")
SortKey = Literal[
    "id",
    "-id",
    "name",
    "-name",
    "brand",
    "-brand",
    "price_fen",
    "-price_fen",
    "created_at",
    "-created_at",
    "updated_at",
    "-updated_at",
]


# --- tags, categories -------------------------------------------------------------------


class TagCreate(InSchema):
    name: str = Field(min_length=1, max_length=32)
    color: str | None = Field(None, max_length=16)


class TagUpdate(InSchema):
    name: str | None = Field(None, min_length=1, max_length=32)
    color: str | None = Field(None, max_length=16)


class TagRead(Schema):
    id: int
    name: str
    color: str | None


class CategoryCreate(InSchema):
    name: str = Field(min_length=1, max_length=64)
    parent_id: Id | None = None
    #: Position among its siblings; appended at the end when omitted.
    sort_order: int | None = Field(None, ge=0, le=1_000_000, strict=True)


class CategoryUpdate(InSchema):
    name: str | None = Field(None, min_length=1, max_length=64)


class CategoryMove(InSchema):
    #: The new parent; None moves the category to the top level.
    parent_id: Id | None
    #: 0-based position among the new siblings; at the end when omitted.
    position: int | None = Field(None, ge=0, le=1_000_000)


class CategoryReorder(InSchema):
    parent_id: Id | None
    #: Every child of `parent_id`, in the new order.
    ids: list[Id] = Field(min_length=1, max_length=1000)


class CategoryRead(Schema):
    id: int
    parent_id: int | None
    name: str
    depth: int
    sort_order: int


class CategoryNode(CategoryRead):
    product_count: int = 0
    children: list[CategoryNode] = []


# --- images -----------------------------------------------------------------------------


class ImageRead(Schema):
    id: int
    content_type: str
    width: int
    height: int
    size_bytes: int
    sort_order: int
    #: Signed, time-limited URLs (usable in an <img> tag).
    url: str
    thumb_url: str


# --- products -----------------------------------------------------------------------------


class BarcodeRead(Schema):
    code: str
    kind: str


class _ProductFields(InSchema):
    brand: str | None = Field(None, max_length=100)
    spec: str | None = Field(None, max_length=64)
    unit: str | None = Field(None, min_length=1, max_length=16)
    category_id: Id | None = None
    member_price_fen: StrictFen | None = None
    shelf_life_days: Annotated[int, Field(strict=True, ge=1, le=36500)] | None = None
    track_batches: bool | None = None
    low_stock_threshold: StrictCount | None = None
    status: ProductStatus | None = None
    #: GS1 codes (check digit validated) or internal codes starting with a letter.
    barcodes: list[Annotated[str, Field(max_length=64)]] | None = Field(None, max_length=20)
    tag_ids: list[Id] | None = Field(None, max_length=50)


class ProductCreate(_ProductFields):
    name: str = Field(min_length=1, max_length=200)
    price_fen: StrictFen
    cost_fen: StrictFen = 0
    #: The stores that sell the new product; omitted: every active store of the creator's,
    #: [] lists it nowhere yet.
    store_ids: list[Id] | None = Field(None, max_length=1000)


class ProductUpdate(_ProductFields):
    """Only the fields sent are changed; `barcodes` and `tag_ids` replace the whole set."""

    name: str | None = Field(None, min_length=1, max_length=200)
    price_fen: StrictFen | None = None
    cost_fen: StrictFen | None = None


class ProductRead(Schema):
    id: int
    name: str
    brand: str
    spec: str
    unit: str
    category_id: int | None
    price_fen: int
    cost_fen: int
    member_price_fen: int | None
    shelf_life_days: int | None
    track_batches: bool
    low_stock_threshold: int
    status: str
    barcodes: list[BarcodeRead]
    tags: list[TagRead]
    images: list[ImageRead] = []
    created_at: datetime
    updated_at: datetime


class ProductFilter(InSchema):
    """A product search; the same filter selects products for a bulk edit or an export."""

    q: str | None = Field(None, max_length=100, description="name, brand, barcode or pinyin")
    category_id: Id | None = Field(None, description="this category and its sub-categories")
    tag_id: Id | None = None
    status: ProductStatus | None = None
    brand: str | None = Field(None, max_length=100)
    store_id: Id | None = Field(None, description="products listed in this store")
    stock_state: StockState | None = Field(
        None,
        description="in this state in store_id, else in any store the user sees that stocks "
        "or lists the product (low: 0 < on hand <= threshold, the store's override honoured)",
    )
    ids: list[Id] | None = Field(None, max_length=10_000)


# --- store listing ------------------------------------------------------------------------


class ListingUpsert(InSchema):
    is_listed: bool = True
    #: None: the product's retail price applies in this store.
    store_price_fen: StrictFen | None = None
    #: None: the product's chain-wide threshold applies in this store.
    low_stock_threshold: StrictCount | None = None


class ListingRead(Schema):
    store_id: int
    product_id: int
    is_listed: bool
    store_price_fen: int | None
    low_stock_threshold: int | None
    #: What a customer pays in this store (store price, else retail price).
    effective_price_fen: int
    effective_low_stock_threshold: int
    product_name: str


# --- bulk edits ---------------------------------------------------------------------------


class Selection(InSchema):
    """Exactly one of: explicit product ids, or a search filter."""

    ids: list[Id] | None = Field(None, min_length=1, max_length=10_000)
    filter: ProductFilter | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Selection:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give exactly one of `ids` or `filter`")
        return self


class SetPrice(InSchema):
    op: Literal["set_price"]
    field: PriceField = "price_fen"
    amount_fen: StrictFen
    #: Set the store price in this store instead of the chain-wide price (price_fen only).
    store_id: Id | None = None


class AdjustPrice(InSchema):
    op: Literal["adjust_price"]
    field: PriceField = "price_fen"
    #: Add this many fen (negative lowers the price) ...
    by_fen: Annotated[int, Field(strict=True, ge=-10_000_000_000, le=10_000_000_000)] | None = None
    #: ... or change by this percent (-10 = 10% off), rounded half-up to the fen.
    percent: Annotated[Decimal, Field(ge=-100, le=1000, decimal_places=2, max_digits=6)] | None = (
        None
    )
    store_id: Id | None = None

    @model_validator(mode="after")
    def _one_of(self) -> AdjustPrice:
        if (self.by_fen is None) == (self.percent is None):
            raise ValueError("give exactly one of `by_fen` or `percent`")
        return self


class SetStatus(InSchema):
    op: Literal["set_status"]
    status: ProductStatus


class SetThreshold(InSchema):
    op: Literal["set_threshold"]
    #: With store_id: the store's override (None clears it); without: the chain-wide value.
    low_stock_threshold: StrictCount | None
    store_id: Id | None = None


class MoveCategory(InSchema):
    op: Literal["move_category"]
    category_id: Id | None


class AddTags(InSchema):
    op: Literal["add_tags"]
    tag_ids: list[Id] = Field(min_length=1, max_length=50)


class SetListing(InSchema):
    """List the products in stores (so they can be sold there), or unlist them."""

    op: Literal["set_listing"]
    listed: bool
    #: Omitted: every active store of the user's.
    store_ids: list[Id] | None = Field(None, min_length=1, max_length=1000)


BulkAction = Annotated[
    SetPrice | AdjustPrice | SetStatus | SetThreshold | MoveCategory | AddTags | SetListing,
    Field(discriminator="op"),
]


class BulkPreviewRequest(InSchema):
    selection: Selection
    action: BulkAction


class BulkApplyRequest(BulkPreviewRequest):
    #: The `token` of the preview being confirmed; a different outcome now is a 409.
    token: str = Field(min_length=16, max_length=128)


class BulkChange(Schema):
    product_id: int
    product_name: str
    #: spec and first barcode, so same-name products are told apart in the preview
    spec: str = ""
    barcode: str | None = None
    field: str
    store_id: int | None = None
    before: Any
    after: Any


class BulkPreview(Schema):
    selected: int
    changed: int
    changes: list[BulkChange]
    token: str


class BulkResult(Schema):
    changed: int
    changes: list[BulkChange]


# --- import -------------------------------------------------------------------------------

ImportMode = Literal["all_or_nothing", "good_rows_only"]


class ImportStarted(Schema):
    """A large import runs as a job: poll GET /api/v1/jobs/{job_id}; its result is the report."""

    job_id: int
    rows: int


class ImportReport(Schema):
    #: imported (every row), partial (good rows only), rejected (nothing written)
    status: Literal["imported", "partial", "rejected"]
    mode: ImportMode
    total_rows: int
    valid_rows: int
    created: int
    updated: int
    skipped: int
    errors: list[ImportRowError]
    #: More bad cells than the report lists (the first 2,000 are listed).
    errors_truncated: bool = False
    categories_created: list[str] = []
    tags_created: list[str] = []

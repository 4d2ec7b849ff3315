"""Request and response bodies of the settlement API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field

from selfmart.kit.ids import Id
from selfmart.kit.schema import InSchema, Schema

StatementStatus = Literal["draft", "reviewed", "approved", "paid"]
LineKind = Literal["received", "sold", "returned", "shrinkage"]
Note = Annotated[str, Field(max_length=500)]


class StoreSettlementRow(Schema):
    #: None: platform money no store is known for (shown only to users of every store)
    store_id: int | None
    store_name: str
    #: YYYY-MM-DD, or YYYY-MM when grouped by month
    period: str
    channel: str
    #: bill: from a reconciled bill; ours: from our records (not reconciled)
    source: Literal["bill", "ours"]
    lines: int
    sales_fen: int
    refunds_fen: int
    fees_fen: int
    net_fen: int
    fees_estimated: bool


class SettlementTotals(Schema):
    lines: int
    sales_fen: int
    refunds_fen: int
    fees_fen: int
    net_fen: int


class StoreSettlement(Schema):
    rows: list[StoreSettlementRow]
    totals: SettlementTotals


class FeeRow(Schema):
    bill_date: date
    channel: str
    account_id: int
    store_id: int | None
    store_name: str
    lines: int
    sales_fen: int
    refunds_fen: int
    #: what the platform charged (refund lines give fees back: negative)
    fee_fen: int
    #: what the configured rate gives for the same lines
    expected_fee_fen: int
    difference_fen: int
    #: the account's rate now, in basis points (None: none configured)
    rate_bp: int | None
    lines_without_rate: int
    fee_differs: int
    flagged: bool


class StatementCreate(InSchema):
    supplier_id: Id
    period_start: date
    period_end: date
    note: Note = ""


class StatementNote(InSchema):
    note: Note = ""


class StatementPay(InSchema):
    payment_reference: Annotated[str, Field(min_length=1, max_length=100)]
    note: Note = ""


class StatementRead(Schema):
    id: int
    number: str
    supplier_id: int
    supplier_name: str
    period_start: date
    period_end: date
    status: StatementStatus
    basis: str
    shrinkage_borne: bool
    goods_fen: int
    returns_fen: int
    shrinkage_fen: int
    total_fen: int
    note: str
    created_at: datetime
    created_by: str
    generated_at: datetime
    reviewed_at: datetime | None
    reviewed_by: str | None
    approved_at: datetime | None
    approved_by: str | None
    paid_at: datetime | None
    paid_by: str | None
    payment_reference: str | None


class StatementLineRead(Schema):
    id: int
    kind: LineKind
    product_id: int
    product_name: str
    quantity: int
    unit_cost_fen: int
    amount_fen: int
    late: bool


class StatementDetail(StatementRead):
    lines: list[StatementLineRead]

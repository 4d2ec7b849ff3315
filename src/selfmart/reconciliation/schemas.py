"""Request and response bodies of the reconciliation domain."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from selfmart.kit.schema import InSchema, Schema
from selfmart.payments.schemas import PaymentDetail

BillKindName = Literal["trade", "fundflow"]
DifferenceClass = Literal[
    "matched",
    "ours_only",
    "platform_only",
    "amount_differs",
    "status_differs",
    "refund_differs",
    "fee_differs",
    "duplicate_line",
]
DifferenceState = Literal["ok", "pending", "open", "carried", "resolved"]
RunStatus = Literal["reconciled", "no_bill", "refused"]
Resolution = Literal["accept", "refund_customer", "manual_payment"]


class RunRead(Schema):
    id: int
    account_id: int
    channel: str
    bill_date: date
    kind: str
    status: str
    attempts: int
    started_at: datetime
    finished_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    file_sha256: str | None
    file_size: int | None
    line_count: int
    difference_count: int
    bill_gross_fen: int
    bill_refund_fen: int
    bill_fee_fen: int
    trailer_count: int | None
    trailer_gross_fen: int | None
    trailer_refund_fen: int | None
    trailer_fee_fen: int | None
    our_gross_fen: int
    our_refund_fen: int
    expected_fee_fen: int | None
    actor_name: str


class RerunIn(InSchema):
    account_id: Annotated[int, Field(ge=1, le=2_147_483_647)]
    bill_date: date
    kind: BillKindName = "trade"


class DifferenceRead(Schema):
    id: int
    run_id: int
    bill_date: date
    channel: str
    account_id: int
    difference: str
    state: str
    kind: str
    line_no: int | None
    transaction_id: str | None
    out_trade_no: str | None
    out_refund_no: str | None
    refund_ref: str | None
    payment_id: int | None
    refund_id: int | None
    order_id: int | None
    store_id: int | None
    our_amount_fen: int | None
    our_status: str | None
    bill_amount_fen: int | None
    bill_status: str | None
    bill_fee_fen: int | None
    expected_fee_fen: int | None
    occurred_at: datetime | None
    detail: str
    line: dict[str, Any]
    resolution: str | None
    note: str | None
    resolved_by: str | None
    resolved_at: datetime | None


class OrderBrief(Schema):
    id: int
    order_no: str
    store_id: int
    status: str
    total_fen: int
    paid_fen: int
    refunded_fen: int
    created_at: datetime


class DifferenceDetail(DifferenceRead):
    payment: PaymentDetail | None
    order: OrderBrief | None


class ResolveIn(InSchema):
    resolution: Resolution
    note: Annotated[str, Field(min_length=1, max_length=500)]
    #: refund_customer: defaults to what the bill holds beyond our records;
    #: manual_payment: defaults to what the order still owes
    amount_fen: Annotated[int | None, Field(gt=0, le=2_147_483_647)] = None


class FeeRateIn(InSchema):
    #: basis points: 60 = 0.60%
    rate_bp: Annotated[int, Field(ge=0, le=10_000)]


class FeeRateRead(Schema):
    account_id: int
    rate_bp: int
    updated_at: datetime


class DayTotals(Schema):
    bill_date: date
    channel: str
    #: trade: the trade bill; fundflow: WeChat Pay's fund-flow bill (money that moved)
    kind: str
    runs: int
    differences: int
    bill_gross_fen: int
    bill_refund_fen: int
    bill_fee_fen: int
    bill_net_fen: int
    trailer_gross_fen: int | None
    trailer_refund_fen: int | None
    trailer_fee_fen: int | None
    our_gross_fen: int
    our_refund_fen: int
    expected_fee_fen: int | None
    our_net_fen: int


CalendarStatus = Literal["matched", "open", "not_run", "no_bill", "refused"]


class CalendarAccount(Schema):
    id: int
    channel: str
    name: str
    store_id: int | None
    merchant_id: str


class CalendarCell(Schema):
    account_id: int
    bill_date: date
    status: CalendarStatus
    run_id: int | None
    #: differences still to work
    open: int
    #: ours-only differences waiting for the next day's bill
    held: int
    differences: int
    last_error: str | None


class Calendar(Schema):
    accounts: list[CalendarAccount]
    cells: list[CalendarCell]


class FeeReportRow(Schema):
    bill_date: date
    channel: str
    account_id: int
    #: None: bill lines that match no payment of ours
    store_id: int | None
    lines: int
    gross_fen: int
    refund_fen: int
    fee_fen: int
    rate_bp: int | None
    expected_fee_fen: int | None
    fee_gap_fen: int | None
    fee_differs: int

"""Request and response bodies of the orders domain (console API and terminal API)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from selfmart.kit.ids import BigId, Id
from selfmart.kit.money import Fen
from selfmart.kit.schema import InSchema, Schema
from selfmart.orders.statemachine import OrderStatus

#: Most lines one order may carry; more is refused (422) before anything is read.
MAX_LINES = 500
#: Most units of one product on one line.
MAX_QUANTITY = 9_999
#: Most orders in one offline batch.
MAX_BATCH = 200

Qty = Annotated[int, Field(ge=1, le=MAX_QUANTITY, description="units, a whole number ≥ 1")]
Note = Annotated[str, Field(max_length=500)]


# ---------------------------------------------------------------- console: reading


class OrderListItem(Schema):
    id: int
    order_no: str
    client_order_id: str | None
    store_id: int
    store_code: str
    store_name: str
    #: show times in this zone
    store_timezone: str
    terminal_id: int | None
    terminal_code: str | None
    source: str
    status: OrderStatus
    purchased_at: datetime
    created_at: datetime
    paid_at: datetime | None
    item_count: int
    subtotal_fen: int
    discount_fen: int
    total_fen: int
    paid_fen: int
    refunded_fen: int
    payment_method: str | None
    #: the member the server identified (by token); None with a member_no is an unverified claim
    member_id: int | None = None
    member_no: str | None
    customer_name: str | None
    customer_phone: str | None
    price_mismatch: bool
    stock_short: bool
    open_issues: int


class OrderLineRead(Schema):
    id: int
    line_no: int
    product_id: int
    barcode: str | None
    name: str
    spec: str
    list_price_fen: int
    unit_price_fen: int
    quantity: int
    discount_fen: int
    amount_fen: int
    price_source: str
    terminal_unit_price_fen: int | None
    refunded_qty: int
    refunded_fen: int
    cancelled_qty: int
    cancelled_fen: int


class PaymentRead(Schema):
    id: int
    channel: str
    status: str
    amount_fen: int
    channel_txn_id: str | None
    created_at: datetime
    succeeded_at: datetime | None
    failure_reason: str | None
    note: str | None
    actor_type: str
    actor_name: str


class RefundLineRead(Schema):
    id: int
    order_line_id: int
    quantity: int
    amount_fen: int
    disposition: str


class RefundRead(Schema):
    id: int
    payment_id: int
    channel: str
    status: str
    amount_fen: int
    reason: str
    note: str | None
    channel_refund_id: str | None
    created_at: datetime
    completed_at: datetime | None
    failure_reason: str | None
    actor_type: str
    actor_name: str
    lines: list[RefundLineRead]


class TimelineEntry(Schema):
    id: int
    occurred_at: datetime
    kind: str
    from_status: str | None
    to_status: str | None
    actor_type: str
    actor_id: str | None
    actor_name: str
    reason: str
    note: str | None
    data: dict[str, Any]


class IssueRead(Schema):
    id: int
    order_id: int
    store_id: int
    kind: str
    status: str
    stage: str
    detail: dict[str, Any]
    opened_at: datetime
    auto_attempts: int
    resolved_at: datetime | None
    resolution: str | None
    resolved_by: str | None
    note: str | None
    #: how long it has waited (open) or waited before it was settled
    waiting_seconds: int
    #: the actions that can work on this issue now (by its kind, the order's status, its
    #: payment's channel, the customer's phone...); empty once it is resolved
    actions: list[str]
    #: what refund_difference would give back, in fen (null: not an issue with a difference)
    difference_fen: int | None = None


class AuditEntryRead(Schema):
    id: int
    occurred_at: datetime
    actor_type: str
    actor_id: str | None
    actor_name: str
    action: str
    changes: dict[str, Any]
    note: str | None
    ip: str | None
    request_id: str | None


class OrderDetail(OrderListItem):
    request_hash: str | None
    expires_at: datetime | None
    completed_at: datetime | None
    ended_at: datetime | None
    updated_at: datetime
    terminal_total_fen: int | None
    #: the member coupon the order redeemed and what it took off (within discount_fen)
    coupon_code: str | None = None
    coupon_fen: int = 0
    stock_booked: bool
    note: str | None
    #: the statuses this order may move to next
    next_statuses: list[OrderStatus]
    lines: list[OrderLineRead]
    payments: list[PaymentRead]
    refunds: list[RefundRead]
    timeline: list[TimelineEntry]
    issues: list[IssueRead]
    audit: list[AuditEntryRead]


class IssueQueueItem(IssueRead):
    order_no: str
    order_status: OrderStatus
    total_fen: int
    store_code: str
    store_name: str
    store_timezone: str


class RefundRequestRead(Schema):
    """A refund above its requester's limit, waiting for (or given) a decision."""

    id: int
    order_id: int
    store_id: int
    #: pending | approved | rejected
    status: str
    amount_fen: int
    #: the refund asked for, as POST /orders/{id}/refunds takes it
    body: dict[str, Any]
    reason: str
    requested_at: datetime
    requested_by: str
    requester_limit_fen: int | None
    decided_at: datetime | None
    decided_by: str | None
    decision_note: str | None
    #: the refund approval made
    refund_id: int | None
    #: the caller may approve or reject it (pending, and within their refund limit)
    can_decide: bool


class RefundRequestQueueItem(RefundRequestRead):
    order_no: str
    order_status: OrderStatus
    store_name: str
    store_timezone: str


# ---------------------------------------------------------------- console: acting


class RefundDecision(InSchema):
    #: required to reject; kept on the request, the timeline and the audit log
    note: Note | None = None


class CancelBody(InSchema):
    reason: str = Field(min_length=1, max_length=300)


class CompleteBody(InSchema):
    note: Note | None = None


class ManualPaymentBody(InSchema):
    """Money a person collected by hand (cash, a transfer, a merchant app)."""

    channel: Literal["manual"] = "manual"
    #: defaults to what is still owed
    amount_fen: Fen | None = Field(default=None, gt=0)
    #: the slip, transfer or merchant-app transaction number
    reference: str | None = Field(default=None, min_length=1, max_length=64)
    note: Note | None = None


class RefundLineIn(InSchema):
    line_id: BigId
    quantity: Qty
    #: restock: resellable, back into stock; write_off: not resellable
    disposition: Literal["restock", "write_off"] = "restock"


class RefundBody(InSchema):
    """Refund by line and quantity; `full` refunds every unit not yet refunded."""

    full: bool = False
    lines: list[RefundLineIn] = Field(default_factory=list, max_length=MAX_LINES)
    #: with `full`: what happens to the returned goods
    disposition: Literal["restock", "write_off"] = "restock"
    reason: str = Field(min_length=1, max_length=300)
    note: Note | None = None
    #: the manual channel's reference for the money given back
    reference: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _lines_or_full(self) -> RefundBody:
        if self.full and self.lines:
            raise ValueError("give either full=true or lines, not both")
        if not self.full and not self.lines:
            raise ValueError("give lines to refund, or full=true")
        seen: set[int] = set()
        for line in self.lines:
            if line.line_id in seen:
                raise ValueError(f"line {line.line_id} is listed twice")
            seen.add(line.line_id)
        return self


class IssueAction(InSchema):
    """An action on an abnormal order; which ones fit depends on the issue's kind."""

    action: Literal[
        "requery_payment",
        "retry_payment",
        "remind",
        "substitute_lines",
        "cancel_lines",
        "refund_difference",
        "write_off",
        "close",
    ]
    note: Note | None = None
    #: substitute_lines: line id -> product id to sell instead; cancel_lines: line ids
    line_ids: list[BigId] = Field(default_factory=list, max_length=MAX_LINES)
    substitutes: dict[BigId, Id] = Field(default_factory=dict, max_length=MAX_LINES)
    #: remind: sms | member_message
    via: Literal["sms", "member_message"] | None = None
    reference: str | None = Field(default=None, min_length=1, max_length=64)


# ---------------------------------------------------------------- terminal: intake


class MemberIn(InSchema):
    """The customer as a member. With `token` (from POST /members/identify) the server names
    the member, links the order, and gives member prices and the tier's discount. Without it
    (older terminals) the order is still accepted, priced as a guest's and not linked: the
    number is kept as the terminal's claim and the answer warns `member_unverified`."""

    member_no: str | None = Field(default=None, min_length=1, max_length=32)
    member_id: BigId | None = None
    token: str | None = Field(default=None, min_length=10, max_length=300)
    name: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, min_length=4, max_length=32, pattern=r"^\+?[0-9 -]+$")

    @model_validator(mode="after")
    def _number_or_token(self) -> MemberIn:
        if self.member_no is None and self.token is None:
            raise ValueError("give the member's token (or, from an older terminal, member_no)")
        return self


class IntakeLine(InSchema):
    """One line: the product by barcode or id, the quantity, the unit price shown."""

    barcode: str | None = Field(default=None, min_length=1, max_length=32)
    product_id: Id | None = None
    quantity: Qty
    #: what the terminal showed per unit; differences are reported, never charged
    unit_price_fen: Fen | None = None

    @model_validator(mode="after")
    def _barcode_or_id(self) -> IntakeLine:
        if (self.barcode is None) == (self.product_id is None):
            raise ValueError("give exactly one of barcode or product_id")
        return self


#: a member coupon's code as typed or scanned (members.coupons.new_code makes them)
COUPON = r"^[A-Za-z0-9]+$"


class OrderIn(InSchema):
    client_order_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    #: when the customer bought, by the terminal's clock, with a zone offset
    purchased_at: datetime
    lines: list[IntakeLine] = Field(min_length=1, max_length=MAX_LINES)
    member: MemberIn | None = None
    #: points the member spends on this order (needs member.token); their value comes off
    redeem_points: int | None = Field(default=None, ge=1, le=100_000_000)
    #: a coupon the member holds, redeemed by this order (needs member.token); it applies to
    #: the total after member prices and the tier's discount, before points
    coupon_code: str | None = Field(default=None, min_length=4, max_length=20, pattern=COUPON)
    #: the total the terminal showed
    total_fen: Fen | None = None

    @field_validator("purchased_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("purchased_at needs a zone offset (e.g. +08:00 or Z)")
        return value


class PriceDifference(Schema):
    line_no: int
    product_id: int
    terminal_unit_price_fen: int
    unit_price_fen: int


IntakeWarning = Literal["member_unverified"]


class IntakeResult(Schema):
    """What the server made of an order: its number, its price and how it stands."""

    order_id: int
    order_no: str
    client_order_id: str
    status: OrderStatus
    #: created | duplicate (this order was already accepted: nothing new was written)
    outcome: Literal["created", "duplicate"]
    subtotal_fen: int
    discount_fen: int
    total_fen: int
    terminal_total_fen: int | None
    price_differences: list[PriceDifference]
    price_mismatch: bool
    stock_short: bool
    receipt_url: str
    #: the member the order is linked to (by the server, from the member token)
    member_no: str | None = None
    #: what member prices, the tier's discount and the coupon saved (in discount_fen)
    saved_fen: int = 0
    #: the coupon the order redeemed, and what it took off (in discount_fen and saved_fen)
    coupon_code: str | None = None
    coupon_fen: int = 0
    #: points spent on the order, and what they paid (in discount_fen)
    points_redeemed: int = 0
    points_fen: int = 0
    #: what the terminal should know although the order was accepted: `member_unverified`
    #: (a member_no without a token: priced as a guest's, not linked to any member)
    warnings: list[IntakeWarning] = Field(default_factory=list)


class PaymentFailureIn(InSchema):
    """A payment the terminal tried to take for an order, and that failed."""

    #: the terminal's own id for this attempt: the idempotency key (the same id and body answer
    #: the first report again; the same id with another body is a 409)
    attempt_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    #: how the terminal tried to charge
    method: Literal["wechat", "alipay", "card", "other"]
    #: what the terminal tried to charge, in fen (a JSON integer: "500" or true are refused)
    amount_fen: Fen = Field(strict=True)
    #: why it failed, as the terminal or the payment platform said it
    reason: str = Field(min_length=1, max_length=200)
    #: the platform's error code, when it gave one
    error_code: str | None = Field(default=None, min_length=1, max_length=64)
    #: when it failed, by the terminal's clock, with a zone offset
    failed_at: datetime | None = None

    @field_validator("failed_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("failed_at needs a zone offset (e.g. +08:00 or Z)")
        return value


class PaymentFailureResult(Schema):
    """What became of a reported payment failure."""

    order_no: str
    attempt_id: str
    #: the order's status now (payment_failed, unless it moved on since a first report)
    status: OrderStatus
    #: recorded | duplicate (this attempt was already reported: nothing new was written)
    outcome: Literal["recorded", "duplicate"]
    #: the abnormal order (payment_failed issue) a person or the automatic rules work on
    issue_id: int


class BatchIn(InSchema):
    orders: list[OrderIn] = Field(min_length=1, max_length=MAX_BATCH)


class BatchError(Schema):
    error: str
    message: str
    details: list[dict[str, Any]] = []


class BatchItemResult(Schema):
    index: int
    client_order_id: str
    #: created | duplicate | rejected
    outcome: Literal["created", "duplicate", "rejected"]
    result: IntakeResult | None = None
    error: BatchError | None = None


class BatchResult(Schema):
    created: int
    duplicates: int
    rejected: int
    results: list[BatchItemResult]


class OrderStatusRead(Schema):
    """A terminal's (and a customer's) view of one order: no one's personal details."""

    order_no: str
    status: OrderStatus
    purchased_at: datetime
    store_name: str
    store_timezone: str
    #: the store's own telephone, for the customer to reach it (e.g. to settle what is owed)
    store_contact: str | None = None
    item_count: int
    total_fen: int
    paid_fen: int
    refunded_fen: int
    payment_method: str | None
    lines: list[PublicLine]
    payments: list[PublicPayment]
    refunds: list[PublicRefund]
    #: only from the look-up by order number and phone digits: the receipt's signed token
    #: (as in /r/<token>), so the customer who proved the order is theirs can pay from the page
    receipt_token: str | None = None


class PublicLine(Schema):
    name: str
    spec: str
    quantity: int
    unit_price_fen: int
    discount_fen: int
    amount_fen: int
    refunded_qty: int
    cancelled_qty: int


class PublicPayment(Schema):
    channel: str
    status: str
    amount_fen: int
    at: datetime | None


class PublicRefund(Schema):
    status: str
    amount_fen: int
    requested_at: datetime
    completed_at: datetime | None


OrderStatusRead.model_rebuild()


class SyncProduct(Schema):
    product_id: int
    name: str
    spec: str
    unit: str
    #: the store's price (its own, or the retail price)
    price_fen: int
    member_price_fen: int | None
    barcodes: list[str]


class ProductSync(Schema):
    #: send back as `since` to get only what changed after this download
    version: int
    #: true: the whole list (replace yours); false: changes since your version
    full: bool
    items: list[SyncProduct]
    #: product ids no longer sold in this store
    removed: list[int]

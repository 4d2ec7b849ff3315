"""Request and response bodies of the inventory API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field, model_validator

from selfmart.kit.ids import Id
from selfmart.kit.schema import InSchema, Schema

Quantity = Annotated[int, Field(gt=0, le=1_000_000, strict=True, description="whole units > 0")]
Reason = Annotated[str, Field(min_length=1, max_length=300)]


class StockRow(Schema):
    product_id: int
    product_name: str
    brand: str
    spec: str
    unit: str
    category_id: int | None
    barcode: str | None
    quantity: int
    threshold: int
    #: ok | low | out
    state: Literal["ok", "low", "out"]
    updated_at: datetime | None


class MovementRead(Schema):
    id: int
    store_id: int
    product_id: int
    product_name: str
    #: the product's spec and first barcode: same-name products are told apart by them
    spec: str = ""
    barcode: str | None = None
    kind: str
    quantity: int
    balance_after: int
    document_type: str | None
    document_id: str | None
    reason: str | None
    batch_id: int | None
    actor_type: str
    actor_id: str | None
    actor_name: str
    occurred_at: datetime


class SeriesPointRead(Schema):
    at: datetime
    balance: int
    #: net change within the point's bucket
    change: int
    #: units in and out within the bucket (sums of movements; out is positive)
    in_qty: int
    out_qty: int


class BalanceSeries(Schema):
    store_id: int
    product_id: int
    bucket: str
    opening_balance: int
    #: units in and out over the whole range (sums of movements, not of net changes)
    in_total: int
    out_total: int
    points: list[SeriesPointRead]


class StockAdjust(InSchema):
    """Add `delta` (either sign) or set the balance to `set_to`; a reason is required."""

    delta: Annotated[int | None, Field(strict=True, ge=-1_000_000, le=1_000_000)] = None
    set_to: Annotated[int | None, Field(strict=True, ge=0, le=1_000_000)] = None
    reason: Reason

    @model_validator(mode="after")
    def _one_of(self) -> StockAdjust:
        if (self.delta is None) == (self.set_to is None):
            raise ValueError("give either delta or set_to")
        if self.delta == 0:
            raise ValueError("delta cannot be zero")
        return self


class StockChangeRead(Schema):
    store_id: int
    product_id: int
    before: int
    after: int
    changed: bool


class WriteOff(InSchema):
    quantity: Quantity
    reason: Reason


class ReceiptLineIn(InSchema):
    product_id: Id
    quantity: Quantity
    expiry_date: date | None = None
    batch_no: Annotated[str, Field(max_length=64)] = ""


class ReceiptIn(InSchema):
    lines: Annotated[list[ReceiptLineIn], Field(min_length=1, max_length=1000)]
    note: Annotated[str, Field(max_length=300)] = ""


class ReceiptRead(Schema):
    document_type: str
    document_id: str
    lines: list[StockChangeRead]


class BulkStockIn(InSchema):
    store_id: Id
    product_ids: Annotated[list[Id], Field(min_length=1, max_length=1000)]
    mode: Literal["set", "adjust"]
    value: Annotated[int, Field(strict=True, ge=-1_000_000, le=1_000_000)]
    #: required to apply; the preview may leave it empty
    reason: Annotated[str, Field(max_length=300)] = ""


class BulkLineRead(Schema):
    product_id: int
    product_name: str
    #: the product's spec and first barcode: same-name products are told apart by them
    spec: str = ""
    barcode: str | None = None
    before: int
    after: int
    change: int


class BulkStockResult(Schema):
    store_id: int
    applied: bool
    changed: int
    lines: list[BulkLineRead]


class AlertRead(Schema):
    id: int
    store_id: int
    product_id: int
    #: name, spec and first barcode of the product (so a list needs no request per row)
    product_name: str = ""
    spec: str = ""
    barcode: str | None = None
    kind: str
    batch_key: int
    status: str
    threshold: int | None
    quantity: int
    expiry_date: date | None
    opened_at: datetime
    resolved_at: datetime | None
    resolution: str | None
    resolved_by: str | None
    resolution_note: str | None


class ResolveIn(InSchema):
    note: Annotated[str, Field(max_length=500)] = ""


class ResolveRequired(InSchema):
    note: Annotated[str, Field(min_length=1, max_length=500)]


class DiscrepancyRead(Schema):
    id: int
    store_id: int
    product_id: int
    #: name, spec and first barcode of the product (so a list needs no request per row)
    product_name: str = ""
    spec: str = ""
    barcode: str | None = None
    document_type: str | None
    document_id: str | None
    requested: int
    short_by: int
    balance_after: int
    status: str
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_note: str | None


class BatchRead(Schema):
    id: int
    store_id: int
    product_id: int
    batch_no: str
    expiry_date: date
    quantity_received: int
    quantity_written_off: int
    remaining: int
    received_at: datetime
    document_type: str | None
    document_id: str | None


class BatchWriteOff(InSchema):
    #: default: everything left of the batch
    quantity: Quantity | None = None
    reason: Reason


class AlertRouteIn(InSchema):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    #: None: every store (only for people who run every store)
    store_id: Id | None = None
    kinds: Annotated[list[Literal["low_stock", "near_expiry"]], Field(max_length=2)] = []
    target: Literal["role", "robot"]
    role_id: Id | None = None
    channels: Annotated[list[Literal["in_app", "email", "sms"]], Field(max_length=3)] = []
    robot_kind: Literal["wecom", "dingtalk", "feishu"] | None = None
    webhook_url: Annotated[str | None, Field(max_length=500, pattern=r"^https?://\S+$")] = None
    #: write-only: the signing secret of a DingTalk/Feishu robot
    secret: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    mode: Literal["immediate", "digest"] = "immediate"
    is_active: bool = True


class AlertRouteUpdate(InSchema):
    name: Annotated[str | None, Field(min_length=1, max_length=100)] = None
    kinds: Annotated[list[Literal["low_stock", "near_expiry"]] | None, Field(max_length=2)] = None
    role_id: Id | None = None
    channels: Annotated[list[Literal["in_app", "email", "sms"]] | None, Field(max_length=3)] = None
    robot_kind: Literal["wecom", "dingtalk", "feishu"] | None = None
    webhook_url: Annotated[str | None, Field(max_length=500, pattern=r"^https?://\S+$")] = None
    #: write-only; an empty string removes the secret
    secret: Annotated[str | None, Field(max_length=200)] = None
    mode: Literal["immediate", "digest"] | None = None
    is_active: bool | None = None


class AlertRouteRead(Schema):
    id: int
    name: str
    store_id: int | None
    kinds: list[str]
    target: str
    role_id: int | None
    role_name: str | None = None
    channels: list[str]
    robot_kind: str | None
    webhook_url: str | None
    has_secret: bool
    mode: str
    is_active: bool
    last_digest_on: date | None
    created_at: datetime
    updated_at: datetime


class AlertRouteTestRead(Schema):
    #: in-app messages made
    messages: int
    #: email, SMS and robot deliveries queued (sent after the request commits, retried)
    deliveries: int
    #: people the route's channels cannot reach (no email address or phone on file)
    unreachable: int


class RoleOptionRead(Schema):
    id: int
    code: str
    name: str

"""Request and response bodies of the members domain."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from selfmart.kit.rowimport import ImportRowError
from selfmart.kit.schema import InSchema, Schema
from selfmart.kit.time import utcnow

Gender = Literal["male", "female", "unknown"]
MemberStatus = Literal["active", "disabled", "erased", "merged"]
Channel = Literal["console", "terminal", "import", "mini_program", "other"]
TierMatch = Literal["all", "any"]

#: A mainland China mobile number: 11 digits, 1 then 3-9.
MOBILE_RE = re.compile(r"^1[3-9][0-9]{9}$")
#: Birthdays are calendar dates where the chain is.
BIRTHDAY_ZONE = ZoneInfo("Asia/Shanghai")


def normalise_mobile(value: Any) -> Any:
    """Spaces and hyphens dropped, and a +86 / 86 / 0086 prefix, as people type them."""
    if not isinstance(value, str):
        return value
    digits = re.sub(r"[\s-]", "", value)
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix) :]
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits


def check_mobile(value: str) -> str:
    if not MOBILE_RE.match(value):
        raise ValueError("not a mainland mobile number: 11 digits starting 13-19, e.g. 13812345678")
    return value


def today_local() -> date:
    """Today where the chain is (birthdays are calendar dates there)."""
    return utcnow().astimezone(BIRTHDAY_ZONE).date()


def check_birthday(value: date) -> date:
    today = today_local()
    if value > today:
        raise ValueError(f"a birthday cannot be in the future (today is {today.isoformat()})")
    if value.year < 1900:
        raise ValueError("a birthday before 1900 is not plausible")
    return value


Mobile = Annotated[
    str,
    BeforeValidator(normalise_mobile),
    Field(max_length=20, examples=["13812345678"]),
    AfterValidator(check_mobile),
]
Birthday = Annotated[date, AfterValidator(check_birthday)]
Name = Annotated[str, Field(min_length=1, max_length=64)]
CardNo = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9-]+$")]
TagText = Annotated[str, Field(min_length=1, max_length=32)]
Reason = Annotated[str, Field(min_length=1, max_length=300)]


class MemberCreate(InSchema):
    name: Name
    mobile: Mobile
    gender: Gender = "unknown"
    birthday: Birthday | None = None
    card_no: CardNo | None = None
    home_store_id: Annotated[int, Field(ge=1, le=2_147_483_647)] | None = None
    tags: Annotated[list[TagText], Field(max_length=20)] = []
    marketing_consent: bool = False
    channel: Channel = "console"


class MemberUpdate(InSchema):
    """Only the fields sent are changed."""

    name: Name | None = None
    mobile: Mobile | None = None
    gender: Gender | None = None
    birthday: Birthday | None = None
    card_no: CardNo | None = None
    home_store_id: Annotated[int, Field(ge=1, le=2_147_483_647)] | None = None
    tags: Annotated[list[TagText], Field(max_length=20)] | None = None
    marketing_consent: bool | None = None

    @model_validator(mode="after")
    def _not_null(self) -> MemberUpdate:
        for name in ("name", "mobile", "gender", "tags", "marketing_consent"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class MemberStatusChange(InSchema):
    status: Literal["active", "disabled"]
    reason: Reason


class EraseBody(InSchema):
    reason: Reason


class MemberRead(Schema):
    id: int
    member_no: str
    #: masked (张*) for readers without member:pii
    name: str | None
    #: masked (138****5678) for readers without member:pii
    mobile: str | None
    masked: bool
    gender: str
    birthday: date | None
    card_no: str | None
    tier_id: int | None
    tier_name: str | None
    points_balance: int
    home_store_id: int | None
    tags: list[str]
    status: str
    marketing_consent: bool
    channel: str
    registered_at: datetime
    updated_at: datetime
    erased_at: datetime | None
    #: for a merged record: the member it was merged into
    merged_into_id: int | None = None


class MemberPii(Schema):
    """A member's personal data in full (the reveal is audited)."""

    id: int
    member_no: str
    name: str | None
    mobile: str | None


class PointsAdjust(InSchema):
    """Points added (positive) or taken (negative) by hand; a reason is required."""

    points: Annotated[int, Field(ge=-10_000_000, le=10_000_000)]
    reason: Reason

    @model_validator(mode="after")
    def _nonzero(self) -> PointsAdjust:
        if self.points == 0:
            raise ValueError("points must not be 0")
        return self


class PointsRedeem(InSchema):
    points: Annotated[int, Field(ge=1, le=10_000_000)]
    reason: Reason | None = None
    order_id: Annotated[int, Field(ge=1, le=2**53)] | None = None


class PointsEntryRead(Schema):
    id: int
    member_id: int
    kind: str
    points: int
    balance_after: int
    order_id: int | None
    lot_id: int | None
    reason: str | None
    data: dict[str, Any]
    actor_type: str
    actor_name: str
    occurred_at: datetime


class PointsLotRead(Schema):
    id: int
    awarded: int
    remaining: int
    awarded_at: datetime
    expires_at: datetime
    order_id: int | None


class TierCreate(InSchema):
    code: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_]+$")]
    name: Annotated[str, Field(min_length=1, max_length=64)]
    rank: Annotated[int, Field(ge=0, le=1000)]
    min_spend_fen: Annotated[int, Field(ge=0, le=10**12)] | None = None
    min_orders: Annotated[int, Field(ge=0, le=10**7)] | None = None
    match: TierMatch = "all"
    discount_bp: Annotated[int, Field(ge=0, le=10_000)] = 0
    member_prices: bool = True
    points_multiplier_pct: Annotated[int, Field(ge=0, le=10_000)] = 100
    birthday_points: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    birthday_benefit: Annotated[str, Field(max_length=300)] = ""
    is_active: bool = True


class TierUpdate(InSchema):
    name: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    rank: Annotated[int, Field(ge=0, le=1000)] | None = None
    min_spend_fen: Annotated[int, Field(ge=0, le=10**12)] | None = None
    min_orders: Annotated[int, Field(ge=0, le=10**7)] | None = None
    match: TierMatch | None = None
    discount_bp: Annotated[int, Field(ge=0, le=10_000)] | None = None
    member_prices: bool | None = None
    points_multiplier_pct: Annotated[int, Field(ge=0, le=10_000)] | None = None
    birthday_points: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    birthday_benefit: Annotated[str, Field(max_length=300)] | None = None
    is_active: bool | None = None

    @model_validator(mode="after")
    def _not_null(self) -> TierUpdate:
        nullable = {"min_spend_fen", "min_orders"}
        for name in self.model_fields_set - nullable:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class TierRead(Schema):
    id: int
    code: str
    name: str
    rank: int
    min_spend_fen: int | None
    min_orders: int | None
    match: str
    discount_bp: int
    member_prices: bool
    points_multiplier_pct: int
    birthday_points: int
    birthday_benefit: str
    is_active: bool


class ProgramRead(Schema):
    points_per_yuan: int
    points_expiry_days: int
    tier_window_days: int
    downgrades_enabled: bool
    redeem_points_per_yuan: int
    redeem_max_share_bp: int


class ProgramUpdate(InSchema):
    points_per_yuan: Annotated[int, Field(ge=0, le=1000)] | None = None
    points_expiry_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    tier_window_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    downgrades_enabled: bool | None = None
    #: points that pay one yuan at the terminal, and the most of an order they pay (basis pts)
    redeem_points_per_yuan: Annotated[int, Field(ge=1, le=100_000)] | None = None
    redeem_max_share_bp: Annotated[int, Field(ge=0, le=10_000)] | None = None

    @model_validator(mode="after")
    def _not_null(self) -> ProgramUpdate:
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class TierChangeRead(Schema):
    id: int
    member_id: int
    from_tier_id: int | None
    to_tier_id: int | None
    direction: str
    reason: str
    order_id: int | None
    spend_fen: int
    order_count: int
    actor_type: str
    actor_name: str
    occurred_at: datetime


class TierStanding(Schema):
    """Where a member stands: spend and orders over the window, the tier they qualify for."""

    spend_fen: int
    order_count: int
    window_days: int
    qualifies_for_tier_id: int | None


class MemberImportReport(Schema):
    """The row-by-row report of a member import (or of its dry run)."""

    #: checked (dry run, every row good), imported (every row), partial (good rows only),
    #: rejected (nothing written)
    status: Literal["checked", "imported", "partial", "rejected"]
    mode: Literal["all_or_nothing", "good_rows_only"]
    dry_run: bool
    total_rows: int
    valid_rows: int
    bad_rows: int
    created: int
    skipped: int
    errors: list[ImportRowError]
    #: more bad cells than the report lists (the first 2,000 are listed)
    errors_truncated: bool = False


class MergeBody(InSchema):
    """Merge the record `merged_id` into this member (the survivor)."""

    merged_id: Annotated[int, Field(ge=1, le=2**53)]
    reason: Reason


class MergeResult(Schema):
    survivor_id: int
    merged_id: int
    orders_moved: int
    points_moved: int
    coupons_moved: int
    #: profile fields the survivor took from the merged record (it had none of its own)
    fields_filled: list[str]


Score = Annotated[int, Field(ge=1, le=5)]
RowId = Annotated[int, Field(ge=1, le=2_147_483_647)]
Days = Annotated[int, Field(ge=1, le=3650)]
Fen = Annotated[int, Field(ge=0, le=10**12)]


class RfmPick(InSchema):
    """The quintiles (1-5, 5 best) a segment takes on each axis; empty: any."""

    r: Annotated[list[Score], Field(max_length=5)] = []
    f: Annotated[list[Score], Field(max_length=5)] = []
    m: Annotated[list[Score], Field(max_length=5)] = []


class SegmentRules(InSchema):
    """Every rule given must hold (active members only). Spend, orders and RFM count paid
    orders within `window_days`."""

    tier_ids: (
        Annotated[list[Annotated[int, Field(ge=1, le=2_147_483_647)]], Field(max_length=50)] | None
    ) = None
    store_ids: (
        Annotated[list[Annotated[int, Field(ge=1, le=2_147_483_647)]], Field(max_length=500)] | None
    ) = None
    #: members holding any of these tags
    tags: Annotated[list[TagText], Field(max_length=20)] | None = None
    min_spend_fen: Fen | None = None
    max_spend_fen: Fen | None = None
    min_orders: Annotated[int, Field(ge=1, le=10**7)] | None = None
    #: bought within the last N days
    visited_within_days: Days | None = None
    #: no purchase in the last N days (lapsed members, and those who never bought)
    not_visited_days: Days | None = None
    birthday_month: Annotated[int, Field(ge=1, le=12)] | None = None
    marketing_consent_only: bool = False
    rfm: RfmPick | None = None
    window_days: Days = 365

    @model_validator(mode="after")
    def _ranges(self) -> SegmentRules:
        if (
            self.min_spend_fen is not None
            and self.max_spend_fen is not None
            and self.min_spend_fen > self.max_spend_fen
        ):
            raise ValueError("max_spend_fen must not be below min_spend_fen")
        return self


class SegmentBody(InSchema):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    description: Annotated[str, Field(max_length=300)] = ""
    rules: SegmentRules


class SegmentRead(Schema):
    id: int
    name: str
    description: str
    rules: SegmentRules
    created_by: str
    created_at: datetime
    updated_at: datetime


class SegmentPreview(Schema):
    """How many active members the rules pick now, and the first few of them (masked)."""

    count: int
    sample: list[MemberRead]


class RfmScores(Schema):
    r: int
    f: int
    m: int
    window_days: int
    spend_fen: int
    orders: int
    last_paid_at: datetime


class RfmCell(Schema):
    r: int
    f: int
    members: int
    spend_fen: int


class ProductBoughtRead(Schema):
    product_id: int
    name: str
    quantity: int
    spend_fen: int
    orders: int


class PurchaseHistory(Schema):
    """What the profile shows of a member's shopping: all time, and RFM over the window."""

    orders: int
    spend_fen: int
    average_fen: int
    first_visit_at: datetime | None
    last_visit_at: datetime | None
    favourite_products: list[ProductBoughtRead]
    rfm: RfmScores | None


class MemberOrderRead(Schema):
    id: int
    order_no: str
    store_id: int
    status: str
    total_fen: int
    paid_fen: int
    refunded_fen: int
    item_count: int
    created_at: datetime
    paid_at: datetime | None


CouponKind = Literal["amount", "percent"]


class CouponTemplateBody(InSchema):
    """A coupon's terms. Validity is either `valid_days` from issue, or fixed dates."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    kind: CouponKind
    amount_off_fen: Annotated[int, Field(ge=0, le=10**9)] = 0
    #: basis points off (1500 = 15% off)
    percent_off_bp: Annotated[int, Field(ge=0, le=10_000)] = 0
    #: the most a percent coupon takes off
    max_off_fen: Annotated[int, Field(ge=1, le=10**9)] | None = None
    min_spend_fen: Annotated[int, Field(ge=0, le=10**9)] = 0
    valid_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    birthday: bool = False
    birthday_tier_id: Annotated[int, Field(ge=1, le=2_147_483_647)] | None = None
    is_active: bool = True

    @model_validator(mode="after")
    def _terms(self) -> CouponTemplateBody:
        if self.kind == "amount" and self.amount_off_fen <= 0:
            raise ValueError("amount_off_fen must be above 0 for an amount coupon")
        if self.kind == "percent" and not 0 < self.percent_off_bp < 10_000:
            raise ValueError("percent_off_bp must be between 1 and 9999 for a percent coupon")
        if self.valid_days is None:
            if self.valid_from is None or self.valid_to is None:
                raise ValueError("give valid_days, or both valid_from and valid_to")
            if self.valid_to <= self.valid_from:
                raise ValueError("valid_to must be after valid_from")
        elif self.valid_from is not None or self.valid_to is not None:
            raise ValueError("give valid_days or fixed dates, not both")
        if self.birthday and self.valid_days is None:
            raise ValueError("a birthday coupon needs valid_days (it is issued every year)")
        return self


class CouponTemplateRead(Schema):
    id: int
    name: str
    kind: str
    amount_off_fen: int
    percent_off_bp: int
    max_off_fen: int | None
    min_spend_fen: int
    valid_days: int | None
    valid_from: datetime | None
    valid_to: datetime | None
    birthday: bool
    birthday_tier_id: int | None
    is_active: bool
    created_at: datetime
    updated_at: datetime


class CouponRead(Schema):
    id: int
    code: str
    template_id: int
    member_id: int
    name: str
    kind: str
    amount_off_fen: int
    percent_off_bp: int
    max_off_fen: int | None
    min_spend_fen: int
    valid_from: datetime
    valid_to: datetime
    #: issued | redeemed | void | expired (issued but past valid_to)
    state: str
    source: str
    issued_at: datetime
    order_id: int | None
    discount_fen: int | None
    redeemed_at: datetime | None


class CouponGive(InSchema):
    template_id: Annotated[int, Field(ge=1, le=2_147_483_647)]


class CouponIssueBody(InSchema):
    """Give a template's coupon to every active member of a segment or a tier."""

    template_id: Annotated[int, Field(ge=1, le=2_147_483_647)]
    target: Literal["segment", "tier"]
    target_id: Annotated[int, Field(ge=1, le=2_147_483_647)]


class CouponIssueRead(Schema):
    id: int
    template_id: int
    target: str
    target_id: int
    target_name: str
    job_id: int | None
    status: str
    issued: int
    created_by: str
    created_at: datetime
    finished_at: datetime | None


class CouponVoidBody(InSchema):
    reason: Reason


class MemberImportStarted(Schema):
    """A large member import (or its dry run) handed to a background job: follow it at
    /api/v1/jobs/{job_id}; its result is the row-by-row report."""

    job_id: int
    rows: int

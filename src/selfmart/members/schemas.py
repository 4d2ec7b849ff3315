"""Request and response bodies of the members domain."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from selfmart.kit.schema import InSchema, Schema
from selfmart.kit.time import utcnow

Gender = Literal["male", "female", "unknown"]
MemberStatus = Literal["active", "disabled", "erased"]
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


def check_birthday(value: date) -> date:
    today = utcnow().astimezone(BIRTHDAY_ZONE).date()
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

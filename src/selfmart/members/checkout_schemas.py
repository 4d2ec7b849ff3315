"""Bodies of the members' terminal routes (identify, quote) and of the member's own page."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from selfmart.kit.schema import InSchema, Schema
from selfmart.members.schemas import Mobile
from selfmart.orders.schemas import COUPON, MAX_LINES, IntakeLine


class SmsCodeRequest(InSchema):
    mobile: Mobile


class SmsCodeSent(Schema):
    #: when the code stops working (the page shows no more than "sent", whoever the number is)
    expires_at: datetime | None


class IdentifyRequest(InSchema):
    """Either the dynamic code from the member's page, or their mobile and the SMS code."""

    code: str | None = Field(default=None, min_length=1, max_length=32, pattern=r"^[0-9 ]+$")
    mobile: Mobile | None = None
    sms_code: str | None = Field(default=None, min_length=4, max_length=8, pattern=r"^[0-9]+$")

    @model_validator(mode="after")
    def _one_way(self) -> IdentifyRequest:
        if (self.code is None) == (self.mobile is None):
            raise ValueError("give either code, or mobile and sms_code")
        if self.mobile is not None and self.sms_code is None:
            raise ValueError("sms_code is needed with mobile")
        return self


class MemberAtTerminal(Schema):
    """What the terminal shows once the member is identified, and the token for its order."""

    member_token: str
    token_expires_at: datetime
    identified_by: Literal["code", "sms"]
    member_no: str
    name: str | None
    mobile: str | None
    tier_name: str | None
    #: the tier's discount (basis points) on lines without a member price
    tier_discount_bp: int
    #: whether the member pays products' member prices (False: the discount on every line)
    tier_member_prices: bool
    points_balance: int
    #: points that can be spent now (the unexpired ones)
    usable_points: int
    #: the redemption rule: points that pay one yuan, and the most of an order they pay
    redeem_points_per_yuan: int
    redeem_max_share_bp: int


class QuoteRequest(InSchema):
    lines: list[IntakeLine] = Field(min_length=1, max_length=MAX_LINES)
    member_token: str | None = Field(default=None, min_length=10, max_length=300)
    redeem_points: int | None = Field(default=None, ge=1, le=100_000_000)
    #: a coupon the member holds (checked, not redeemed: the order redeems it)
    coupon_code: str | None = Field(default=None, min_length=4, max_length=20, pattern=COUPON)


class QuoteLine(Schema):
    line_no: int
    product_id: int
    barcode: str | None
    name: str
    quantity: int
    list_price_fen: int
    unit_price_fen: int
    #: store | retail | member
    price_source: str
    tier_discount_fen: int
    #: the coupon's share of this line
    coupon_fen: int
    points_fen: int
    amount_fen: int
    #: member price, tier discount and the coupon's share on this line
    saved_fen: int


class Quote(Schema):
    lines: list[QuoteLine]
    subtotal_fen: int
    saved_fen: int
    coupon_code: str | None
    coupon_fen: int
    points: int
    points_fen: int
    total_fen: int
    #: the most points this order takes (0 without a member), after the coupon
    max_points: int


class PortalSignIn(InSchema):
    mobile: Mobile
    code: str = Field(min_length=4, max_length=8, pattern=r"^[0-9]+$")


class PortalSession(Schema):
    token: str
    expires_at: datetime


class PortalTier(Schema):
    name: str
    discount_bp: int
    points_multiplier_pct: int
    birthday_benefit: str


class PortalNextTier(Schema):
    name: str
    min_spend_fen: int | None
    min_orders: int | None
    match: str
    spend_needed_fen: int | None
    orders_needed: int | None
    discount_bp: int


class PortalOverview(Schema):
    member_no: str
    name: str | None
    mobile: str | None
    points_balance: int
    usable_points: int
    redeem_points_per_yuan: int
    tier: PortalTier | None
    window_days: int
    spend_fen: int
    order_count: int
    next_tier: PortalNextTier | None
    #: messages the member has not read yet
    unread_messages: int = 0


class PortalCode(Schema):
    code: str
    step_ends_at: datetime
    step_seconds: int
    qr_svg: str


class PortalOrder(Schema):
    order_no: str
    status: str
    purchased_at: datetime
    item_count: int
    subtotal_fen: int
    discount_fen: int
    total_fen: int
    refunded_fen: int
    store_name: str
    store_timezone: str


class PortalPoints(Schema):
    kind: str
    points: int
    balance_after: int
    occurred_at: datetime
    reason: str | None


class PortalMessage(Schema):
    id: int
    #: order_reminder | tier_change
    kind: str
    title: str
    body: str
    created_at: datetime
    read: bool


class PortalMessages(Schema):
    items: list[PortalMessage]
    total: int
    page: int
    size: int
    #: of all the member's messages, not only this page
    unread: int


class PortalMessagesRead(Schema):
    #: how many were unread and are read now
    marked: int
    unread: int


class PortalTierChange(Schema):
    #: upgrade | downgrade
    direction: str
    from_tier: str | None
    to_tier: str | None
    #: order_paid | refund | nightly | manual
    reason: str
    spend_fen: int
    order_count: int
    occurred_at: datetime


class PortalCoupon(Schema):
    """A coupon as its holder sees it: its terms, validity and state."""

    code: str
    name: str
    #: amount | percent
    kind: str
    amount_off_fen: int
    percent_off_bp: int
    max_off_fen: int | None
    min_spend_fen: int
    valid_from: datetime
    valid_to: datetime
    #: issued | redeemed | void | expired (issued but past valid_to)
    state: str
    redeemed_at: datetime | None

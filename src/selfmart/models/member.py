"""Members: profiles, the points ledger (append-only entries, FIFO award lots and the cached
balance kept in the same transaction), the orders that earned points, tiers and tier history."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from selfmart.db import Base, BigIntId, JSONDoc

#: Every kind of points entry, and the sign its points must have (0: either).
POINTS_KINDS: dict[str, int] = {
    "earn": +1,  # a paid order
    "reverse": -1,  # a refund took back what its order earned
    "redeem": -1,  # spent
    "unredeem": +1,  # spent on an order that was refunded or closed, given back
    "adjust": 0,  # by hand, with a reason
    "expire": -1,  # an award's lot ran out of time
    "birthday": +1,  # the tier's birthday points, once in the birthday month
    "merge_out": -1,  # a merged record's balance, moved to the member it was merged into
    "merge_in": +1,  # the balance of a record merged into this member
}


class MemberProgram(Base):
    """The programme's rules: one row (id 1)."""

    __tablename__ = "member_program"
    __table_args__ = (
        CheckConstraint(
            "redeem_points_per_yuan >= 1 AND redeem_max_share_bp >= 0 "
            "AND redeem_max_share_bp <= 10000",
            name="redeem_rule_range",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: points earned per whole yuan of net spend, before the tier's multiplier
    points_per_yuan: Mapped[int] = mapped_column(default=1)
    #: an award expires this many days after it was earned (exactly, to the second)
    points_expiry_days: Mapped[int] = mapped_column(default=365)
    #: spend and orders are counted over this many days back from now
    tier_window_days: Mapped[int] = mapped_column(default=365)
    #: the nightly re-evaluation moves members down when they no longer qualify
    downgrades_enabled: Mapped[bool] = mapped_column(default=False)
    #: redemption: this many points pay one yuan (100: one point is one fen)
    redeem_points_per_yuan: Mapped[int] = mapped_column(default=100, server_default="100")
    #: redemption: points pay at most this share of an order, in basis points (5000: half)
    redeem_max_share_bp: Mapped[int] = mapped_column(default=5000, server_default="5000")
    updated_at: Mapped[datetime]


class MemberTier(Base):
    """A tier: qualifying thresholds and what it gives. Rank orders tiers (higher is better)."""

    __tablename__ = "member_tiers"
    __table_args__ = (
        CheckConstraint("discount_bp >= 0 AND discount_bp <= 10000", name="discount_range"),
        CheckConstraint("points_multiplier_pct >= 0", name="multiplier_nonnegative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    rank: Mapped[int] = mapped_column(unique=True)
    #: net spend (fen) over the window needed; None: no spend threshold
    min_spend_fen: Mapped[int | None]
    #: paid orders over the window needed; None: no order-count threshold
    min_orders: Mapped[int | None]
    #: all: every threshold set must be met; any: one of them is enough
    match: Mapped[str] = mapped_column(String(8), default="all")
    #: discount off the price in basis points (500 = 5% off)
    discount_bp: Mapped[int] = mapped_column(default=0)
    #: whether the tier's members pay products' member prices (False: the discount only)
    member_prices: Mapped[bool] = mapped_column(default=True, server_default=true())
    #: points multiplier in percent (150 = 1.5x)
    points_multiplier_pct: Mapped[int] = mapped_column(default=100)
    #: points given in the birthday month, and a description of the birthday benefit
    birthday_points: Mapped[int] = mapped_column(default=0)
    birthday_benefit: Mapped[str] = mapped_column(String(300), default="")
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Member(Base):
    """One member. Personal fields are nulled when the member asks to be erased; the row stays
    (orders, points and history keep pointing at it)."""

    __tablename__ = "members"
    __table_args__ = (
        CheckConstraint("points_balance >= 0", name="points_nonnegative"),
        Index("ix_members_status_registered", "status", "registered_at"),
        Index("ix_members_tier", "tier_id"),
        Index("ix_members_home_store", "home_store_id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    member_no: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str | None] = mapped_column(String(64))
    #: mainland mobile, 11 digits; unique among members that have one
    mobile: Mapped[str | None] = mapped_column(String(16), unique=True)
    #: male | female | unknown
    gender: Mapped[str] = mapped_column(String(8), default="unknown")
    birthday: Mapped[date | None]
    card_no: Mapped[str | None] = mapped_column(String(32), unique=True)
    tier_id: Mapped[int | None] = mapped_column(ForeignKey("member_tiers.id", ondelete="RESTRICT"))
    #: the cached balance: always the sum of the member's points entries
    points_balance: Mapped[int] = mapped_column(default=0)
    home_store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id", ondelete="SET NULL"))
    tags: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    #: active | disabled | erased | merged
    status: Mapped[str] = mapped_column(String(16), default="active")
    #: for a merged record: the member it was merged into (its orders, points, coupons and
    #: tier history are there now)
    merged_into_id: Mapped[int | None] = mapped_column(BigIntId)
    marketing_consent: Mapped[bool] = mapped_column(default=False)
    #: console | terminal | import | mini_program | other
    channel: Mapped[str] = mapped_column(String(16), default="console")
    registered_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    erased_at: Mapped[datetime | None]
    #: the TOTP secret (base32) of the dynamic member code; made on first use
    code_secret: Mapped[str | None] = mapped_column(String(64))
    #: the last time step whose dynamic code was used: each step's code works once
    code_last_step: Mapped[int | None] = mapped_column(BigInteger)


class MemberPointsEntry(Base):
    """One line of the points ledger. Rows are only ever inserted."""

    __tablename__ = "member_points_entries"
    __table_args__ = (
        Index("ix_member_points_entries_member", "member_id", "id"),
        Index("ix_member_points_entries_order", "order_id"),
        CheckConstraint("points <> 0", name="points_nonzero"),
        CheckConstraint(
            "kind <> 'adjust' OR (reason IS NOT NULL AND reason <> '')", name="reason_required"
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="RESTRICT"))
    #: one of POINTS_KINDS
    kind: Mapped[str] = mapped_column(String(16))
    #: signed: positive awarded, negative spent, reversed or expired
    points: Mapped[int]
    balance_after: Mapped[int]
    order_id: Mapped[int | None] = mapped_column(BigIntId)
    #: for an earn or a positive adjustment: its lot
    lot_id: Mapped[int | None] = mapped_column(BigIntId)
    reason: Mapped[str | None] = mapped_column(String(300))
    data: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(100), default="")
    occurred_at: Mapped[datetime]


class MemberPointsLot(Base):
    """What is left of one award. Spending takes from the lot that expires first, so expiry
    takes exactly what was never spent. The lots' remaining points sum to the balance."""

    __tablename__ = "member_points_lots"
    __table_args__ = (
        Index("ix_member_points_lots_open", "member_id", "expires_at", "id"),
        Index("ix_member_points_lots_expiry", "expires_at"),
        CheckConstraint("remaining >= 0 AND remaining <= awarded", name="remaining_range"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="RESTRICT"))
    awarded: Mapped[int]
    remaining: Mapped[int]
    awarded_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    order_id: Mapped[int | None] = mapped_column(BigIntId)


class MemberOrder(Base):
    """An order of a member as the programme counts it: its net spend and the points it earned
    (so a refund reverses exactly what its order earned, and a hook called twice is a no-op)."""

    __tablename__ = "member_orders"
    __table_args__ = (
        UniqueConstraint("order_id"),
        Index("ix_member_orders_member_paid", "member_id", "paid_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="RESTRICT"))
    order_id: Mapped[int] = mapped_column(BigIntId)
    store_id: Mapped[int]
    paid_at: Mapped[datetime]
    #: what was paid and not refunded
    net_fen: Mapped[int] = mapped_column(default=0)
    #: points per yuan x 100 when the order was paid (the programme's rate times the tier's
    #: multiplier), so a refund reverses at the rate the order earned at
    rate_pct: Mapped[int] = mapped_column(default=100)
    points_earned: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime]


class MemberTierChange(Base):
    """The member's tier history."""

    __tablename__ = "member_tier_changes"
    __table_args__ = (Index("ix_member_tier_changes_member", "member_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="RESTRICT"))
    from_tier_id: Mapped[int | None]
    to_tier_id: Mapped[int | None]
    #: upgrade | downgrade
    direction: Mapped[str] = mapped_column(String(16))
    #: order_paid | refund | nightly | manual
    reason: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[int | None] = mapped_column(BigIntId)
    spend_fen: Mapped[int]
    order_count: Mapped[int]
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_name: Mapped[str] = mapped_column(String(100), default="")
    occurred_at: Mapped[datetime]


class MemberMessage(Base):
    """A message to a member, read on their own page (the abnormal-order reminder's "member
    message", a tier change); unread until the page marks it read."""

    __tablename__ = "member_messages"
    __table_args__ = (Index("ix_member_messages_member", "member_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="RESTRICT"))
    #: order_reminder | tier_change
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(String(1000))
    order_id: Mapped[int | None] = mapped_column(BigIntId)
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]


class MemberSmsCode(Base):
    """A one-time code sent by SMS to a member's mobile: to identify them at a terminal or to
    sign in to their own page. Only its hash is kept; wrong guesses are counted by the rate
    limiter (per mobile), so a refusal writes nothing."""

    __tablename__ = "member_sms_codes"
    __table_args__ = (Index("ix_member_sms_codes_mobile", "mobile", "purpose", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    mobile: Mapped[str] = mapped_column(String(16))
    #: terminal | portal
    purpose: Mapped[str] = mapped_column(String(16))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

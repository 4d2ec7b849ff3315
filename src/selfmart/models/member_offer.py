"""Member offers: saved segments (filters that pick members), coupon templates, the coupons
issued to members, and the issue runs that gave them out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from selfmart.db import Base, BigIntId, JSONDoc


class MemberSegment(Base):
    """A saved filter over members (tier, store, tag, spend, last visit, birthday month, RFM
    scores), evaluated when it is used: the members it picks change as they shop."""

    __tablename__ = "member_segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(300), default="")
    #: selfmart.members.segments.SegmentRules as JSON
    rules: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CouponTemplate(Base):
    """What a coupon gives and when it may be used. Coupons copy the terms when issued, so a
    later edit of the template never changes a coupon a member already holds."""

    __tablename__ = "coupon_templates"
    __table_args__ = (
        CheckConstraint("kind IN ('amount', 'percent')", name="kind_known"),
        CheckConstraint(
            "(kind = 'amount' AND amount_off_fen > 0) OR "
            "(kind = 'percent' AND percent_off_bp > 0 AND percent_off_bp <= 10000)",
            name="value_set",
        ),
        CheckConstraint("min_spend_fen >= 0", name="min_spend_nonnegative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    #: amount: a fixed amount off; percent: a share off, capped by max_off_fen
    kind: Mapped[str] = mapped_column(String(8))
    amount_off_fen: Mapped[int] = mapped_column(default=0)
    #: basis points off (1500 = 15% off)
    percent_off_bp: Mapped[int] = mapped_column(default=0)
    max_off_fen: Mapped[int | None]
    min_spend_fen: Mapped[int] = mapped_column(default=0)
    #: a coupon is valid this many days from its issue ...
    valid_days: Mapped[int | None]
    #: ... or within these fixed dates (when valid_days is None)
    valid_from: Mapped[datetime | None]
    valid_to: Mapped[datetime | None]
    #: issued by the nightly job at the start of each member's birthday month
    birthday: Mapped[bool] = mapped_column(default=False)
    #: a birthday template for one tier only (None: every tier, and members without one)
    birthday_tier_id: Mapped[int | None] = mapped_column(
        ForeignKey("member_tiers.id", ondelete="SET NULL")
    )
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CouponIssue(Base):
    """One run that gave a template's coupons to a segment or a tier (a job with progress)."""

    __tablename__ = "coupon_issues"

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("coupon_templates.id"))
    #: segment | tier
    target: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[int]
    target_name: Mapped[str] = mapped_column(String(64), default="")
    job_id: Mapped[int | None]
    #: queued | running | done | failed
    status: Mapped[str] = mapped_column(String(16), default="queued")
    issued: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class MemberCoupon(Base):
    """A coupon a member holds. Redeemed once: a conditional UPDATE from `issued` to
    `redeemed` is what decides between two terminals."""

    __tablename__ = "member_coupons"
    __table_args__ = (
        # One coupon per member per issue key (an issue run, a birthday year): a job that
        # runs twice issues nothing the second time.
        UniqueConstraint("member_id", "issue_key"),
        Index("ix_member_coupons_member", "member_id", "status"),
        Index("ix_member_coupons_order", "order_id"),
        CheckConstraint("status IN ('issued', 'redeemed', 'void')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("coupon_templates.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    amount_off_fen: Mapped[int] = mapped_column(default=0)
    percent_off_bp: Mapped[int] = mapped_column(default=0)
    max_off_fen: Mapped[int | None]
    min_spend_fen: Mapped[int] = mapped_column(default=0)
    valid_from: Mapped[datetime]
    valid_to: Mapped[datetime]
    #: issued | redeemed | void (expiry is read from valid_to, never written)
    status: Mapped[str] = mapped_column(String(16), default="issued")
    #: manual | segment | tier | birthday
    source: Mapped[str] = mapped_column(String(16))
    issue_key: Mapped[str | None] = mapped_column(String(40))
    issue_id: Mapped[int | None]
    issued_at: Mapped[datetime]
    order_id: Mapped[int | None] = mapped_column(BigIntId)
    discount_fen: Mapped[int | None]
    redeemed_at: Mapped[datetime | None]

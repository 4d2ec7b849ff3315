"""Reusable dependencies of the members routes: who may act, and the record a path names
(loaded, or a 404 naming it), so each route states only what it does."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from selfmart.deps import SessionDep
from selfmart.iam.actor import Actor
from selfmart.iam.dependencies import require
from selfmart.iam.permissions import Perm
from selfmart.members import coupons, profiles, segments
from selfmart.models import CouponTemplate, Member, MemberSegment

MemberId = Annotated[int, Path(ge=1, le=2**53)]
#: ids of the programme's own small tables (tiers, segments, coupon templates)
RuleId = Annotated[int, Path(ge=1, le=2_147_483_647)]

Reader = Annotated[Actor, require(Perm.MEMBER_READ)]
Writer = Annotated[Actor, require(Perm.MEMBER_WRITE)]
Marketer = Annotated[Actor, require(Perm.MEMBER_MARKETING)]


async def get_member(session: SessionDep, member_id: MemberId) -> Member:
    return await profiles.get(session, member_id)


async def get_segment(session: SessionDep, segment_id: RuleId) -> MemberSegment:
    return await segments.get(session, segment_id)


async def get_coupon_template(session: SessionDep, template_id: RuleId) -> CouponTemplate:
    return await coupons.get_template(session, template_id)


MemberDep = Annotated[Member, Depends(get_member)]
SegmentDep = Annotated[MemberSegment, Depends(get_segment)]
CouponTemplateDep = Annotated[CouponTemplate, Depends(get_coupon_template)]

"""HTTP routes of the members domain: profiles, points, tiers and the programme's rules."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from selfmart.deps import SessionDep
from selfmart.errors import error_responses
from selfmart.iam.actor import Actor
from selfmart.iam.dependencies import require
from selfmart.iam.permissions import Perm
from selfmart.kit.pagination import Page, PageParams, page_params
from selfmart.kit.time import utcnow
from selfmart.members import points, profiles, tiers
from selfmart.members import service as members
from selfmart.members.profiles import MemberFilters
from selfmart.members.schemas import (
    EraseBody,
    MemberCreate,
    MemberPii,
    MemberRead,
    MemberStatus,
    MemberStatusChange,
    MemberUpdate,
    PointsAdjust,
    PointsEntryRead,
    PointsLotRead,
    PointsRedeem,
    ProgramRead,
    ProgramUpdate,
    TierChangeRead,
    TierCreate,
    TierRead,
    TierStanding,
    TierUpdate,
)
from selfmart.models import MemberPointsLot

router = APIRouter(prefix="/members", tags=["members"])

MemberId = Annotated[int, Path(ge=1, le=2**53)]
TierId = Annotated[int, Path(ge=1, le=2_147_483_647)]
MEDIA_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}


def member_filters(
    q: Annotated[
        str | None, Query(max_length=64, description="member no, card no, mobile or its last 4")
    ] = None,
    tier_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    home_store_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    tag: Annotated[str | None, Query(max_length=32)] = None,
    status: MemberStatus | None = None,
    birthday_month: Annotated[int | None, Query(ge=1, le=12)] = None,
    min_points: Annotated[int | None, Query(ge=0, le=10**9)] = None,
    registered_from: datetime | None = None,
    registered_to: datetime | None = None,
) -> MemberFilters:
    return MemberFilters(
        q=q,
        tier_id=tier_id,
        home_store_id=home_store_id,
        tag=tag,
        status=status,
        birthday_month=birthday_month,
        min_points=min_points,
        registered_from=registered_from,
        registered_to=registered_to,
    )


Filters = Annotated[MemberFilters, Depends(member_filters)]


# --- the programme and tiers (declared before /{member_id} so the paths do not clash) ---


@router.get(
    "/program", response_model=ProgramRead, operation_id="get_member_program",
    responses=error_responses(401, 403),
)  # fmt: skip
async def get_program(
    session: SessionDep, actor: Annotated[Actor, require(Perm.MEMBER_READ)]
) -> ProgramRead:
    return ProgramRead.model_validate(await points.program(session))


@router.patch(
    "/program", response_model=ProgramRead, operation_id="update_member_program",
    responses=error_responses(401, 403, 422),
)  # fmt: skip
async def update_program(
    body: ProgramUpdate, session: SessionDep, actor: Annotated[Actor, require(Perm.MEMBER_TIER)]
) -> ProgramRead:
    return ProgramRead.model_validate(await tiers.update_program(session, body, actor=actor))


@router.get(
    "/tiers", response_model=list[TierRead], operation_id="list_member_tiers",
    responses=error_responses(401, 403),
)  # fmt: skip
async def list_tiers(
    session: SessionDep, actor: Annotated[Actor, require(Perm.MEMBER_READ)]
) -> list[TierRead]:
    return [TierRead.model_validate(t) for t in await tiers.active_tiers(session)]


@router.post(
    "/tiers", response_model=TierRead, status_code=201, operation_id="create_member_tier",
    responses=error_responses(401, 403, 409, 422),
)  # fmt: skip
async def create_tier(
    body: TierCreate, session: SessionDep, actor: Annotated[Actor, require(Perm.MEMBER_TIER)]
) -> TierRead:
    return TierRead.model_validate(await tiers.create_tier(session, body, actor=actor))


@router.patch(
    "/tiers/{tier_id}", response_model=TierRead, operation_id="update_member_tier",
    responses=error_responses(401, 403, 404, 409, 422),
)  # fmt: skip
async def update_tier(
    tier_id: TierId,
    body: TierUpdate,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.MEMBER_TIER)],
) -> TierRead:
    tier = await tiers.get_tier(session, tier_id)
    return TierRead.model_validate(await tiers.update_tier(session, tier, body, actor=actor))


@router.delete(
    "/tiers/{tier_id}", status_code=204, operation_id="delete_member_tier",
    responses=error_responses(401, 403, 404, 409),
)  # fmt: skip
async def delete_tier(
    tier_id: TierId, session: SessionDep, actor: Annotated[Actor, require(Perm.MEMBER_TIER)]
) -> Response:
    await tiers.delete_tier(session, await tiers.get_tier(session, tier_id), actor=actor)
    return Response(status_code=204)


# --- profiles ---


@router.get(
    "", response_model=Page[MemberRead], operation_id="list_members",
    responses=error_responses(401, 403),
)  # fmt: skip
async def list_members(
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.MEMBER_READ)],
    params: Annotated[PageParams, Depends(page_params)],
    f: Filters,
) -> Page[MemberRead]:
    items, total = await profiles.list_members(session, f, params)
    return Page(items=items, total=total, page=params.page, size=params.size)


@router.get(
    "/export",
    operation_id="export_members",
    responses={
        200: {
            "description": "the matching members as a spreadsheet",
            "content": {MEDIA_TYPES["xlsx"]: {}, MEDIA_TYPES["csv"]: {}},
        },
        **error_responses(401, 403),
    },
    response_class=Response,
)
async def export_members(
    request: Request,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.MEMBER_EXPORT)],
    f: Filters,
    format: Annotated[
        Literal["xlsx", "csv"], Query(description="xlsx or csv (UTF-8, BOM)")
    ] = "xlsx",
) -> Response:
    """Names and mobiles masked unless the reader holds member:pii (then audited)."""
    settings = request.app.state.settings
    lang = "en" if request.headers.get("accept-language", "").lower().startswith("en") else "zh"
    data = await profiles.export(
        session, f, fmt=format, lang=lang, zone=settings.default_timezone, actor=actor
    )
    name = f"members-{utcnow().strftime('%Y%m%d-%H%M%S')}.{format}"
    return Response(
        data,
        media_type=MEDIA_TYPES[format],
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


@router.post(
    "", response_model=MemberRead, status_code=201, operation_id="create_member",
    responses=error_responses(401, 403, 409, 422),
)  # fmt: skip
async def create_member(
    body: MemberCreate, session: SessionDep, actor: Annotated[Actor, require(Perm.MEMBER_WRITE)]
) -> MemberRead:
    member = await profiles.create(session, body, actor=actor)
    return await profiles.read_one(session, member)


@router.get(
    "/{member_id}", response_model=MemberRead, operation_id="get_member",
    responses=error_responses(401, 403, 404),
)  # fmt: skip
async def get_member(
    member_id: MemberId, session: SessionDep, actor: Annotated[Actor, require(Perm.MEMBER_READ)]
) -> MemberRead:
    return await profiles.read_one(session, await profiles.get(session, member_id))


@router.patch(
    "/{member_id}", response_model=MemberRead, operation_id="update_member",
    responses=error_responses(401, 403, 404, 409, 422),
)  # fmt: skip
async def update_member(
    member_id: MemberId,
    body: MemberUpdate,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.MEMBER_WRITE)],
) -> MemberRead:
    member = await profiles.get(session, member_id)
    await profiles.update_profile(session, member, body, actor=actor)
    return await profiles.read_one(session, member)


@router.post(
    "/{member_id}/status", response_model=MemberRead, operation_id="set_member_status",
    responses=error_responses(401, 403, 404, 409, 422),
)  # fmt: skip
async def set_member_status(
    member_id: MemberId,
    body: MemberStatusChange,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.MEMBER_WRITE)],
) -> MemberRead:
    member = await profiles.get(session, member_id)
    await profiles.set_status(session, member, body, actor=actor)
    return await profiles.read_one(session, member)


@router.post(
    "/{member_id}/erase", response_model=MemberRead, operation_id="erase_member",
    responses=error_responses(401, 403, 404, 409, 422),
)  # fmt: skip
async def erase_member(
    member_id: MemberId,
    body: EraseBody,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.MEMBER_PII)],
) -> MemberRead:
    """Remove the member's personal data on their request (orders stay, anonymised)."""
    member = await profiles.get(session, member_id)
    await profiles.erase(session, member, reason=body.reason, actor=actor)
    return await profiles.read_one(session, member)


@router.post(
    "/{member_id}/reveal", response_model=MemberPii, operation_id="reveal_member",
    responses=error_responses(401, 403, 404),
)  # fmt: skip
async def reveal_member(
    member_id: MemberId, session: SessionDep, actor: Annotated[Actor, require(Perm.MEMBER_PII)]
) -> MemberPii:
    """The whole name and mobile; each reveal is in the audit log."""
    return await profiles.reveal(session, await profiles.get(session, member_id), actor=actor)


# --- points ---


@router.get(
    "/{member_id}/points", response_model=Page[PointsEntryRead],
    operation_id="list_member_points", responses=error_responses(401, 403, 404),
)  # fmt: skip
async def list_points(
    member_id: MemberId,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.MEMBER_READ)],
    params: Annotated[PageParams, Depends(page_params)],
) -> Page[PointsEntryRead]:
    await profiles.get(session, member_id)
    rows, total = await members.entries(session, member_id, offset=params.offset, limit=params.size)
    return Page(
        items=[PointsEntryRead.model_validate(r) for r in rows],
        total=total, page=params.page, size=params.size,
    )  # fmt: skip


@router.get(
    "/{member_id}/points/lots", response_model=list[PointsLotRead],
    operation_id="list_member_points_lots", responses=error_responses(401, 403, 404),
)  # fmt: skip
async def list_lots(
    member_id: MemberId, session: SessionDep, actor: Annotated[Actor, require(Perm.MEMBER_READ)]
) -> list[PointsLotRead]:
    from sqlalchemy import select

    await profiles.get(session, member_id)
    rows = await session.scalars(
        select(MemberPointsLot)
        .where(MemberPointsLot.member_id == member_id, MemberPointsLot.remaining > 0)
        .order_by(MemberPointsLot.expires_at, MemberPointsLot.id)
    )
    return [PointsLotRead.model_validate(r) for r in rows.all()]


@router.post(
    "/{member_id}/points/adjust", response_model=PointsEntryRead, status_code=201,
    operation_id="adjust_member_points", responses=error_responses(401, 403, 404, 409, 422),
)  # fmt: skip
async def adjust_points(
    member_id: MemberId,
    body: PointsAdjust,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.MEMBER_POINTS)],
) -> PointsEntryRead:
    member = await profiles.get(session, member_id)
    entry = await members.adjust(session, member, body.points, reason=body.reason, actor=actor)
    return PointsEntryRead.model_validate(entry)


@router.post(
    "/{member_id}/points/redeem", response_model=PointsEntryRead, status_code=201,
    operation_id="redeem_member_points", responses=error_responses(401, 403, 404, 409, 422),
)  # fmt: skip
async def redeem_points(
    member_id: MemberId,
    body: PointsRedeem,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.MEMBER_POINTS)],
) -> PointsEntryRead:
    member = await profiles.get(session, member_id)
    entry = await members.redeem(
        session, member, body.points, reason=body.reason, order_id=body.order_id, actor=actor
    )
    return PointsEntryRead.model_validate(entry)


# --- tier history ---


@router.get(
    "/{member_id}/tier-history", response_model=list[TierChangeRead],
    operation_id="list_member_tier_history", responses=error_responses(401, 403, 404),
)  # fmt: skip
async def tier_history(
    member_id: MemberId, session: SessionDep, actor: Annotated[Actor, require(Perm.MEMBER_READ)]
) -> list[TierChangeRead]:
    await profiles.get(session, member_id)
    return [TierChangeRead.model_validate(c) for c in await tiers.history(session, member_id)]


@router.get(
    "/{member_id}/tier-standing", response_model=TierStanding,
    operation_id="get_member_tier_standing", responses=error_responses(401, 403, 404),
)  # fmt: skip
async def tier_standing(
    member_id: MemberId, session: SessionDep, actor: Annotated[Actor, require(Perm.MEMBER_READ)]
) -> TierStanding:
    await profiles.get(session, member_id)
    rules = await points.program(session)
    where = await tiers.standing(session, member_id, window_days=rules.tier_window_days)
    best = tiers.best_tier(await tiers.active_tiers(session), where)
    return TierStanding(
        spend_fen=where.spend_fen,
        order_count=where.order_count,
        window_days=rules.tier_window_days,
        qualifies_for_tier_id=best.id if best else None,
    )

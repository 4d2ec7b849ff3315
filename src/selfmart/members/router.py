"""HTTP routes of the members domain: profiles, points, tiers and the programme's rules."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    Path,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)

from selfmart.catalog.dependencies import StorageDep
from selfmart.deps import SessionDep
from selfmart.errors import error_responses
from selfmart.iam.actor import Actor
from selfmart.iam.dependencies import require
from selfmart.iam.permissions import Perm
from selfmart.kit import rowimport
from selfmart.kit.pagination import Page, PageParams, page_params
from selfmart.kit.tabular import Encoding
from selfmart.kit.time import utcnow
from selfmart.members import (
    coupons,
    history,
    import_jobs,
    importer,
    points,
    profiles,
    segments,
    tiers,
)  # fmt: skip
from selfmart.members import merge as merging
from selfmart.members import service as members
from selfmart.members.dependencies import (
    CouponTemplateDep,
    Marketer,
    MemberDep,
    MemberId,
    Reader,
    RuleId,
    SegmentDep,
    Writer,
)
from selfmart.members.profiles import MemberFilters
from selfmart.members.schemas import (
    CouponGive,
    CouponIssueBody,
    CouponIssueRead,
    CouponRead,
    CouponTemplateBody,
    CouponTemplateRead,
    CouponVoidBody,
    EraseBody,
    MemberCreate,
    MemberImportReport,
    MemberImportStarted,
    MemberOrderRead,
    MemberPii,
    MemberRead,
    MemberStatus,
    MemberStatusChange,
    MemberUpdate,
    MergeBody,
    MergeResult,
    PointsAdjust,
    PointsEntryRead,
    PointsLotRead,
    PointsRedeem,
    ProgramRead,
    ProgramUpdate,
    PurchaseHistory,
    RfmCell,
    SegmentBody,
    SegmentPreview,
    SegmentRead,
    SegmentRules,
    TierChangeRead,
    TierCreate,
    TierRead,
    TierStanding,
    TierUpdate,
)
from selfmart.models import CouponIssue, MemberPointsLot

router = APIRouter(prefix="/members", tags=["members"])

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
    min_spend_fen: Annotated[
        int | None, Query(ge=0, le=10**12, description="net spend over the last 365 days")
    ] = None,
    max_spend_fen: Annotated[int | None, Query(ge=0, le=10**12)] = None,
    last_visit_from: datetime | None = None,
    last_visit_to: datetime | None = None,
    segment_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
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
        min_spend_fen=min_spend_fen,
        max_spend_fen=max_spend_fen,
        last_visit_from=last_visit_from,
        last_visit_to=last_visit_to,
        segment_id=segment_id,
    )


Filters = Annotated[MemberFilters, Depends(member_filters)]


# --- the programme and tiers (declared before /{member_id} so the paths do not clash) ---


@router.get(
    "/program", response_model=ProgramRead, operation_id="get_member_program",
    responses=error_responses(401, 403),
)  # fmt: skip
async def get_program(session: SessionDep, actor: Reader) -> ProgramRead:
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
async def list_tiers(session: SessionDep, actor: Reader) -> list[TierRead]:
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
    tier_id: RuleId,
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
    tier_id: RuleId, session: SessionDep, actor: Annotated[Actor, require(Perm.MEMBER_TIER)]
) -> Response:
    await tiers.delete_tier(session, await tiers.get_tier(session, tier_id), actor=actor)
    return Response(status_code=204)


# --- profiles ---


@router.get(
    "", response_model=Page[MemberRead], operation_id="list_members",
    responses=error_responses(401, 403, 404, 422),
)  # fmt: skip
async def list_members(
    session: SessionDep,
    actor: Reader,
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
        **error_responses(401, 403, 404, 422),
    },
    response_class=Response,
)
async def export_members(
    request: Request,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.MEMBER_EXPORT)],
    f: Filters,
    format: Annotated[Literal["xlsx", "csv"], Query(description="xlsx or csv")] = "xlsx",
    encoding: Annotated[
        Literal["utf-8", "gbk"], Query(description="csv only: utf-8 (with a BOM) or gbk")
    ] = "utf-8",
) -> Response:
    """Names and mobiles masked unless the reader holds member:pii (then audited)."""
    settings = request.app.state.settings
    lang = "en" if request.headers.get("accept-language", "").lower().startswith("en") else "zh"
    data = await profiles.export(
        session, f, fmt=format, encoding=encoding, lang=lang, zone=settings.default_timezone,
        actor=actor,
    )  # fmt: skip
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
async def create_member(body: MemberCreate, session: SessionDep, actor: Writer) -> MemberRead:
    member = await profiles.create(session, body, actor=actor)
    return await profiles.read_one(session, member)


@router.get(
    "/{member_id}", response_model=MemberRead, operation_id="get_member",
    responses=error_responses(401, 403, 404),
)  # fmt: skip
async def get_member(member: MemberDep, session: SessionDep, actor: Reader) -> MemberRead:
    return await profiles.read_one(session, member)


@router.patch(
    "/{member_id}", response_model=MemberRead, operation_id="update_member",
    responses=error_responses(401, 403, 404, 409, 422),
)  # fmt: skip
async def update_member(
    member: MemberDep,
    body: MemberUpdate,
    session: SessionDep,
    actor: Writer,
) -> MemberRead:
    await profiles.update_profile(session, member, body, actor=actor)
    return await profiles.read_one(session, member)


@router.post(
    "/{member_id}/status", response_model=MemberRead, operation_id="set_member_status",
    responses=error_responses(401, 403, 404, 409, 422),
)  # fmt: skip
async def set_member_status(
    member: MemberDep,
    body: MemberStatusChange,
    session: SessionDep,
    actor: Writer,
) -> MemberRead:
    await profiles.set_status(session, member, body, actor=actor)
    return await profiles.read_one(session, member)


@router.post(
    "/{member_id}/erase", response_model=MemberRead, operation_id="erase_member",
    responses=error_responses(401, 403, 404, 409, 422),
)  # fmt: skip
async def erase_member(
    member: MemberDep,
    body: EraseBody,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.MEMBER_PII)],
) -> MemberRead:
    """Remove the member's personal data on their request (orders stay, anonymised)."""
    await profiles.erase(session, member, reason=body.reason, actor=actor)
    return await profiles.read_one(session, member)


@router.post(
    "/{member_id}/reveal", response_model=MemberPii, operation_id="reveal_member",
    responses=error_responses(401, 403, 404),
)  # fmt: skip
async def reveal_member(
    member: MemberDep, session: SessionDep, actor: Annotated[Actor, require(Perm.MEMBER_PII)]
) -> MemberPii:
    """The whole name and mobile; each reveal is in the audit log."""
    return await profiles.reveal(session, member, actor=actor)


# --- points ---


@router.get(
    "/{member_id}/points", response_model=Page[PointsEntryRead],
    operation_id="list_member_points", responses=error_responses(401, 403, 404),
)  # fmt: skip
async def list_points(
    member: MemberDep,
    session: SessionDep,
    actor: Reader,
    params: Annotated[PageParams, Depends(page_params)],
) -> Page[PointsEntryRead]:
    rows, total = await members.entries(session, member.id, offset=params.offset, limit=params.size)
    return Page(
        items=[PointsEntryRead.model_validate(r) for r in rows],
        total=total, page=params.page, size=params.size,
    )  # fmt: skip


@router.get(
    "/{member_id}/points/lots", response_model=list[PointsLotRead],
    operation_id="list_member_points_lots", responses=error_responses(401, 403, 404),
)  # fmt: skip
async def list_lots(member: MemberDep, session: SessionDep, actor: Reader) -> list[PointsLotRead]:
    from sqlalchemy import select

    rows = await session.scalars(
        select(MemberPointsLot)
        .where(MemberPointsLot.member_id == member.id, MemberPointsLot.remaining > 0)
        .order_by(MemberPointsLot.expires_at, MemberPointsLot.id)
    )
    return [PointsLotRead.model_validate(r) for r in rows.all()]


@router.post(
    "/{member_id}/points/adjust", response_model=PointsEntryRead, status_code=201,
    operation_id="adjust_member_points", responses=error_responses(401, 403, 404, 409, 422),
)  # fmt: skip
async def adjust_points(
    member: MemberDep,
    body: PointsAdjust,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.MEMBER_POINTS)],
) -> PointsEntryRead:
    entry = await members.adjust(session, member, body.points, reason=body.reason, actor=actor)
    return PointsEntryRead.model_validate(entry)


@router.post(
    "/{member_id}/points/redeem", response_model=PointsEntryRead, status_code=201,
    operation_id="redeem_member_points", responses=error_responses(401, 403, 404, 409, 422),
)  # fmt: skip
async def redeem_points(
    member: MemberDep,
    body: PointsRedeem,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.MEMBER_POINTS)],
) -> PointsEntryRead:
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
    member: MemberDep, session: SessionDep, actor: Reader
) -> list[TierChangeRead]:
    return [TierChangeRead.model_validate(c) for c in await tiers.history(session, member.id)]


@router.get(
    "/{member_id}/tier-standing", response_model=TierStanding,
    operation_id="get_member_tier_standing", responses=error_responses(401, 403, 404),
)  # fmt: skip
async def tier_standing(member: MemberDep, session: SessionDep, actor: Reader) -> TierStanding:
    rules = await points.program(session)
    where = await tiers.standing(session, member.id, window_days=rules.tier_window_days)
    best = tiers.best_tier(await tiers.active_tiers(session), where)
    return TierStanding(
        spend_fen=where.spend_fen,
        order_count=where.order_count,
        window_days=rules.tier_window_days,
        qualifies_for_tier_id=best.id if best else None,
    )


# --- purchase history, merge, coupons held ---


@router.get(
    "/{member_id}/history", response_model=PurchaseHistory,
    operation_id="get_member_history", responses=error_responses(401, 403, 404),
)  # fmt: skip
async def purchase_history(
    member: MemberDep, session: SessionDep, actor: Reader
) -> PurchaseHistory:
    """Orders, spend, favourite products, first and last visit, RFM scores."""
    return await history.summary(session, member.id)


@router.get(
    "/{member_id}/orders", response_model=Page[MemberOrderRead],
    operation_id="list_member_orders", responses=error_responses(401, 403, 404),
)  # fmt: skip
async def member_orders(
    member: MemberDep,
    session: SessionDep,
    actor: Reader,
    params: Annotated[PageParams, Depends(page_params)],
) -> Page[MemberOrderRead]:
    items, total = await history.order_page(
        session, member.id, offset=params.offset, limit=params.size
    )
    return Page(items=items, total=total, page=params.page, size=params.size)


@router.post(
    "/{member_id}/merge", response_model=MergeResult, operation_id="merge_member",
    responses=error_responses(401, 403, 404, 409, 422),
)  # fmt: skip
async def merge_member(
    member_id: MemberId,
    body: MergeBody,
    session: SessionDep,
    actor: Writer,
) -> MergeResult:
    """Merge the record `merged_id` into this one: its orders, points, coupons and tier
    history follow; it is marked merged."""
    return await merging.merge(session, member_id, body.merged_id, reason=body.reason,
                               actor=actor)  # fmt: skip


@router.get(
    "/{member_id}/coupons", response_model=list[CouponRead],
    operation_id="list_member_coupons", responses=error_responses(401, 403, 404),
)  # fmt: skip
async def list_member_coupons(
    member: MemberDep,
    session: SessionDep,
    actor: Reader,
    usable: bool = False,
) -> list[CouponRead]:
    found = await coupons.member_coupons(session, member.id, usable_only=usable)
    now = utcnow()
    return [coupons.read(c, now) for c in found]


@router.post(
    "/{member_id}/coupons", response_model=CouponRead, status_code=201,
    operation_id="give_member_coupon", responses=error_responses(401, 403, 404, 409, 422),
)  # fmt: skip
async def give_coupon(
    member: MemberDep,
    body: CouponGive,
    session: SessionDep,
    actor: Marketer,
) -> CouponRead:
    template = await coupons.get_template(session, body.template_id)
    return coupons.read(await coupons.give(session, member, template, actor=actor))


@router.post(
    "/{member_id}/coupons/{coupon_id}/void", response_model=CouponRead,
    operation_id="void_member_coupon", responses=error_responses(401, 403, 404, 409, 422),
)  # fmt: skip
async def void_coupon(
    member_id: MemberId,
    coupon_id: Annotated[int, Path(ge=1, le=2**53)],
    body: CouponVoidBody,
    session: SessionDep,
    actor: Marketer,
) -> CouponRead:
    # Not MemberDep: the path names member_id before coupon_id, and so does the spec.
    member = await profiles.get(session, member_id)
    coupon = await coupons.void(
        session, coupon_id, member_id=member.id, reason=body.reason, actor=actor
    )
    return coupons.read(coupon)


# --- import, segments, coupon templates and issues: one-segment paths, so they are on a
# router of their own that routers.py mounts before this one (GET /members/{member_id}
# would otherwise take GET /members/segments).

offers_router = APIRouter(prefix="/members", tags=["members"])


@offers_router.get(
    "/import/template", response_class=Response, operation_id="member_import_template",
    responses={200: {"content": {MEDIA_TYPES["xlsx"]: {}, MEDIA_TYPES["csv"]: {}}},
               **error_responses(401, 403)},
)  # fmt: skip
async def member_import_template(
    actor: Writer,
    format: Literal["xlsx", "csv"] = "xlsx",
) -> Response:
    name = f"会员导入模板.{format}"
    return Response(
        importer.template(format),
        media_type=MEDIA_TYPES[format],
        headers={"content-disposition": f"attachment; filename*=UTF-8''{quote(name)}"},
    )


@offers_router.post(
    "/import", response_model=MemberImportReport | MemberImportStarted,
    operation_id="import_members", responses=error_responses(401, 403, 413, 415, 422),
)  # fmt: skip
async def import_members(
    request: Request,
    response: Response,
    session: SessionDep,
    storage: StorageDep,
    actor: Writer,
    file: Annotated[UploadFile, File(description="xlsx or csv (UTF-8 or GBK)")],
    dry_run: Annotated[bool, Form(description="check every row and write nothing")] = True,
    mode: Annotated[
        Literal["all_or_nothing", "good_rows_only"],
        Form(description="all_or_nothing: any bad row and nothing is written"),
    ] = "all_or_nothing",
    encoding: Annotated[Encoding, Form(description="csv only")] = "auto",
) -> MemberImportReport | MemberImportStarted:
    """Members from a spreadsheet: first a dry run (the row-by-row report), then the same
    file with dry_run=false to create them. Existing mobiles and cards are reported, never
    overwritten. Small files are answered at once (200, the report); larger ones start a job
    (202) whose result is the report."""
    settings = request.app.state.settings
    data = await rowimport.upload_bytes(file, settings.import_max_bytes)
    options = importer.ImportOptions(
        mode=mode, dry_run=dry_run, encoding=encoding, max_rows=settings.import_max_rows
    )
    result = await import_jobs.submit(
        session, data, file.filename, options, actor=actor, storage=storage,
        sync_max_rows=settings.import_sync_max_rows,
    )  # fmt: skip
    if isinstance(result, MemberImportStarted):
        response.status_code = status.HTTP_202_ACCEPTED
    return result


@offers_router.get(
    "/segments", response_model=list[SegmentRead], operation_id="list_member_segments",
    responses=error_responses(401, 403),
)  # fmt: skip
async def list_segments(session: SessionDep, actor: Reader) -> list[SegmentRead]:
    return [SegmentRead.model_validate(s) for s in await segments.listing(session)]


@offers_router.post(
    "/segments", response_model=SegmentRead, status_code=201,
    operation_id="create_member_segment", responses=error_responses(401, 403, 409, 422),
)  # fmt: skip
async def create_segment(
    body: SegmentBody,
    session: SessionDep,
    actor: Marketer,
) -> SegmentRead:
    return SegmentRead.model_validate(await segments.create(session, body, actor=actor))


@offers_router.post(
    "/segments/preview", response_model=SegmentPreview,
    operation_id="preview_member_segment", responses=error_responses(401, 403, 422),
)  # fmt: skip
async def preview_segment(
    rules: SegmentRules,
    session: SessionDep,
    actor: Reader,
) -> SegmentPreview:
    """How many members these rules pick now, and the first 20 (masked)."""
    return await segments.preview(session, rules)


@offers_router.put(
    "/segments/{segment_id}", response_model=SegmentRead,
    operation_id="update_member_segment", responses=error_responses(401, 403, 404, 409, 422),
)  # fmt: skip
async def update_segment(
    segment: SegmentDep,
    body: SegmentBody,
    session: SessionDep,
    actor: Marketer,
) -> SegmentRead:
    return SegmentRead.model_validate(await segments.update(session, segment, body, actor=actor))


@offers_router.delete(
    "/segments/{segment_id}", status_code=204, operation_id="delete_member_segment",
    responses=error_responses(401, 403, 404),
)  # fmt: skip
async def delete_segment(
    segment: SegmentDep,
    session: SessionDep,
    actor: Marketer,
) -> Response:
    await segments.delete(session, segment, actor=actor)
    return Response(status_code=204)


@offers_router.get(
    "/rfm", response_model=list[RfmCell], operation_id="get_member_rfm_grid",
    responses=error_responses(401, 403),
)  # fmt: skip
async def rfm_grid(
    session: SessionDep,
    actor: Reader,
    window_days: Annotated[int, Query(ge=1, le=3650)] = 365,
) -> list[RfmCell]:
    """Members by recency and frequency quintile (5 best), with their spend."""
    rows = await segments.rfm_grid(session, window_days=window_days)
    return [RfmCell.model_validate(r) for r in rows]


@offers_router.get(
    "/coupon-templates", response_model=list[CouponTemplateRead],
    operation_id="list_coupon_templates", responses=error_responses(401, 403),
)  # fmt: skip
async def list_coupon_templates(session: SessionDep, actor: Reader) -> list[CouponTemplateRead]:
    return [CouponTemplateRead.model_validate(t) for t in await coupons.templates(session)]


@offers_router.post(
    "/coupon-templates", response_model=CouponTemplateRead, status_code=201,
    operation_id="create_coupon_template", responses=error_responses(401, 403, 404, 422),
)  # fmt: skip
async def create_coupon_template(
    body: CouponTemplateBody,
    session: SessionDep,
    actor: Marketer,
) -> CouponTemplateRead:
    return CouponTemplateRead.model_validate(
        await coupons.create_template(session, body, actor=actor)
    )


@offers_router.put(
    "/coupon-templates/{template_id}", response_model=CouponTemplateRead,
    operation_id="update_coupon_template", responses=error_responses(401, 403, 404, 422),
)  # fmt: skip
async def update_coupon_template(
    template: CouponTemplateDep,
    body: CouponTemplateBody,
    session: SessionDep,
    actor: Marketer,
) -> CouponTemplateRead:
    return CouponTemplateRead.model_validate(
        await coupons.update_template(session, template, body, actor=actor)
    )


@offers_router.get(
    "/coupon-issues", response_model=list[CouponIssueRead],
    operation_id="list_coupon_issues", responses=error_responses(401, 403),
)  # fmt: skip
async def list_coupon_issues(session: SessionDep, actor: Reader) -> list[CouponIssueRead]:
    from sqlalchemy import select

    rows = await session.scalars(select(CouponIssue).order_by(CouponIssue.id.desc()).limit(100))
    return [CouponIssueRead.model_validate(r) for r in rows.all()]


@offers_router.post(
    "/coupon-issues", response_model=CouponIssueRead, status_code=202,
    operation_id="start_coupon_issue", responses=error_responses(401, 403, 404, 409, 422),
)  # fmt: skip
async def start_coupon_issue(
    body: CouponIssueBody,
    session: SessionDep,
    actor: Marketer,
) -> CouponIssueRead:
    """Give a template's coupon to every active member of a segment or tier, as a job
    (follow it at GET /api/v1/jobs/{job_id})."""
    return CouponIssueRead.model_validate(await coupons.start_issue(session, body, actor=actor))

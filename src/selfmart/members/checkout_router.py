"""HTTP routes of members at the checkout: the signed terminal routes that identify a member
and quote their order (docs/terminal-protocol.md §7), and the member's own page (public
sign-in by SMS code, then a member session)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.deps import SessionDep
from selfmart.errors import ValidationFailed, error_responses
from selfmart.iam.actor import Actor
from selfmart.kit.pagination import Page, PageParams, page_params
from selfmart.kit.ratelimit import limiter, rate_limited
from selfmart.kit.time import utcnow
from selfmart.members import coupons, identify, points, portal, redeem
from selfmart.members import pricing as member_pricing
from selfmart.members.checkout_schemas import (
    IdentifyRequest,
    MemberAtTerminal,
    PortalCode,
    PortalCoupon,
    PortalMessages,
    PortalMessagesRead,
    PortalOrder,
    PortalOverview,
    PortalPoints,
    PortalSession,
    PortalSignIn,
    PortalTierChange,
    Quote,
    QuoteRequest,
    SmsCodeRequest,
    SmsCodeSent,
)
from selfmart.members.profiles import mask_mobile, mask_name
from selfmart.models import Member
from selfmart.terminals.dependencies import SIGNED, TerminalDep

#: who asks for a sign-in code on the member page (nobody signed in yet)
MEMBER_PAGE = Actor(kind="system", id=None, name="member page", store_ids=frozenset())

terminal_router = APIRouter(prefix="/members", tags=["terminal-api"])
portal_router = APIRouter(prefix="/public/members", tags=["member-page"])


# ---------------------------------------------------------------- terminal (signed)


@terminal_router.post(
    "/sms-code",
    response_model=SmsCodeSent,
    status_code=202,
    operation_id="terminal_member_sms_code",
    openapi_extra=SIGNED,
    responses=error_responses(401, 403, 404, 409, 422, 429),
    dependencies=[rate_limited("member_identify")],
)
async def terminal_sms_code(
    body: SmsCodeRequest, request: Request, session: SessionDep, ctx: TerminalDep
) -> dict[str, Any]:
    """Text a one-time code to the member with this mobile (404 when none has it)."""
    expires = await identify.send_sms_code(
        session, body.mobile, purpose="terminal", limiter=limiter(request), must_exist=True,
        actor=ctx.actor,
    )  # fmt: skip
    return {"expires_at": expires}


@terminal_router.post(
    "/identify",
    response_model=MemberAtTerminal,
    operation_id="terminal_member_identify",
    openapi_extra=SIGNED,
    responses=error_responses(401, 403, 409, 422, 429),
    dependencies=[rate_limited("member_identify")],
)
async def terminal_identify(
    body: IdentifyRequest, request: Request, session: SessionDep, ctx: TerminalDep
) -> dict[str, Any]:
    """The member by their dynamic code or by mobile + SMS code: who they are (masked), their
    tier and points, and the token to send with the quote and the order."""
    rl = limiter(request)
    if body.code is not None:
        member = await identify.by_code(
            session, body.code.replace(" ", ""), terminal_id=ctx.terminal.id, limiter=rl
        )
        how = "code"
    else:
        assert body.mobile is not None
        assert body.sms_code is not None
        member = await identify.by_sms_code(
            session, body.mobile, body.sms_code, purpose="terminal", limiter=rl
        )
        how = "sms"
    await identify.record_identified(
        session, member, how=how, actor=ctx.actor, store_id=ctx.store.id
    )
    return await _at_terminal(session, member, ctx.terminal.id, how)


async def _at_terminal(
    session: AsyncSession, member: Member, terminal_id: int, how: str
) -> dict[str, Any]:
    checkout = await member_pricing.checkout(session, member)
    rules = await points.program(session)
    return {
        "member_token": identify.member_token(member.id, terminal_id),
        "token_expires_at": utcnow() + identify.MEMBER_TOKEN_TTL,
        "identified_by": how,
        "member_no": member.member_no,
        "name": mask_name(member.name),
        "mobile": mask_mobile(member.mobile),
        "tier_name": checkout.tier_name,
        "tier_discount_bp": checkout.discount_bp,
        "tier_member_prices": checkout.member_prices,
        "points_balance": member.points_balance,
        "usable_points": await redeem.usable(session, member.id),
        "redeem_points_per_yuan": rules.redeem_points_per_yuan,
        "redeem_max_share_bp": rules.redeem_max_share_bp,
    }


@terminal_router.post(
    "/quote",
    response_model=Quote,
    operation_id="terminal_member_quote",
    openapi_extra=SIGNED,
    responses=error_responses(401, 403, 409, 422),
)
async def terminal_quote(
    body: QuoteRequest, session: SessionDep, ctx: TerminalDep
) -> dict[str, Any]:
    """What the order will cost, priced by the server as the order will be: member prices, the
    tier's discount, any coupon and any points, with what was saved per line and in total.
    Writes nothing: the coupon and the points are spent when the order is sent."""
    member, checkout = None, None
    if body.member_token is not None:
        member, checkout = await member_pricing.for_token(
            session, body.member_token, terminal_id=ctx.terminal.id
        )
    elif body.redeem_points is not None or body.coupon_code is not None:
        what = "Points can be spent" if body.redeem_points is not None else "A coupon is used"
        raise ValidationFailed(
            f"{what} only by an identified member (member_token)",
            field="redeem_points" if body.redeem_points is not None else "coupon_code",
        )
    priced = await member_pricing.price_for(
        session, store_id=ctx.store.id, lines=body.lines, member=checkout,
        legacy_member=False, terminal_total_fen=None,
    )  # fmt: skip
    coupon = None
    if body.coupon_code is not None and member is not None:
        coupon = await coupons.plan_for_order(session, member.id, body.coupon_code, priced)
    rules = await points.program(session)
    most = redeem.cap_points(priced.total_fen, rules) if member is not None else 0
    spend = None
    if body.redeem_points is not None and member is not None:
        spend = await redeem.plan(session, member, priced, body.redeem_points)
    code = coupon.code if coupon is not None else None
    return member_pricing.present(priced, spend, code) | {"max_points": most}


# ---------------------------------------------------------------- the member's own page


#: The member page's credential, declared in the OpenAPI document as its own scheme.
MEMBER_SESSION = APIKeyHeader(
    name="X-Member-Session",
    scheme_name="MemberSession",
    description="the session the member page got by signing in with an SMS code",
    auto_error=False,
)


async def _member(
    session: SessionDep,
    x_member_session: Annotated[str | None, Security(MEMBER_SESSION)] = None,
) -> Member:
    if x_member_session is not None and len(x_member_session) > 500:
        x_member_session = None  # no session is that long: refused as a missing one
    return await portal.member_of(session, x_member_session)


class MemberSession:
    """Dependency: the request carries a member's session (`X-Member-Session`). The route
    walker (tests/test_routes.py) recognises `__selfmart_member_auth__` as the declaration."""

    __selfmart_member_auth__ = True

    async def __call__(self, member: Annotated[Member, Depends(_member)]) -> Member:
        return member


MemberDep = Annotated[Member, Depends(MemberSession())]


@portal_router.post(
    "/sms-code",
    response_model=SmsCodeSent,
    status_code=202,
    operation_id="member_page_sms_code",
    responses=error_responses(422, 429),
    dependencies=[rate_limited("member_portal")],
)
async def portal_sms_code(
    body: SmsCodeRequest, request: Request, session: SessionDep
) -> dict[str, Any]:
    """Text a sign-in code. The answer is the same whether or not a member has the number."""
    await identify.send_sms_code(
        session, body.mobile, purpose="portal", limiter=limiter(request), must_exist=False,
        actor=MEMBER_PAGE,
    )  # fmt: skip
    return {"expires_at": utcnow() + identify.SMS_CODE_TTL}


@portal_router.post(
    "/sign-in",
    response_model=PortalSession,
    operation_id="member_page_sign_in",
    responses=error_responses(409, 422, 429),
    dependencies=[rate_limited("member_portal")],
)
async def portal_sign_in(body: PortalSignIn, request: Request, session: SessionDep) -> Any:
    return await portal.sign_in(session, body.mobile, body.code, limiter=limiter(request))


@portal_router.get(
    "/me",
    response_model=PortalOverview,
    operation_id="member_page_overview",
    responses=error_responses(401),
)
async def portal_overview(member: MemberDep, session: SessionDep) -> dict[str, Any]:
    return await portal.overview(session, member)


@portal_router.get(
    "/me/code",
    response_model=PortalCode,
    operation_id="member_page_code",
    responses=error_responses(401, 409),
)
async def portal_code(member: MemberDep, session: SessionDep) -> dict[str, Any]:
    """The dynamic member code to show at a terminal (it changes every 30 seconds)."""
    return await portal.code(session, member)


@portal_router.get(
    "/me/orders",
    response_model=Page[PortalOrder],
    operation_id="member_page_orders",
    responses=error_responses(401),
)
async def portal_orders(
    member: MemberDep, session: SessionDep, params: Annotated[PageParams, Depends(page_params)]
) -> Page[Any]:
    items, total = await portal.orders(session, member, offset=params.offset, limit=params.size)
    return Page(items=items, total=total, page=params.page, size=params.size)


@portal_router.get(
    "/me/points",
    response_model=Page[PortalPoints],
    operation_id="member_page_points",
    responses=error_responses(401),
)
async def portal_points(
    member: MemberDep, session: SessionDep, params: Annotated[PageParams, Depends(page_params)]
) -> Page[Any]:
    items, total = await portal.points_history(
        session, member, offset=params.offset, limit=params.size
    )
    return Page(items=items, total=total, page=params.page, size=params.size)


@portal_router.get(
    "/me/messages",
    response_model=PortalMessages,
    operation_id="member_page_messages",
    responses=error_responses(401),
)
async def portal_messages(
    member: MemberDep, session: SessionDep, params: Annotated[PageParams, Depends(page_params)]
) -> dict[str, Any]:
    """The member's messages, newest first (order reminders, tier changes), with how many of
    all of them are unread."""
    items, total, unread = await portal.message_page(
        session, member, offset=params.offset, limit=params.size
    )
    return {"items": items, "total": total, "page": params.page, "size": params.size,
            "unread": unread}  # fmt: skip


@portal_router.post(
    "/me/messages/{message_id}/read",
    response_model=PortalMessagesRead,
    operation_id="member_page_message_read",
    responses=error_responses(401, 404),
)
async def portal_message_read(
    message_id: Annotated[int, Path(ge=1, le=2**53)], member: MemberDep, session: SessionDep
) -> dict[str, int]:
    return await portal.read_messages(session, member, message_id)


@portal_router.post(
    "/me/messages/read",
    response_model=PortalMessagesRead,
    operation_id="member_page_messages_read",
    responses=error_responses(401),
)
async def portal_messages_read(member: MemberDep, session: SessionDep) -> dict[str, int]:
    """Mark every message read."""
    return await portal.read_messages(session, member, None)


@portal_router.get(
    "/me/tier-history",
    response_model=list[PortalTierChange],
    operation_id="member_page_tier_history",
    responses=error_responses(401),
)
async def portal_tier_history(member: MemberDep, session: SessionDep) -> list[dict[str, Any]]:
    """How the member's tier changed, newest first."""
    return await portal.tier_history(session, member)


@portal_router.get(
    "/me/coupons",
    response_model=list[PortalCoupon],
    operation_id="member_page_coupons",
    responses=error_responses(401),
)
async def portal_coupons(member: MemberDep, session: SessionDep) -> list[dict[str, Any]]:
    """The member's coupons, newest first, with their state and validity."""
    return await portal.coupon_list(session, member)

"""HTTP routes of the payments domain: channel settings (console), paying an order and reading
its payment state (terminals, signed), and the platforms' callbacks (public, verified)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from selfmart.config import get_settings
from selfmart.deps import SessionDep
from selfmart.errors import error_responses
from selfmart.iam.actor import Actor
from selfmart.iam.dependencies import CurrentActor, require
from selfmart.iam.permissions import Perm
from selfmart.kit.ids import INT32_MAX, INT64_MAX, QueryId
from selfmart.kit.pagination import Page, PageParams, page_params
from selfmart.kit.ratelimit import ORDER_LOOKUP, PAYMENT_NOTIFY, rate_limited
from selfmart.models import Payment, PaymentAccount
from selfmart.orders import receipts
from selfmart.orders.lookup import OrderNotFound
from selfmart.payments import accounts, attempts, callbacks, fastlane, jsapi, records
from selfmart.payments.schemas import (
    PaymentAccountCreate,
    PaymentAccountRead,
    PaymentAccountTest,
    PaymentAccountUpdate,
    PaymentAttemptRead,
    PaymentDetail,
    PaymentRead,
    PaymentStartIn,
    PaymentStateRead,
    PhonePayAttemptRead,
    PhonePayIn,
    PhonePaymentRead,
    PlatformChannel,
)
from selfmart.terminals.dependencies import SIGNED, TerminalDep

router = APIRouter(prefix="/payment-accounts", tags=["payments"])

AccountId = Annotated[int, Path(ge=1, le=2_147_483_647)]


async def _account_in_scope(
    account_id: AccountId, session: SessionDep, actor: CurrentActor
) -> PaymentAccount:
    """The path's account if the caller may see it (listed after the permission, so a caller
    without it gets 403 before anything is looked up; another store's account is a 404)."""
    return await accounts.get_account(session, account_id, actor=actor, for_update=True)


AccountInScope = Annotated[PaymentAccount, Depends(_account_in_scope)]


@router.get(
    "",
    response_model=list[PaymentAccountRead],
    operation_id="list_payment_accounts",
    responses=error_responses(401, 403),
)
async def list_payment_accounts(
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.PAYMENT_ACCOUNT_READ)],
    store_id: Annotated[
        int | None,
        Query(ge=1, le=2_147_483_647, description="this store's accounts and the chain's"),
    ] = None,
    channel: PlatformChannel | None = None,
) -> list[PaymentAccountRead]:
    return await accounts.list_accounts(session, actor=actor, store_id=store_id, channel=channel)


@router.post(
    "",
    response_model=PaymentAccountRead,
    status_code=201,
    operation_id="create_payment_account",
    responses=error_responses(401, 403, 404, 409),
)
async def create_payment_account(
    body: PaymentAccountCreate,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.PAYMENT_ACCOUNT_WRITE)],
) -> PaymentAccountRead:
    return await accounts.create_account(session, body, actor=actor)


@router.get(
    "/{account_id}",
    response_model=PaymentAccountRead,
    operation_id="get_payment_account",
    responses=error_responses(401, 403, 404),
)
async def get_payment_account(
    actor: Annotated[Actor, require(Perm.PAYMENT_ACCOUNT_READ)],
    account: AccountInScope,
) -> PaymentAccountRead:
    return accounts.read(account)


@router.patch(
    "/{account_id}",
    response_model=PaymentAccountRead,
    operation_id="update_payment_account",
    responses=error_responses(401, 403, 404, 409),
)
async def update_payment_account(
    body: PaymentAccountUpdate,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.PAYMENT_ACCOUNT_WRITE)],
    account: AccountInScope,
) -> PaymentAccountRead:
    return await accounts.update_account(session, account, body, actor=actor)


@router.post(
    "/{account_id}/test",
    response_model=PaymentAccountTest,
    operation_id="test_payment_account",
    responses=error_responses(401, 403, 404, 409),
)
async def test_payment_account(
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.PAYMENT_ACCOUNT_WRITE)],
    account: AccountInScope,
) -> PaymentAccountTest:
    """Ask the platform with the stored keys about a payment that cannot exist."""
    return await accounts.test_account(session, account, actor=actor)


# --- console: payments (every attempt), one payment whole ---------------------------------------

payments_router = APIRouter(prefix="/payments", tags=["payments"])


@payments_router.get(
    "",
    response_model=Page[PaymentRead],
    operation_id="list_payments",
    responses=error_responses(401, 403),
)
async def list_payments(
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.PAYMENT_READ)],
    params: Annotated[PageParams, Depends(page_params)],
    store_id: QueryId = None,
    channel: Annotated[str | None, Query(max_length=16, pattern=r"^[a-z]+$")] = None,
    status: Literal["pending", "succeeded", "failed", "closed"] | None = None,
    created_from: Annotated[
        datetime | None, Query(description="from this time (inclusive)")
    ] = None,
    created_to: Annotated[datetime | None, Query(description="until this time (exclusive)")] = None,
    amount_min_fen: Annotated[int | None, Query(ge=0, le=INT32_MAX)] = None,
    amount_max_fen: Annotated[int | None, Query(ge=0, le=INT32_MAX)] = None,
    order_no: Annotated[str | None, Query(max_length=24, pattern=r"^[0-9A-Za-z]+$")] = None,
    sort: Annotated[
        records.PaymentSort, Query(description="created_at or amount_fen; '-' first: descending")
    ] = "-created_at",
) -> Page[dict[str, Any]]:
    """Every payment attempt in the caller's stores, newest first unless sorted otherwise."""
    items, total = await records.list_payments(
        session,
        params,
        actor=actor,
        store_id=store_id,
        channel=channel,
        status=status,
        created_from=created_from,
        created_to=created_to,
        amount_min_fen=amount_min_fen,
        amount_max_fen=amount_max_fen,
        order_no=order_no,
        sort=sort,
    )
    return Page(items=items, total=total, page=params.page, size=params.size)


async def _payment_in_scope(
    payment_id: Annotated[int, Path(ge=1, le=INT64_MAX)], session: SessionDep, actor: CurrentActor
) -> Payment:
    return await records.get_payment(session, payment_id, actor=actor)


@payments_router.get(
    "/{payment_id}",
    response_model=PaymentDetail,
    operation_id="get_payment",
    responses=error_responses(401, 403, 404),
)
async def get_payment(
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.PAYMENT_READ)],
    payment: Annotated[Payment, Depends(_payment_in_scope)],
) -> dict[str, Any]:
    """One payment with every attempt of its order, every callback about it and its refunds
    (the raw exchanges with the platform, secrets removed)."""
    return await records.detail(session, payment)


# --- terminals: pay an order, read its payment state -----------------------------------------

terminal_router = APIRouter(tags=["terminal"])

OrderNo = Annotated[str, Path(min_length=1, max_length=24, pattern=r"^[0-9A-Za-z]+$")]


@terminal_router.post(
    "/orders/{order_no}/payments",
    response_model=PaymentAttemptRead,
    status_code=201,
    operation_id="terminal_pay_order",
    openapi_extra=SIGNED,
    responses={
        **error_responses(401, 403, 404, 409, 413, 503),
        200: {
            "model": PaymentAttemptRead,
            "description": "attempt id seen before: its state; or the order's open attempt "
            "turned out paid (`already_paid`): nothing new started",
        },
    },
)
async def terminal_pay_order(
    order_no: OrderNo,
    body: PaymentStartIn,
    request: Request,
    session: SessionDep,
    ctx: TerminalDep,
    response: Response,
) -> dict[str, Any]:
    """Pay an order of this terminal's store: with the customer's payment code (`code`: the
    answer says paid, paying — the customer is entering a password; read the payment state
    until it settles — or failed with the platform's reason) or with a QR to show (`qr`:
    `pay_url` is the QR's content; state `waiting`). Once per attempt id: the same id answers
    200 with the attempt as it stands now and charges nothing again."""
    cmd = attempts.PayCommand(
        attempt_id=body.attempt_id,
        channel=body.channel,
        mode=body.mode,
        auth_code=body.auth_code,
        client_ip=request.client.host if request.client else "127.0.0.1",
    )
    result = await attempts.pay(
        session, order_no=order_no, store_id=ctx.store.id, cmd=cmd, actor=ctx.actor
    )
    if result["outcome"] in attempts.NOTHING_STARTED:
        response.status_code = 200
    return result


@terminal_router.get(
    "/orders/{order_no}/payment",
    response_model=PaymentStateRead,
    operation_id="terminal_order_payment",
    openapi_extra=SIGNED,
    responses=error_responses(401, 403, 404),
)
async def terminal_order_payment(
    order_no: OrderNo,
    session: SessionDep,
    ctx: TerminalDep,
    wait: Annotated[
        int,
        Query(
            ge=0,
            le=30,
            description="long-poll: answer as soon as the latest attempt leaves paying/waiting, "
            "or after this many seconds (0: at once)",
        ),
    ] = 0,
) -> dict[str, Any]:
    """The order's payment state and its latest attempt. A pending attempt is asked about
    on the platform as the terminal waits."""
    return await attempts.wait_for_state(
        session, order_no=order_no, store_id=ctx.store.id, wait_seconds=wait, actor=ctx.actor
    )


# --- platform callbacks -----------------------------------------------------------------------

notify_router = APIRouter(tags=["payments"])


@notify_router.post(
    "/payments/notify/{channel}/{account_id}",
    operation_id="payment_notify",
    response_class=Response,
    responses={
        **error_responses(429),
        200: {"description": "as the platform expects (WeChat 204/JSON, Alipay text)"},
        204: {"description": "WeChat Pay: received"},
        400: {
            "description": "refused (signature, merchant, order), answered in the platform's "
            "own format, which its retry logic reads",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        404: {
            "description": "no such merchant account or channel, in the platform's format",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
    },
    # Generous: platforms call from a few addresses, and a refused callback is retried by
    # them; the limit only stops one address flooding the verifier.
    dependencies=[rate_limited(PAYMENT_NOTIFY)],
)
async def payment_notify(
    channel: Annotated[str, Path(max_length=16, pattern=r"^[a-z]+$")],
    account_id: Annotated[int, Path(ge=1, le=2_147_483_647)],
    request: Request,
    session: SessionDep,
) -> Response:
    """A platform's payment or refund notification for one of our merchant accounts. Public:
    the platform's signature is the credential. Every call is recorded, believed or not."""
    body = await request.body()
    answer = await callbacks.receive(
        session,
        channel=channel,
        account_id=account_id,
        headers=request.headers,
        body=body,
        try_hot=not request.scope.get("state", {}).get(fastlane.TRIED),
    )
    return Response(answer.body, status_code=answer.status_code, media_type=answer.content_type)


# --- the customer's phone page (the receipt's signed link) ---------------------------------------

public_router = APIRouter(prefix="/public/orders", tags=["public"])
Token = Annotated[str, Path(min_length=1, max_length=64)]


def _order_of(token: str) -> int:
    order_id = receipts.read_token(token)
    if order_id is None:
        raise OrderNotFound()
    return order_id


@public_router.get(
    "/receipt/{token}/payment",
    response_model=PhonePaymentRead,
    operation_id="public_order_payment",
    responses=error_responses(404, 429),
    dependencies=[rate_limited(ORDER_LOOKUP)],
)
async def public_order_payment(
    token: Token, session: SessionDep, request: Request
) -> dict[str, Any]:
    """What the order still owes, the channels its store offers on a phone, the last attempt
    (the page shows its state when the customer comes back from the platform's page). Inside
    WeChat (User-Agent `MicroMessenger`) with a store that can take JSAPI payments,
    `wechat_oauth_url` is where the page sends the customer to authorise (it comes back to
    `/r/{token}` with `code`)."""
    redirect = None
    if jsapi.in_wechat(request.headers.get("user-agent")):
        redirect = f"{get_settings().public_base_url.rstrip('/')}/r/{token}"
    return await attempts.phone_state(session, _order_of(token), wechat_redirect=redirect)


@public_router.post(
    "/receipt/{token}/payments",
    response_model=PhonePayAttemptRead,
    status_code=201,
    operation_id="public_pay_order",
    responses={
        **error_responses(404, 409, 422, 429),
        200: {
            "model": PhonePayAttemptRead,
            "description": "attempt id seen before: its state; or the order's open attempt "
            "turned out paid (`already_paid`): nothing new started",
        },
    },
    dependencies=[rate_limited(ORDER_LOOKUP)],
)
async def public_pay_order(
    token: Token, body: PhonePayIn, request: Request, session: SessionDep, response: Response
) -> dict[str, Any]:
    """Pay what the order owes from the phone: WeChat Pay H5 or Alipay wap. Open `pay_url`;
    the platform returns the customer to this page, which reads the payment again. Inside
    WeChat, with the authorisation `oauth_code`: a JSAPI payment; hand `jsapi` to
    `WeixinJSBridge.invoke('getBrandWCPayRequest', …)`, and keep `payer_token` for the page's
    session: sent instead of a code, it pays again without a new authorisation."""
    base = get_settings().public_base_url.rstrip("/")
    result = await attempts.pay_from_phone(
        session,
        _order_of(token),
        attempt_id=body.attempt_id,
        channel=body.channel,
        client_ip=request.client.host if request.client else "127.0.0.1",
        return_url=f"{base}/r/{token}",
        oauth_code=body.oauth_code,
        payer_token=body.payer_token,
    )
    if result["outcome"] in attempts.NOTHING_STARTED:
        response.status_code = 200
    return result

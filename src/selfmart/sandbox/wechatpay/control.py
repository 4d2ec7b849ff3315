"""The sandbox's own control API (`/sandbox/wechatpay/_control/...`, documented in
docs/payments.md) and the page where a person plays the customer during `make run`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, Field

from selfmart.payments.wechatpay import protocol as wx
from selfmart.sandbox.control import Waiting, pending_page, settings_of
from selfmart.sandbox.wechatpay import oauth
from selfmart.sandbox.wechatpay.api import notify_paid, succeed
from selfmart.sandbox.wechatpay.keys import load, new_certificate, new_public_key
from selfmart.sandbox.wechatpay.state import (
    STATE,
    TIMEOUT_SECONDS,
    CallbackMode,
    NextAction,
    NextCall,
)

router = APIRouter(include_in_schema=False)
PENDING = {"NOTPAY", "USERPAYING"}


class NextCallIn(BaseModel):
    action: NextAction
    path_prefix: str = Field("/v3/", max_length=200)
    seconds: float = Field(TIMEOUT_SECONDS, ge=0, le=120)


class CallbackModeIn(BaseModel):
    mode: CallbackMode


def _view(t: Any) -> dict[str, Any]:
    return {
        "out_trade_no": t.out_trade_no,
        "trade_type": t.trade_type,
        "trade_state": t.trade_state,
        "total": t.total,
        "description": t.description,
        "transaction_id": t.transaction_id or None,
        "prepay_id": t.pay_ref or None,
        "created_at": t.created_at.isoformat(),
    }


@router.get("/payments")
async def list_payments(state: str | None = None) -> list[dict[str, Any]]:
    """Every payment (newest first); `?state=pending` for those a customer can still act on."""
    items = [
        t
        for t in STATE.transactions.values()
        if state is None
        or (state == "pending" and t.trade_state in PENDING)
        or t.trade_state == state
    ]
    return [_view(t) for t in sorted(items, key=lambda t: t.created_at, reverse=True)]


async def _act(request: Request, out_trade_no: str, approve: bool) -> Response:
    settings = settings_of(request)
    keys = load(settings.payment_sandbox_dir)
    txn = STATE.transactions.get(out_trade_no)
    form = request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    )
    if txn is None or txn.trade_state not in PENDING:
        body = {
            "error": "not_pending" if txn else "not_found",
            "message": f"payment {out_trade_no} is "
            + (txn.trade_state if txn else "not known to the sandbox"),
        }
        return JSONResponse(body, status_code=409 if txn else 404)
    if approve:
        succeed(txn)
        if txn.trade_type != "MICROPAY":
            notify_paid(settings, keys, txn)
    else:
        txn.trade_state, txn.trade_state_desc = "PAYERROR", "支付失败，用户取消支付"
    if form:
        return RedirectResponse(str(request.url_for("wechatpay_pay_page")), status_code=303)
    return JSONResponse(_view(txn))


@router.post("/payments/{out_trade_no}/approve")
async def approve(request: Request, out_trade_no: str) -> Response:
    """The customer pays: the payment succeeds and (QR / phone payments) the callback goes out."""
    return await _act(request, out_trade_no, approve=True)


@router.post("/payments/{out_trade_no}/decline")
async def decline(request: Request, out_trade_no: str) -> Response:
    """The customer cancels: the payment fails (PAYERROR)."""
    return await _act(request, out_trade_no, approve=False)


class BrandPayIn(BaseModel):
    """What the page hands `WeixinJSBridge.invoke('getBrandWCPayRequest', …)`."""

    appId: str = Field(max_length=32)  # noqa: N815 - WeChat's names
    timeStamp: str = Field(max_length=16)  # noqa: N815
    nonceStr: str = Field(max_length=32)  # noqa: N815
    package: str = Field(max_length=128)
    signType: str = Field(max_length=8)  # noqa: N815
    paySign: str = Field(max_length=1024)  # noqa: N815
    #: the customer's choice in WeChat's sheet
    approve: bool = True


@router.post("/jsapi/pay")
async def jsapi_pay(request: Request, body: BrandPayIn) -> Response:
    """Play WeChat's in-app payment sheet: check the page's parameters as WeChat does (the app
    id, `package`, `signType` RSA and `paySign` against the merchant's public key), then pay
    (or cancel) the JSAPI payment; the callback goes out as usual. Answers the `err_msg` the
    bridge would (`get_brand_wcpay_request:ok` / `:cancel` / `:fail`)."""
    settings = settings_of(request)
    keys = load(settings.payment_sandbox_dir)

    def fail(reason: str, status: int = 400) -> JSONResponse:
        return JSONResponse(
            {"err_msg": "get_brand_wcpay_request:fail", "error": reason}, status_code=status
        )

    if body.appId != keys.appid:
        return fail("appid_mismatch")
    if body.signType != "RSA":
        return fail("bad_sign_type")
    prepay_id = body.package.removeprefix("prepay_id=")
    if prepay_id == body.package or not prepay_id:
        return fail("bad_package")
    message = wx.jsapi_pay_message(body.appId, body.timeStamp, body.nonceStr, body.package)
    if not wx.verify(keys.merchant_key.public_key(), message, body.paySign):
        return fail("bad_pay_sign")
    txn = next(
        (
            t
            for t in STATE.transactions.values()
            if t.pay_ref == prepay_id and t.trade_type == "JSAPI"
        ),
        None,
    )
    if txn is None:
        return fail("unknown_prepay_id", 404)
    if txn.trade_state not in PENDING:
        return fail("not_pending", 409)
    if body.approve:
        succeed(txn)
        notify_paid(settings, keys, txn)
        return JSONResponse({"err_msg": "get_brand_wcpay_request:ok", **_view(txn)})
    txn.trade_state, txn.trade_state_desc = "PAYERROR", "支付失败，用户取消支付"
    return JSONResponse({"err_msg": "get_brand_wcpay_request:cancel", **_view(txn)})


@router.post("/next")
async def next_call(body: NextCallIn) -> dict[str, Any]:
    """Make the next API call whose path starts with `path_prefix` decline, time out, answer
    USERPAYING or fail with 500 SYSTEM_ERROR (a reverse declined is refused 403 TRADE_ERROR and
    leaves the transaction as it was)."""
    STATE.next_calls.append(NextCall(body.action, body.path_prefix, body.seconds))
    return {"queued": [c.action for c in STATE.next_calls]}


@router.post("/callbacks")
async def callback_mode(body: CallbackModeIn) -> dict[str, Any]:
    """Send the next callback twice, late, after the one following it, or with a bad signature
    on its first attempt."""
    STATE.callback_modes.append(body.mode)
    return {"queued": list(STATE.callback_modes)}


@router.get("/received")
async def received() -> dict[str, Any]:
    """The API calls the sandbox received and the callbacks it sent, with every attempt."""
    return {
        "requests": list(STATE.received),
        "callbacks": [d.view() for d in STATE.deliveries],
    }


@router.post("/rotate")
async def rotate(request: Request) -> dict[str, Any]:
    """Start a key rotation: a new platform certificate and public key sign from now on; the
    old certificate stays listed by /v3/certificates."""
    STATE.extra_certificates.append(new_certificate())
    STATE.extra_public_keys.append(new_public_key())
    cert, public = STATE.extra_certificates[-1], STATE.extra_public_keys[-1]
    return {
        "platform_certificate_serial": cert.serial,
        "platform_certificate": cert.pem,
        "platform_public_key_id": public.key_id,
        "platform_public_key": public.public_pem,
    }


@router.post("/reset")
async def reset() -> Response:
    """Forget every payment, refund, bill, switch and record (tests)."""
    STATE.reset()
    oauth.reset()
    return Response(status_code=204)


@router.get("/pay", name="wechatpay_pay_page", response_class=HTMLResponse)
async def pay_page(
    request: Request, prepay_id: str | None = None, redirect_url: str | None = None
) -> HTMLResponse:
    """Pending QR, phone (H5, or JSAPI inside WeChat) and password-awaiting payments, each
    with Pay and Decline."""
    base = str(request.url_for("wechatpay_pay_page")).rsplit("/", 1)[0]
    items = [
        Waiting(
            t.out_trade_no,
            t.trade_type,
            t.description,
            t.total,
            f"{base}/payments/{t.out_trade_no}/approve",
            f"{base}/payments/{t.out_trade_no}/decline",
        )  # fmt: skip
        for t in sorted(STATE.transactions.values(), key=lambda t: t.created_at, reverse=True)
        if t.trade_state in PENDING and (prepay_id is None or t.pay_ref == prepay_id)
    ]
    return HTMLResponse(pending_page("WeChat Pay", items, back_url=redirect_url))

"""The Alipay sandbox's control API (`/sandbox/alipay/_control/...`), documented in
docs/payments.md: approve or decline a pending payment (with a small page for a person),
script what the next gateway calls and notifications do, and list what was received and sent.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from selfmart.sandbox.alipay.gateway import expire, notify, payment_page, settle
from selfmart.sandbox.alipay.state import sandbox_for
from selfmart.sandbox.control import Waiting, pending_page, queue_next, settings_of, shared_router

router = APIRouter(include_in_schema=False)


class NextCall(BaseModel):
    #: decline: 40004 (sub_code, default ACQ.PAYMENT_FAIL); timeout: wait `seconds` then
    #: answer; user_paying: alipay.trade.pay answers 10003 WAIT_BUYER_PAY; error: HTTP 500;
    #: system_error: 20000 ACQ.SYSTEM_ERROR
    action: Literal["decline", "timeout", "user_paying", "error", "system_error"]
    #: only the next call of this method (any method when empty)
    method: str = ""
    seconds: float = Field(30.0, ge=0, le=600)
    sub_code: str = ""


@router.post("/_control/next")
async def next_call(request: Request, body: NextCall) -> dict[str, Any]:
    return queue_next(sandbox_for(settings_of(request)), body)


@router.get("/_control/trades")
async def list_trades(request: Request) -> list[dict[str, Any]]:
    sandbox = sandbox_for(settings_of(request))
    return [t.view() for t in sandbox.trades.values()]


@router.get("/_control/pay", name="alipay_pending_page", response_class=HTMLResponse)
async def pending(request: Request) -> HTMLResponse:
    """Every trade waiting for its buyer (QR, phone page, password), with Pay and Decline."""
    sandbox = sandbox_for(settings_of(request))
    base = str(request.url_for("alipay_pending_page")).rsplit("/", 1)[0]
    for trade in list(sandbox.trades.values()):
        expire(sandbox, trade)
    items = [
        Waiting(
            t.out_trade_no,
            t.product,
            t.subject,
            t.total_fen,
            f"{base}/trades/{t.out_trade_no}/approve",
            f"{base}/trades/{t.out_trade_no}/decline",
        )  # fmt: skip
        for t in sorted(sandbox.trades.values(), key=lambda t: t.created_at, reverse=True)
        if t.status == "WAIT_BUYER_PAY"
    ]
    return HTMLResponse(pending_page("Alipay", items, return_url=f"{base}/pay"))


@router.get("/_control/pay/{out_trade_no}")
async def pay_page(request: Request, out_trade_no: str) -> Response:
    """What a precreate QR code opens: the sandbox cashier for the trade."""
    sandbox = sandbox_for(settings_of(request))
    trade = sandbox.trades.get(out_trade_no)
    if trade is None:
        return HTMLResponse("<p>ACQ.TRADE_NOT_EXIST</p>", status_code=404)
    expire(sandbox, trade)
    return HTMLResponse(payment_page(request, trade))


async def _decide(request: Request, out_trade_no: str, paid: bool) -> Response:
    sandbox = sandbox_for(settings_of(request))
    trade = sandbox.trades.get(out_trade_no)
    if trade is None:
        return JSONResponse({"error": "ACQ.TRADE_NOT_EXIST"}, status_code=404)
    expire(sandbox, trade)
    if trade.status != "WAIT_BUYER_PAY":
        return JSONResponse(
            {"error": "ACQ.TRADE_STATUS_ERROR", "trade": trade.view()}, status_code=409
        )
    settle(sandbox, trade, paid=paid)
    if "form" in request.headers.get("content-type", ""):
        form = await request.form()
        back = str(form.get("return_url") or "")
        if back:
            return RedirectResponse(back, status_code=303)
        return HTMLResponse(payment_page(request, trade))
    return JSONResponse(trade.view())


@router.post("/_control/trades/{out_trade_no}/approve")
async def approve(request: Request, out_trade_no: str) -> Response:
    return await _decide(request, out_trade_no, paid=True)


@router.post("/_control/trades/{out_trade_no}/decline")
async def decline(request: Request, out_trade_no: str) -> Response:
    return await _decide(request, out_trade_no, paid=False)


@router.post("/_control/trades/{out_trade_no}/finish")
async def finish(request: Request, out_trade_no: str) -> Response:
    """The refund window closes early: a paid trade becomes TRADE_FINISHED (and says so)."""
    sandbox = sandbox_for(settings_of(request))
    trade = sandbox.trades.get(out_trade_no)
    if trade is None:
        return JSONResponse({"error": "ACQ.TRADE_NOT_EXIST"}, status_code=404)
    if trade.status != "TRADE_SUCCESS":
        return JSONResponse(
            {"error": "ACQ.TRADE_STATUS_ERROR", "trade": trade.view()}, status_code=409
        )
    trade.status = "TRADE_FINISHED"
    notify(sandbox, trade)
    return JSONResponse(trade.view())


router.include_router(shared_router(sandbox_for))

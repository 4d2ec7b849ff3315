"""The Alipay sandbox's control API (`/sandbox/alipay/_control/...`), documented in
docs/payments.md: approve or decline a pending payment (with a small page for a person),
script what the next gateway calls and notifications do, and list what was received and sent.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from selfmart.config import Settings
from selfmart.sandbox.alipay.gateway import expire, notify, payment_page, settle
from selfmart.sandbox.alipay.state import sandbox_for

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


class NextNotify(BaseModel):
    #: twice: sent two times; late: first attempt after `delay_seconds`; bad_signature: the
    #: sign is corrupted; out_of_order: held back and sent after the next notification
    mode: Literal["twice", "late", "bad_signature", "out_of_order"]
    delay_seconds: float = Field(0.0, ge=0, le=3600)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.post("/_control/next")
async def next_call(request: Request, body: NextCall) -> dict[str, Any]:
    sandbox = sandbox_for(_settings(request))
    sandbox.next_actions.append(body.model_dump())
    return {"queued": sandbox.next_actions}


@router.post("/_control/notify")
async def next_notify(request: Request, body: NextNotify) -> dict[str, Any]:
    sandbox = sandbox_for(_settings(request))
    sandbox.notify_modes.append(body.model_dump())
    return {"queued": sandbox.notify_modes}


@router.get("/_control/trades")
async def list_trades(request: Request) -> list[dict[str, Any]]:
    sandbox = sandbox_for(_settings(request))
    return [t.view() for t in sandbox.trades.values()]


@router.get("/_control/requests")
async def list_requests(request: Request, method: str | None = None) -> list[dict[str, Any]]:
    sandbox = sandbox_for(_settings(request))
    return [r for r in sandbox.received if method is None or r["method"] == method][-100:]


@router.get("/_control/notifications")
async def list_notifications(
    request: Request, out_trade_no: str | None = None
) -> list[dict[str, Any]]:
    sandbox = sandbox_for(_settings(request))
    return [
        d.view()
        for d in sandbox.notifier.deliveries
        if out_trade_no is None or d.label.get("out_trade_no") == out_trade_no
    ]


@router.get("/_control/pay/{out_trade_no}")
async def pay_page(request: Request, out_trade_no: str) -> Response:
    """What a precreate QR code opens: the sandbox cashier for the trade."""
    sandbox = sandbox_for(_settings(request))
    trade = sandbox.trades.get(out_trade_no)
    if trade is None:
        return HTMLResponse("<p>ACQ.TRADE_NOT_EXIST</p>", status_code=404)
    expire(sandbox, trade)
    return HTMLResponse(payment_page(request, trade))


async def _decide(request: Request, out_trade_no: str, paid: bool) -> Response:
    sandbox = sandbox_for(_settings(request))
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
    sandbox = sandbox_for(_settings(request))
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


@router.post("/_control/reset")
async def reset(request: Request) -> dict[str, str]:
    sandbox_for(_settings(request)).reset()
    return {"status": "ok"}

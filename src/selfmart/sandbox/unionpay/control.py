"""The UnionPay sandbox's control API (`/sandbox/unionpay/_control/...`), documented in
docs/payments.md: decide a pending consume, script the next gateway calls and notifications,
and list what was received and sent."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError

from selfmart.payments.unionpay import protocol as u
from selfmart.sandbox.control import Waiting, pending_page, queue_next, settings_of, shared_router
from selfmart.sandbox.unionpay.gateway import finish
from selfmart.sandbox.unionpay.state import sandbox_for

router = APIRouter(include_in_schema=False)


class NextCall(BaseModel):
    #: decline: answer `resp_code` (default 60); timeout: wait `seconds`, then answer;
    #: user_paying: a consume is accepted (05) and waits for approve/decline; error: HTTP 500
    action: Literal["decline", "timeout", "user_paying", "error"]
    #: only the next call of this txnType (any when empty)
    txn_type: str = ""
    seconds: float = Field(30.0, ge=0, le=600)
    resp_code: str = ""


class Decision(BaseModel):
    #: the respCode a declined consume ends with
    resp_code: str = u.ISSUER_DECLINED


@router.post("/_control/next")
async def next_call(request: Request, body: NextCall) -> dict[str, Any]:
    return queue_next(sandbox_for(settings_of(request)), body)


@router.get("/_control/transactions")
async def list_transactions(request: Request) -> list[dict[str, Any]]:
    return [t.view() for t in sandbox_for(settings_of(request)).txns.values()]


@router.get("/_control/pay", name="unionpay_pending_page", response_class=HTMLResponse)
async def pending(request: Request) -> HTMLResponse:
    """Every card payment waiting for the cardholder (PIN pad), with Pay and Decline."""
    base = str(request.url_for("unionpay_pending_page")).rsplit("/", 1)[0]
    txns = sandbox_for(settings_of(request)).txns.values()
    items = [
        Waiting(
            t.order_id,
            f"txnType {t.txn_type}",
            t.card,
            t.amount_fen,
            f"{base}/transactions/{t.order_id}/approve",
            f"{base}/transactions/{t.order_id}/decline",
        )  # fmt: skip
        for t in sorted(txns, key=lambda t: t.created_at, reverse=True)
        if t.result == u.ACCEPTED
    ]
    return HTMLResponse(pending_page("UnionPay", items))


async def _decide(request: Request, order_id: str, code: str) -> Response:
    sandbox = sandbox_for(settings_of(request))
    txn = next((t for t in sandbox.txns.values() if t.order_id == order_id), None)
    if txn is None:
        return JSONResponse({"error": "34 查无此交易"}, status_code=404)
    if txn.result != u.ACCEPTED:
        return JSONResponse({"error": "35 原交易状态不正确", "txn": txn.view()}, 409)
    finish(sandbox, txn, code)
    if "form" in request.headers.get("content-type", ""):  # a person on the page
        return RedirectResponse(str(request.url_for("unionpay_pending_page")), status_code=303)
    return JSONResponse(txn.view())


@router.post("/_control/transactions/{order_id}/approve")
async def approve(request: Request, order_id: str) -> Response:
    return await _decide(request, order_id, u.OK)


@router.post("/_control/transactions/{order_id}/decline")
async def decline(request: Request, order_id: str) -> Response:
    """Declined with `resp_code` from a JSON body (default: issuer declined)."""
    code = u.ISSUER_DECLINED
    if "json" in request.headers.get("content-type", ""):
        try:
            code = Decision.model_validate_json(await request.body()).resp_code
        except ValidationError as e:
            return JSONResponse({"error": "invalid body", "detail": e.errors()}, status_code=422)
    return await _decide(request, order_id, code)


router.include_router(shared_router(sandbox_for))

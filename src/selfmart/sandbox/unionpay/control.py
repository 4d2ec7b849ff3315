"""The UnionPay sandbox's control API (`/sandbox/unionpay/_control/...`), documented in
docs/payments.md: decide a pending consume, script the next gateway calls and notifications,
and list what was received and sent."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from selfmart.payments.unionpay import protocol as u
from selfmart.sandbox.control import queue_next, settings_of, shared_router
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


async def _decide(request: Request, order_id: str, code: str) -> JSONResponse:
    sandbox = sandbox_for(settings_of(request))
    txn = next((t for t in sandbox.txns.values() if t.order_id == order_id), None)
    if txn is None:
        return JSONResponse({"error": "34 查无此交易"}, status_code=404)
    if txn.result != u.ACCEPTED:
        return JSONResponse({"error": "35 原交易状态不正确", "txn": txn.view()}, 409)
    finish(sandbox, txn, code)
    return JSONResponse(txn.view())


@router.post("/_control/transactions/{order_id}/approve")
async def approve(request: Request, order_id: str) -> JSONResponse:
    return await _decide(request, order_id, u.OK)


@router.post("/_control/transactions/{order_id}/decline")
async def decline(request: Request, order_id: str, body: Decision | None = None) -> JSONResponse:
    return await _decide(request, order_id, (body or Decision()).resp_code)


router.include_router(shared_router(sandbox_for))

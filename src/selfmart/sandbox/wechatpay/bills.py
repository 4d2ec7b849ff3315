"""The WeChat Pay sandbox's bill files: `/v3/bill/tradebill` and `/v3/bill/fundflowbill`
answer a `download_url`, `hash_type` SHA1 and `hash_value` (of the file before any GZIP), and
`/v3/billdownload/file` serves the file, authorised like any call and answered unsigned."""

from __future__ import annotations

import gzip
import secrets
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from selfmart.kit.time import utcnow
from selfmart.payments.wechatpay import protocol as wx
from selfmart.sandbox.wechatpay.api import (
    Ctx,
    WxError,
    authenticate,
    handle,
    settings_of,
    sign_response,
)
from selfmart.sandbox.wechatpay.keys import load
from selfmart.sandbox.wechatpay.state import STATE

router = APIRouter(include_in_schema=False)
#: the sandbox merchant's fee rate in basis points, 0.6%
FEE_RATE_BP = 60
#: as the bill's 费率 column prints it
RATE_TEXT = f"{FEE_RATE_BP / 100:.2f}%"


def _bill_date(ctx: Ctx) -> date:
    text = ctx.request.query_params.get("bill_date") or ""
    if not text:
        raise WxError(400, "PARAM_ERROR", "缺少必填参数 bill_date")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise WxError(400, "PARAM_ERROR", "参数 bill_date 格式应为 yyyy-MM-DD") from None
    if day > utcnow().astimezone(wx.CST).date():
        raise WxError(400, "INVALID_REQUEST", "账单日期不能晚于今天")
    return day


def _on(day: date, at: datetime | None) -> bool:
    return at is not None and at.astimezone(wx.CST).date() == day


def _stamp(at: datetime) -> str:
    return at.astimezone(wx.CST).strftime("%Y-%m-%d %H:%M:%S")


def _fee(amount: int) -> int:
    return (amount * FEE_RATE_BP + 5_000) // 10_000


def trade_bill(day: date, bill_type: str) -> bytes | None:
    rows: list[list[str]] = []
    totals = [0] * 6  # settled, refunded, coupon refunds, fees, ordered, refund asked
    if bill_type in {"ALL", "SUCCESS"}:
        for t in STATE.transactions.values():
            if not _on(day, t.success_time) or t.success_time is None:
                continue
            fee = _fee(t.total)
            state = "SUCCESS" if t.trade_state in {"SUCCESS", "REFUND"} else t.trade_state
            rows.append(
                [_stamp(t.success_time), t.appid, t.mchid, "0", "", t.transaction_id,
                 t.out_trade_no, t.openid, t.trade_type, state, "OTHERS", "CNY",
                 wx.yuan(t.total), "0.00", "0", "0", "0.00", "0.00", "", "", t.description,
                 t.attach, wx.yuan(fee), RATE_TEXT, wx.yuan(t.total), "0.00", ""]
            )  # fmt: skip
            totals[0] += t.total
            totals[3] += fee
            totals[4] += t.total
    if bill_type in {"ALL", "REFUND"}:
        for r in STATE.refunds.values():
            if not _on(day, r.success_time) or r.success_time is None:
                continue
            t = STATE.transactions[r.out_trade_no]
            fee = -_fee(r.refund)
            rows.append(
                [_stamp(r.success_time), t.appid, t.mchid, "0", "", t.transaction_id,
                 t.out_trade_no, t.openid, t.trade_type, "REFUND", "OTHERS", "CNY", "0.00",
                 "0.00", r.refund_id, r.out_refund_no, wx.yuan(r.refund), "0.00", "ORIGINAL",
                 r.status, t.description, t.attach, wx.yuan(fee), RATE_TEXT, "0.00",
                 wx.yuan(r.refund), ""]
            )  # fmt: skip
            totals[1] += r.refund
            totals[3] += fee
            totals[5] += r.refund
    if not rows:
        return None
    rows.sort(key=lambda row: row[0])
    summary = [str(len(rows)), *(wx.yuan(v) for v in totals)]
    return wx.format_bill(wx.TRADE_BILL_HEADER, rows, wx.TRADE_BILL_TOTALS_HEADER, summary)


def fundflow_bill(day: date, mchid: str) -> bytes | None:
    entries: list[tuple[datetime, str, str, int, str]] = []
    for t in STATE.transactions.values():
        if _on(day, t.success_time) and t.success_time is not None:
            entries.append((t.success_time, t.transaction_id, "交易", t.total, t.out_trade_no))
            fee = _fee(t.total)
            if fee:
                entries.append(
                    (t.success_time, t.transaction_id, "扣除交易手续费", -fee, t.out_trade_no)
                )
    for r in STATE.refunds.values():
        if _on(day, r.success_time) and r.success_time is not None:
            entries.append((r.success_time, r.refund_id, "退款", -r.refund, r.out_refund_no))
            # the fee on the refunded part comes back (as the trade bill's refund line says)
            fee = _fee(r.refund)
            if fee:
                entries.append(
                    (r.success_time, r.refund_id, "退回交易手续费", fee, r.out_refund_no)
                )
    if not entries:
        return None
    entries.sort(key=lambda e: e[0])
    rows: list[list[str]] = []
    balance = income = expense = incomes = expenses = 0
    for at, ref, name, amount, voucher in entries:
        balance += amount
        if amount >= 0:
            incomes, income = incomes + 1, income + amount
        else:
            expenses, expense = expenses + 1, expense - amount
        rows.append(
            [_stamp(at), ref, "".join(secrets.choice("0123456789") for _ in range(28)), name,
             name, "收入" if amount >= 0 else "支出", wx.yuan(abs(amount)), wx.yuan(balance),
             "system" if "手续费" in name else mchid, "", voucher]
        )  # fmt: skip
    summary = [str(len(rows)), str(incomes), wx.yuan(income), str(expenses), wx.yuan(expense)]
    return wx.format_bill(wx.FUNDFLOW_BILL_HEADER, rows, wx.FUNDFLOW_BILL_TOTALS_HEADER, summary)


def _bill_answer(ctx: Ctx, data: bytes | None) -> tuple[int, dict[str, Any] | None]:
    if data is None:
        raise WxError(400, "NO_STATEMENT_EXIST", "账单文件不存在")
    tar_type = ctx.request.query_params.get("tar_type") or ""
    if tar_type not in {"", "GZIP"}:
        raise WxError(400, "PARAM_ERROR", "参数 tar_type 只能是 GZIP")
    token = secrets.token_urlsafe(24)
    STATE.bills[token] = gzip.compress(data) if tar_type == "GZIP" else data
    return 200, {
        "download_url": f"{ctx.gateway}/v3/billdownload/file?token={token}",
        "hash_type": "SHA1",
        "hash_value": wx.bill_hash(data),
    }


@router.get("/v3/bill/tradebill")
async def tradebill(request: Request) -> Response:
    async def run(ctx: Ctx) -> tuple[int, dict[str, Any] | None]:
        day = _bill_date(ctx)
        bill_type = ctx.request.query_params.get("bill_type") or "ALL"
        if bill_type not in {"ALL", "SUCCESS", "REFUND"}:
            raise WxError(400, "PARAM_ERROR", "参数 bill_type 只能是 ALL、SUCCESS 或 REFUND")
        return _bill_answer(ctx, trade_bill(day, bill_type))

    return await handle(request, run, json_body=False)


@router.get("/v3/bill/fundflowbill")
async def fundflowbill(request: Request) -> Response:
    async def run(ctx: Ctx) -> tuple[int, dict[str, Any] | None]:
        day = _bill_date(ctx)
        account = ctx.request.query_params.get("account_type") or "BASIC"
        if account not in {"BASIC", "OPERATION", "FEES"}:
            raise WxError(400, "PARAM_ERROR", "参数 account_type 只能是 BASIC、OPERATION 或 FEES")
        data = fundflow_bill(day, ctx.keys.mchid) if account == "BASIC" else None
        return _bill_answer(ctx, data)

    return await handle(request, run, json_body=False)


@router.get("/v3/billdownload/file")
async def billdownload(request: Request) -> Response:
    """The bill file: authorised like any call, answered unsigned (the hash checks it)."""
    settings = settings_of(request)
    keys = load(settings.payment_sandbox_dir)
    raw_path = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
    target = raw_path[raw_path.find("/v3/") :] + "?" + request.url.query
    ctx = Ctx(request=request, settings=settings, keys=keys, target=target, mode="certificate")
    try:
        authenticate(ctx, "GET", b"")
        data = STATE.bills.get(request.query_params.get("token") or "")
        if data is None:
            raise WxError(404, "RESOURCE_NOT_EXISTS", "账单文件不存在或下载地址已过期")
    except WxError as exc:
        return sign_response(
            keys, "certificate", exc.status, {"code": exc.code, "message": exc.message}
        )
    return Response(data, media_type="application/octet-stream")

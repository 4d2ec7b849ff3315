"""`/gateway.do`: the Alipay open platform gateway as our sandbox speaks it.

Parameters come in the query string (python-alipay-sdk puts everything there), the form body
(our account) or both (Alipay's own SDK). The gateway checks what the real one checks that a
client can get wrong (required parameters, app id, charset, version, sign type, the RSA2
signature over the sorted parameters, biz_content as JSON) and answers with the method's
`..._response` signed with the sandbox's Alipay key. A request the gateway cannot trust (bad
app id or signature) gets an unsigned answer, as the real one does.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import json
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from selfmart.config import Settings
from selfmart.kit.time import utcnow
from selfmart.payments.alipay import protocol as p
from selfmart.sandbox import store
from selfmart.sandbox.alipay.state import (
    BUYER_ID,
    BUYER_LOGON_ID,
    TEST_AUTH_CODES,
    AlipaySandbox,
    Refund,
    Trade,
    sandbox_for,
)

router = APIRouter(include_in_schema=False)
AUTH_CODE_INVALID = "支付失败，获取顾客账户信息失败，请顾客刷新付款码后重新收款"

METHODS = {
    "alipay.trade.pay",
    "alipay.trade.precreate",
    "alipay.trade.wap.pay",
    "alipay.trade.query",
    "alipay.trade.cancel",
    "alipay.trade.close",
    "alipay.trade.refund",
    "alipay.trade.fastpay.refund.query",
    "alipay.data.dataservice.bill.downloadurl.query",
}
REQUIRED = ("app_id", "method", "charset", "sign_type", "sign", "timestamp", "version")
PREFIX = "/sandbox/alipay"
#: the sandbox merchant's fee rate in basis points, 0.6%, returned on refunds
FEE_RATE_BP = 60


class Answer(Exception):
    """A business answer other than success, raised from deep in a handler."""

    def __init__(self, code: str, sub_code: str, sub_msg: str) -> None:
        super().__init__(sub_msg)
        self.code, self.sub_code, self.sub_msg = code, sub_code, sub_msg


class Call(NamedTuple):
    """One gateway call, as every method's handler takes it."""

    request: Request
    sandbox: AlipaySandbox
    params: dict[str, str]
    biz: dict[str, Any]
    #: what the control API scripted for this call, if anything
    action: dict[str, Any] | None


def _refused(sub_code: str, sub_msg: str) -> Answer:
    """A business failure (40004) with Alipay's sub_code and sub_msg."""
    return Answer(p.BUSINESS_FAILED, sub_code, sub_msg)


def _ids(trade: Trade) -> dict[str, Any]:
    return {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + PREFIX


def _json(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json;charset=utf-8")


def _failure(code: str, sub_code: str, sub_msg: str) -> dict[str, Any]:
    return {"code": code, "msg": p.MESSAGES[code], "sub_code": sub_code, "sub_msg": sub_msg}


def _success(**fields: Any) -> dict[str, Any]:
    return {"code": p.SUCCESS, "msg": p.MESSAGES[p.SUCCESS], **fields}


async def _params(request: Request) -> dict[str, str]:
    params = dict(request.query_params.items())
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        if "form" in content_type:
            form = await request.form()
            params.update({k: str(v) for k, v in form.items()})
    return params


@router.api_route("/gateway.do", methods=["GET", "POST"])
async def gateway(request: Request) -> Response:
    sandbox = sandbox_for(_settings(request))
    params = await _params(request)
    method = params.get("method", "")
    sandbox.received.append({"at": utcnow().isoformat(), "method": method, "params": params})
    del sandbox.received[:-500]

    def signed(payload: dict[str, Any]) -> Response:
        return _json(p.encode_response(method, payload, sandbox.alipay_private_key))

    if method not in METHODS:
        return _json(
            p.encode_error_response(
                _failure(p.INVALID_ARGUMENT, "isv.invalid-method", "不存在的方法名")
            )
        )
    unsigned = _check_request(sandbox, params)
    if unsigned is not None:
        return _json(p.encode_response(method, unsigned, None))
    try:
        biz = json.loads(params.get("biz_content") or "{}")
        if not isinstance(biz, dict):
            raise ValueError("not an object")
    except ValueError:
        return _json(
            p.encode_response(
                method,
                _failure(p.INVALID_ARGUMENT, "isv.invalid-biz-content", "biz_content 不是 JSON"),
                None,
            )
        )
    action = sandbox.take_action(method)
    if action is not None:
        kind = action.get("action")
        if kind == "error":
            return Response("Internal Server Error", status_code=500, media_type="text/plain")
        if kind == "timeout":
            await asyncio.sleep(float(action.get("seconds", 30)))
        if kind == "system_error":
            return signed(_failure(p.UNKNOWN, "ACQ.SYSTEM_ERROR", "系统错误"))
        if kind == "decline":
            sub_code = str(action.get("sub_code") or "ACQ.PAYMENT_FAIL")
            return signed(_failure(p.BUSINESS_FAILED, sub_code, "沙箱按控制指令拒绝"))
    if method == "alipay.trade.wap.pay":
        return _wap_page(request, sandbox, params, biz)
    handler = _HANDLERS[method]
    try:
        payload = handler(Call(request, sandbox, params, biz, action))
    except Answer as answer:
        payload = _failure(answer.code, answer.sub_code, answer.sub_msg)
    return signed(payload)


def _check_request(sandbox: AlipaySandbox, params: dict[str, str]) -> dict[str, Any] | None:
    """What the gateway answers, unsigned, to a request it will not act on; None if fine."""
    missing = [k for k in REQUIRED if not params.get(k)]
    if missing:
        return _failure(
            p.MISSING_ARGUMENT,
            f"isv.missing-{missing[0].replace('_', '-')}",
            f"缺少 {missing[0]} 参数",
        )
    if params["app_id"] != sandbox.app_id:
        return _failure(p.INVALID_ARGUMENT, "isv.invalid-app-id", "无效的AppID参数")
    if params["charset"].lower() != "utf-8":
        return _failure(p.INVALID_ARGUMENT, "isv.invalid-charset", "字符集错误")
    if params["version"] != "1.0":
        return _failure(p.INVALID_ARGUMENT, "isv.invalid-version", "版本号错误")
    if params["sign_type"] not in ("RSA2", "RSA"):
        return _failure(p.INVALID_ARGUMENT, "isv.invalid-signature-type", "无效的签名类型")
    if params.get("format", "JSON").upper() != "JSON":
        return _failure(p.INVALID_ARGUMENT, "isv.invalid-format", "无效的数据格式")
    try:
        datetime.strptime(params["timestamp"], p.TIME_FORMAT).replace(tzinfo=p.BEIJING)
    except ValueError:
        return _failure(p.INVALID_ARGUMENT, "isv.invalid-timestamp", "非法的时间戳参数")
    try:
        p.verify_params(params, sandbox.app_public_key)
    except p.SignatureError:
        return _failure(
            p.INVALID_ARGUMENT,
            "isv.invalid-signature",
            "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配",
        )
    return None


def _amount(biz: dict[str, Any], name: str) -> int:
    value = biz.get(name)
    if value is None or value == "":
        raise Answer(p.MISSING_ARGUMENT, f"isv.missing-{name.replace('_', '-')}", f"缺少 {name}")
    try:
        fen = p.yuan_to_fen(str(value))
    except ValueError:
        raise _refused("ACQ.INVALID_PARAMETER", f"{name} 格式错误") from None
    if fen <= 0 or fen > 10_000_000_000:
        raise _refused("ACQ.INVALID_PARAMETER", f"{name} 超出范围")
    return fen


def _text(biz: dict[str, Any], name: str, limit: int = 64) -> str:
    value = biz.get(name)
    if not isinstance(value, str) or not value:
        raise Answer(p.MISSING_ARGUMENT, f"isv.missing-{name.replace('_', '-')}", f"缺少 {name}")
    if len(value) > limit:
        raise _refused("ACQ.INVALID_PARAMETER", f"{name} 过长")
    return value


def _find(sandbox: AlipaySandbox, biz: dict[str, Any]) -> Trade:
    out_trade_no = biz.get("out_trade_no")
    trade_no = biz.get("trade_no")
    if not out_trade_no and not trade_no:
        raise Answer(
            p.MISSING_ARGUMENT, "isv.missing-out-trade-no", "out_trade_no 和 trade_no 不能同时为空"
        )
    trade = sandbox.trades.get(str(out_trade_no)) if out_trade_no else None
    if trade is None and trade_no:
        trade = next((t for t in sandbox.trades.values() if t.trade_no == trade_no), None)
    if trade is None:
        raise _refused("ACQ.TRADE_NOT_EXIST", "交易不存在")
    expire(sandbox, trade)
    return trade


def _new_trade(
    sandbox: AlipaySandbox, params: dict[str, str], biz: dict[str, Any], product: str
) -> Trade:
    out_trade_no = _text(biz, "out_trade_no")
    total = _amount(biz, "total_amount")
    subject = _text(biz, "subject", 256)
    expires_at = None
    if biz.get("time_expire"):
        try:
            expires_at = p.parse_time(str(biz["time_expire"]))
        except ValueError:
            raise _refused("ACQ.INVALID_PARAMETER", "time_expire 格式错误") from None
        if expires_at <= utcnow():
            raise _refused("ACQ.TRADE_HAS_CLOSE", "交易已超时关闭")
    existing = sandbox.trades.get(out_trade_no)
    if existing is not None:
        expire(sandbox, existing)
        if existing.status == "TRADE_SUCCESS":
            raise _refused("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
        if existing.status == "TRADE_CLOSED":
            raise _refused("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
        if existing.total_fen != total or existing.product != product:
            raise _refused("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
        return existing
    trade = Trade(
        out_trade_no=out_trade_no,
        trade_no=sandbox.new_trade_no(),
        subject=subject,
        total_fen=total,
        product=product,
        status="WAIT_BUYER_PAY",
        created_at=utcnow(),
        notify_url=params.get("notify_url", ""),
        expires_at=expires_at,
    )
    sandbox.trades[out_trade_no] = trade
    return trade


def expire(sandbox: AlipaySandbox, trade: Trade) -> None:
    """An unpaid trade past its time_expire closes (looked at whenever the trade is)."""
    if trade.status == "WAIT_BUYER_PAY" and trade.expires_at and trade.expires_at <= utcnow():
        settle(sandbox, trade, paid=False)


def _trade_fields(trade: Trade) -> dict[str, Any]:
    return {
        **_ids(trade),
        "buyer_logon_id": BUYER_LOGON_ID,
        "total_amount": p.fen_to_yuan(trade.total_fen),
    }


def _paid_fields(trade: Trade) -> dict[str, Any]:
    assert trade.paid_at is not None
    return {
        **_trade_fields(trade),
        "receipt_amount": p.fen_to_yuan(trade.total_fen),
        "buyer_pay_amount": p.fen_to_yuan(trade.total_fen),
        "invoice_amount": p.fen_to_yuan(trade.total_fen),
        "point_amount": "0.00",
        "gmt_payment": p.format_time(trade.paid_at),
        "fund_bill_list": [
            {"fund_channel": "ALIPAYACCOUNT", "amount": p.fen_to_yuan(trade.total_fen)}
        ],
        "buyer_user_id": BUYER_ID,
    }


def settle(sandbox: AlipaySandbox, trade: Trade, paid: bool) -> None:
    """A pending trade is paid (or the buyer gave up / the payment failed: closed)."""
    now = utcnow()
    if paid:
        trade.status, trade.paid_at = "TRADE_SUCCESS", now
    else:
        trade.status, trade.closed_at = "TRADE_CLOSED", now
    notify(sandbox, trade)


def _pay(call: Call) -> dict[str, Any]:
    sandbox, params, biz, action = call.sandbox, call.params, call.biz, call.action
    scene = biz.get("scene")
    if scene not in ("bar_code", "security_code"):
        raise _refused("ACQ.INVALID_PARAMETER", "scene 只能为 bar_code")
    auth_code = _text(biz, "auth_code")
    if not (auth_code.isdigit() and 16 <= len(auth_code) <= 24 and 25 <= int(auth_code[:2]) <= 30):
        raise _refused(
            "ACQ.PAYMENT_AUTH_CODE_INVALID",
            AUTH_CODE_INVALID,
        )
    trade = _new_trade(sandbox, params, biz, "bar_code")
    if trade.status != "WAIT_BUYER_PAY" or trade.paid_at is not None:
        raise _refused("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
    user_paying = (action or {}).get("action") == "user_paying"
    if auth_code == TEST_AUTH_CODES["declined"]:
        del sandbox.trades[trade.out_trade_no]
        raise _refused(
            "ACQ.PAYMENT_AUTH_CODE_INVALID",
            AUTH_CODE_INVALID,
        )
    if auth_code == TEST_AUTH_CODES["insufficient_funds"]:
        trade.status, trade.closed_at = "TRADE_CLOSED", utcnow()
        raise _refused("ACQ.BUYER_BALANCE_NOT_ENOUGH", "买家余额不足")
    if auth_code == TEST_AUTH_CODES["user_paying"] or user_paying:
        return {"code": p.USER_PAYING, "msg": p.MESSAGES[p.USER_PAYING], **_trade_fields(trade)}
    trade.status, trade.paid_at = "TRADE_SUCCESS", utcnow()
    notify(sandbox, trade)
    if auth_code == TEST_AUTH_CODES["timeout"]:
        # The payment went through but the gateway could not say so in time.
        raise Answer(p.UNKNOWN, "ACQ.SYSTEM_ERROR", "系统超时，请查询交易结果")
    return _success(**_paid_fields(trade))


def _precreate(call: Call) -> dict[str, Any]:
    request, sandbox, params, biz = call.request, call.sandbox, call.params, call.biz
    trade = _new_trade(sandbox, params, biz, "qr")
    qr_code = f"{base_url(request)}/_control/pay/{trade.out_trade_no}"
    return _success(out_trade_no=trade.out_trade_no, qr_code=qr_code)


def _wap_page(
    request: Request, sandbox: AlipaySandbox, params: dict[str, str], biz: dict[str, Any]
) -> Response:
    """alipay.trade.wap.pay is not called but opened: the customer's browser GETs the signed
    URL and lands on the cashier (here, the sandbox's approve/decline page)."""
    if biz.get("product_code") not in (None, "QUICK_WAP_WAY", "QUICK_WAP_PAY"):
        return HTMLResponse("<p>ACQ.INVALID_PARAMETER: product_code</p>", status_code=400)
    try:
        trade = _new_trade(sandbox, params, biz, "wap")
    except Answer as answer:
        body = f"<p>{html.escape(answer.sub_code)}: {html.escape(answer.sub_msg)}</p>"
        return HTMLResponse(body, status_code=400)
    return HTMLResponse(payment_page(request, trade, params.get("return_url", "")))


def payment_page(request: Request, trade: Trade, return_url: str = "") -> str:
    """The sandbox cashier: shows the payment and lets a person approve or decline it."""
    base = base_url(request)
    no = html.escape(trade.out_trade_no)
    back = f'<input type="hidden" name="return_url" value="{html.escape(return_url)}">'
    buttons = (
        f'<form method="post" action="{base}/_control/trades/{no}/approve">{back}'
        '<button type="submit">Pay / 付款</button></form>'
        f'<form method="post" action="{base}/_control/trades/{no}/decline">{back}'
        '<button type="submit">Decline / 拒绝</button></form>'
        if trade.status == "WAIT_BUYER_PAY"
        else ""
    )
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Alipay sandbox</title></head><body>"
        "<h1>Alipay sandbox / 支付宝沙箱</h1>"
        f"<p>{html.escape(trade.subject)}</p>"
        f'<p id="amount">¥{p.fen_to_yuan(trade.total_fen)}</p>'
        f'<p id="status">{html.escape(trade.status)}</p>'
        f"<p>{no}</p>{buttons}</body></html>"
    )


def _query(call: Call) -> dict[str, Any]:
    sandbox, biz = call.sandbox, call.biz
    trade = _find(sandbox, biz)
    fields = _trade_fields(trade)
    fields["trade_status"] = trade.status
    if trade.paid_at is not None:
        fields.update(
            receipt_amount=p.fen_to_yuan(trade.total_fen),
            buyer_pay_amount=p.fen_to_yuan(trade.total_fen),
            send_pay_date=p.format_time(trade.paid_at),
            buyer_user_id=BUYER_ID,
        )
    return _success(**fields)


def _close(call: Call) -> dict[str, Any]:
    sandbox, biz = call.sandbox, call.biz
    trade = _find(sandbox, biz)
    if trade.status != "WAIT_BUYER_PAY":
        raise _refused("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
    settle(sandbox, trade, paid=False)
    return _success(**_ids(trade))


def _cancel(call: Call) -> dict[str, Any]:
    sandbox, biz = call.sandbox, call.biz
    trade = _find(sandbox, biz)
    if trade.status == "TRADE_FINISHED":
        raise _refused("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
    if trade.refunds:
        raise _refused("ACQ.REASON_TRADE_BEEN_FREEZEN", "交易已发生退款，不能撤销")
    now = utcnow()
    if trade.status == "TRADE_SUCCESS":
        trade.refunds[trade.out_trade_no] = Refund(
            trade.out_trade_no, trade.total_fen, "cancel", now
        )
        store.touch(trade)
        action_taken = "refund"
    else:
        action_taken = "close"
    if trade.status != "TRADE_CLOSED":
        trade.status, trade.closed_at = "TRADE_CLOSED", now
        notify(sandbox, trade, refund=trade.refunds.get(trade.out_trade_no))
    fields: dict[str, Any] = {"retry_flag": "N", "action": action_taken}
    if action_taken == "refund":
        fields["gmt_refund_pay"] = p.format_time(now)
    return _success(**_ids(trade), **fields)


def _refund(call: Call) -> dict[str, Any]:
    sandbox, biz = call.sandbox, call.biz
    trade = _find(sandbox, biz)
    amount = _amount(biz, "refund_amount")
    request_no = str(biz.get("out_request_no") or trade.out_trade_no)
    fields = {**_ids(trade), "buyer_logon_id": BUYER_LOGON_ID, "buyer_user_id": BUYER_ID}
    existing = trade.refunds.get(request_no)
    if existing is not None:
        if existing.amount_fen != amount:
            raise _refused("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额与原请求不一致")
        return _success(
            **fields,
            fund_change="N",
            refund_fee=p.fen_to_yuan(trade.refunded_fen),
            gmt_refund_pay=p.format_time(existing.at),
        )
    if trade.status == "WAIT_BUYER_PAY" or trade.paid_at is None:
        raise _refused("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
    if trade.status == "TRADE_FINISHED":
        raise _refused("ACQ.TRADE_HAS_FINISHED", "交易已完结")
    if trade.status != "TRADE_SUCCESS":
        raise _refused("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
    if trade.refunded_fen + amount > trade.total_fen:
        raise _refused("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
    refund = Refund(request_no, amount, str(biz.get("refund_reason") or ""), utcnow())
    trade.refunds[request_no] = refund
    store.touch(trade)
    if trade.refunded_fen == trade.total_fen:
        trade.status, trade.closed_at = "TRADE_CLOSED", refund.at
    notify(sandbox, trade, refund=refund)
    return _success(
        **fields,
        fund_change="Y",
        refund_fee=p.fen_to_yuan(trade.refunded_fen),
        gmt_refund_pay=p.format_time(refund.at),
    )


def _refund_query(call: Call) -> dict[str, Any]:
    sandbox, biz = call.sandbox, call.biz
    trade = _find(sandbox, biz)
    request_no = _text(biz, "out_request_no")
    refund = trade.refunds.get(request_no)
    if refund is None:
        # Alipay answers success with no refund fields: no such refund (or not yet taken).
        return _success(**_ids(trade))
    return _success(
        **_ids(trade),
        out_request_no=request_no,
        total_amount=p.fen_to_yuan(trade.total_fen),
        refund_amount=p.fen_to_yuan(refund.amount_fen),
        refund_status="REFUND_SUCCESS",
        gmt_refund_pay=p.format_time(refund.at),
    )


def _bill_row(
    trade: Trade, kind: str, at: datetime, amount_fen: int, refund_no: str = ""
) -> p.BillRow:
    """A bill line: a payment (amount_fen > 0) or a refund (< 0), with the 0.6% fee."""
    fee = (abs(amount_fen) * FEE_RATE_BP + 5_000) // 10_000
    return p.BillRow(
        trade_no=trade.trade_no,
        out_trade_no=trade.out_trade_no,
        kind=kind,
        subject=trade.subject,
        created_at=trade.created_at,
        finished_at=at,
        amount_fen=amount_fen,
        received_fen=amount_fen,
        fee_fen=fee if amount_fen >= 0 else -fee,
        buyer_account=BUYER_LOGON_ID,
        refund_no=refund_no,
    )


def bill_rows(sandbox: AlipaySandbox, day: date) -> list[p.BillRow]:
    rows: list[p.BillRow] = []
    for trade in sandbox.trades.values():
        if trade.paid_at is not None and p.format_time(trade.paid_at)[:10] == day.isoformat():
            rows.append(_bill_row(trade, p.TRADE, trade.paid_at, trade.total_fen))
        for refund in trade.refunds.values():
            if p.format_time(refund.at)[:10] == day.isoformat():
                rows.append(
                    _bill_row(trade, p.REFUND, refund.at, -refund.amount_fen, refund.out_request_no)
                )
    return rows


def _bill_token(sandbox: AlipaySandbox, day: str, expires: str) -> str:
    message = f"{sandbox.pid}|{day}|{expires}".encode()
    return hmac.new(sandbox.bill_secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def _bill_url(call: Call) -> dict[str, Any]:
    request, sandbox, biz = call.request, call.sandbox, call.biz
    bill_type = biz.get("bill_type")
    if bill_type not in ("trade", "signcustomer"):
        raise Answer(
            p.INVALID_ARGUMENT, "isv.invalid-bill-type", "bill_type 只能为 trade 或 signcustomer"
        )
    try:
        day = date.fromisoformat(_text(biz, "bill_date", 10))
    except ValueError:
        raise Answer(
            p.INVALID_ARGUMENT, "isv.invalid-bill-date", "bill_date 格式为 yyyy-MM-dd"
        ) from None
    today = utcnow().astimezone(p.BEIJING).date()
    if day > today or not bill_rows(sandbox, day):
        raise _refused("isp.bill_not_exist", "账单不存在")
    stamp = day.strftime("%Y%m%d")
    expires = str(int((utcnow() + timedelta(minutes=5)).timestamp()))
    zip_name, _detail, _summary = p.bill_file_names(sandbox.bill_account, day)
    query = urlencode(
        {
            "bizType": bill_type,
            "userId": sandbox.pid,
            "fileType": "csv.zip",
            "bizDates": stamp,
            "downloadFileName": zip_name,
            "timestamp": expires,
            "token": _bill_token(sandbox, stamp, expires),
        }
    )
    return _success(bill_download_url=f"{base_url(request)}/downloadBillFile.resource?{query}")


@router.get("/downloadBillFile.resource")
async def download_bill(request: Request) -> Response:
    sandbox = sandbox_for(_settings(request))
    q = request.query_params
    stamp, expires, token = q.get("bizDates", ""), q.get("timestamp", ""), q.get("token", "")
    if not hmac.compare_digest(token, _bill_token(sandbox, stamp, expires)):
        return JSONResponse({"error": "invalid token"}, status_code=403)
    if not expires.isdigit() or int(expires) < utcnow().timestamp():
        return JSONResponse({"error": "link expired"}, status_code=403)
    day = datetime.strptime(stamp, "%Y%m%d").replace(tzinfo=p.BEIJING).date()
    body = p.encode_bill(sandbox.bill_account, day, bill_rows(sandbox, day), utcnow())
    zip_name, _d, _s = p.bill_file_names(sandbox.bill_account, day)
    return Response(
        body,
        media_type="application/zip",
        headers={"content-disposition": f"attachment; filename*=UTF-8''{zip_name}"},
    )


_HANDLERS = {
    "alipay.trade.pay": _pay,
    "alipay.trade.precreate": _precreate,
    "alipay.trade.query": _query,
    "alipay.trade.close": _close,
    "alipay.trade.cancel": _cancel,
    "alipay.trade.refund": _refund,
    "alipay.trade.fastpay.refund.query": _refund_query,
    "alipay.data.dataservice.bill.downloadurl.query": _bill_url,
}


# --- notifications -----------------------------------------------------------------------


def notification_params(
    sandbox: AlipaySandbox, trade: Trade, refund: Refund | None = None
) -> dict[str, str]:
    now = utcnow()
    params: dict[str, str] = {
        "notify_time": p.format_time(now),
        "notify_type": "trade_status_sync",
        "notify_id": sandbox.new_trade_no() + "notify",
        "charset": "utf-8",
        "version": "1.0",
        "sign_type": "RSA2",
        "app_id": sandbox.app_id,
        "auth_app_id": sandbox.app_id,
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "buyer_id": BUYER_ID,
        "buyer_logon_id": BUYER_LOGON_ID,
        "seller_id": sandbox.pid,
        "trade_status": trade.status,
        "total_amount": p.fen_to_yuan(trade.total_fen),
        "subject": trade.subject,
        "gmt_create": p.format_time(trade.created_at),
    }
    if trade.paid_at is not None:
        params.update(
            receipt_amount=p.fen_to_yuan(trade.total_fen),
            buyer_pay_amount=p.fen_to_yuan(trade.total_fen),
            invoice_amount=p.fen_to_yuan(trade.total_fen),
            point_amount="0.00",
            gmt_payment=p.format_time(trade.paid_at),
            fund_bill_list=json.dumps(
                [{"amount": p.fen_to_yuan(trade.total_fen), "fundChannel": "ALIPAYACCOUNT"}]
            ),
        )
    if trade.closed_at is not None:
        params["gmt_close"] = p.format_time(trade.closed_at)
    if refund is not None:
        params.update(
            out_biz_no=refund.out_request_no,
            refund_fee=p.fen_to_yuan(trade.refunded_fen),
            gmt_refund=p.format_time(refund.at) + ".000",
        )
    return params


def notify(sandbox: AlipaySandbox, trade: Trade, refund: Refund | None = None) -> None:
    """Send the trade's state to its notify_url (nothing when it gave none)."""
    if not trade.notify_url:
        return
    params = p.sign_notification(
        notification_params(sandbox, trade, refund), sandbox.alipay_private_key
    )
    mode = sandbox.notify_modes.pop(0) if sandbox.notify_modes else {}
    kind = str(mode.get("mode", ""))
    if kind == "bad_signature":
        params["sign"] = params["sign"][:-8] + (
            "A" * 8 if not params["sign"].endswith("A" * 8) else "B" * 8
        )
    label = {
        "out_trade_no": trade.out_trade_no,
        "trade_status": trade.status,
        "notify_id": params["notify_id"],
        "mode": kind,
    }
    if refund is not None:
        label["out_biz_no"] = refund.out_request_no
    sandbox.notifier.send_scripted(
        sandbox.held,
        mode,
        trade.notify_url,
        urlencode(params).encode(),
        "application/x-www-form-urlencoded; charset=utf-8",
        kind="trade_status_sync",
        label=label,
    )

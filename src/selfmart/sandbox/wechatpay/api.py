"""The WeChat Pay API v3 paths the sandbox serves, below `/sandbox/wechatpay`.

Every request is authenticated as the platform does (Authorization schema, merchant id,
certificate serial, a 5-minute timestamp window, the RSA signature over
`METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n`); every answer, errors included, is signed with the
platform certificate, or with the platform public key when the request names it in
`Wechatpay-Serial` (public-key mode). Errors are `{"code": ..., "message": ...}` with the
platform's codes and HTTP statuses.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from fastapi import APIRouter, Request, Response

from selfmart.config import Settings
from selfmart.kit.time import utcnow
from selfmart.payments.wechatpay import protocol as wx
from selfmart.sandbox.wechatpay.keys import SandboxKeys, load
from selfmart.sandbox.wechatpay.state import (
    REFUND_SECONDS,
    STATE,
    NextCall,
    Refund,
    SignMode,
    Transaction,
)

router = APIRouter(include_in_schema=False)

#: payment codes whose outcome is fixed (any other well-formed code pays at once)
TEST_AUTH_CODES = {
    "success": "130000000000000001",
    "user_paying": "130000000000000002",
    "declined": "130000000000000003",
    "insufficient_funds": "130000000000000004",
    "timeout": "130000000000000005",
}
_AUTH_CODE = re.compile(r"^1[0-5]\d{16}$")
_OUT_NO = re.compile(r"^[0-9A-Za-z_\-*|]{6,64}$")


class WxError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Ctx:
    request: Request
    settings: Settings
    keys: SandboxKeys
    target: str
    mode: SignMode
    data: dict[str, Any] = field(default_factory=dict)
    forced: NextCall | None = None

    @property
    def gateway(self) -> str:
        """The base URL this client uses (what is before `/v3/` in the URL it called)."""
        url = str(self.request.url)
        return url[: url.find("/v3/")]


Handler = Callable[[Ctx], Awaitable[tuple[int, dict[str, Any] | None]]]


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def sign_response(
    keys: SandboxKeys, mode: SignMode, status: int, payload: dict[str, Any] | None
) -> Response:
    body = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
    serial, key = STATE.signer(keys, mode)
    headers = {
        "Request-ID": uuid.uuid4().hex.upper(),
        **wx.response_headers(
            key, serial, body, timestamp=str(int(utcnow().timestamp())), nonce=wx.nonce_str()
        ),
    }
    if payload is None:
        return Response(status_code=status, headers=headers)
    return Response(
        body, status_code=status, headers=headers, media_type="application/json; charset=utf-8"
    )


def authenticate(ctx: Ctx, method: str, body: bytes) -> None:
    header = wx.header(dict(ctx.request.headers), "Authorization")
    if not header:
        raise WxError(401, "SIGN_ERROR", "Authorization 请求头缺失")
    try:
        auth = wx.parse_authorization(header)
    except wx.ProtocolError as exc:
        raise WxError(401, "SIGN_ERROR", f"Authorization 格式错误: {exc}") from None
    if auth.mchid != ctx.keys.mchid:
        raise WxError(401, "SIGN_ERROR", f"商户号 {auth.mchid} 与签名证书不匹配")
    if auth.serial_no.upper() != ctx.keys.merchant_serial:
        raise WxError(401, "SIGN_ERROR", "商户证书序列号 serial_no 有误")
    if not wx.timestamp_fresh(auth.timestamp, utcnow()):
        raise WxError(401, "SIGN_ERROR", "timestamp 与系统时间相差超过 5 分钟")
    message = wx.request_message(method, ctx.target, auth.timestamp, auth.nonce_str, body)
    if not wx.verify(ctx.keys.merchant_key.public_key(), message, auth.signature):
        raise WxError(401, "SIGN_ERROR", "签名错误，验签失败")


async def handle(request: Request, handler: Handler, *, json_body: bool) -> Response:
    settings = settings_of(request)
    keys = load(settings.payment_sandbox_dir)
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    path = raw_path.decode("latin-1")
    target = path[path.find("/v3/") :]
    if request.url.query:
        target += "?" + request.url.query
    serial = wx.header(dict(request.headers), "Wechatpay-Serial")
    mode: SignMode = "public_key" if serial.startswith(wx.PUBLIC_KEY_ID_PREFIX) else "certificate"
    ctx = Ctx(request=request, settings=settings, keys=keys, target=target, mode=mode)
    body = await request.body()
    record: dict[str, Any] = {
        "at": utcnow().isoformat(),
        "method": request.method,
        "url": target,
        "body": body.decode("utf-8", "replace")[:4000],
    }
    STATE.received.append(record)
    delay = 0.0
    try:
        if mode == "public_key" and serial not in STATE.public_key_ids(keys):
            raise WxError(400, "PARAM_ERROR", f"Wechatpay-Serial {serial} 不是有效的平台公钥ID")
        authenticate(ctx, request.method, body)
        ctx.forced = STATE.take_next(target, {"error_500", "timeout"})
        if ctx.forced is not None:
            if ctx.forced.action == "error_500":
                raise WxError(500, "SYSTEM_ERROR", "系统错误")
            if ctx.forced.action == "timeout":
                delay = ctx.forced.seconds
        if json_body:
            try:
                parsed = json.loads(body)
            except ValueError:
                raise WxError(400, "PARAM_ERROR", "请求体不是合法的 JSON") from None
            if not isinstance(parsed, dict):
                raise WxError(400, "PARAM_ERROR", "请求体必须是 JSON 对象")
            ctx.data = parsed
        status, payload = await handler(ctx)
        if ctx.forced is not None and ctx.forced.action == "timeout":
            delay = ctx.forced.seconds
    except WxError as exc:
        status, payload = exc.status, {"code": exc.code, "message": exc.message}
    record["status"] = status
    record["answer"] = payload
    if delay:
        await asyncio.sleep(delay)
    return sign_response(keys, mode, status, payload)


# -- field checks -------------------------------------------------------------------------------


def _get(data: dict[str, Any], dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _str(data: dict[str, Any], dotted: str, *, required: bool = True, max_len: int = 256) -> str:
    value = _get(data, dotted)
    if value is None or value == "":
        if required:
            raise WxError(400, "PARAM_ERROR", f"缺少必填参数 {dotted}")
        return ""
    if not isinstance(value, str):
        raise WxError(400, "PARAM_ERROR", f"参数 {dotted} 必须是字符串")
    if len(value) > max_len:
        raise WxError(400, "PARAM_ERROR", f"参数 {dotted} 长度超过 {max_len}")
    return value


def _int(data: dict[str, Any], dotted: str) -> int:
    value = _get(data, dotted)
    if value is None:
        raise WxError(400, "PARAM_ERROR", f"缺少必填参数 {dotted}")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise WxError(400, "PARAM_ERROR", f"参数 {dotted} 必须是正整数（单位：分）")
    return value


def _merchant(ctx: Ctx) -> None:
    appid = _str(ctx.data, "appid", max_len=32)
    mchid = _str(ctx.data, "mchid", max_len=32)
    if mchid != ctx.keys.mchid or appid != ctx.keys.appid:
        raise WxError(400, "APPID_MCHID_NOT_MATCH", "appid 和 mchid 不匹配")


def _out_trade_no(value: str, name: str = "out_trade_no") -> str:
    if not _OUT_NO.match(value):
        raise WxError(400, "PARAM_ERROR", f"参数 {name} 只能是数字、大小写字母_-*|，6 至 64 位")
    return value


def _amount(ctx: Ctx) -> int:
    total = _int(ctx.data, "amount.total")
    currency = _get(ctx.data, "amount.currency")
    if currency not in (None, "CNY"):
        raise WxError(400, "PARAM_ERROR", "参数 amount.currency 只支持 CNY")
    return total


def _query_mchid(ctx: Ctx) -> None:
    mchid = ctx.request.query_params.get("mchid")
    if not mchid:
        raise WxError(400, "PARAM_ERROR", "缺少必填参数 mchid")
    if mchid != ctx.keys.mchid:
        raise WxError(400, "PARAM_ERROR", "参数 mchid 与请求商户不符")


def _txn(out_trade_no: str) -> Transaction:
    txn = STATE.transactions.get(out_trade_no)
    if txn is None:
        raise WxError(404, "ORDER_NOT_EXIST", "订单不存在")
    _expire(txn)
    return txn


def _expire(txn: Transaction) -> None:
    if txn.trade_state == "NOTPAY" and txn.pay_ref and txn.expires_at is not None:
        if utcnow() > txn.expires_at:
            txn.trade_state, txn.trade_state_desc = "CLOSED", "订单已关闭"


def _transaction_id() -> str:
    return "4200" + "".join(secrets.choice("0123456789") for _ in range(24))


def _fingerprint(ctx: Ctx, trade_type: str) -> str:
    keep = {k: ctx.data.get(k) for k in ("description", "amount", "notify_url")}
    return json.dumps({"t": trade_type, **keep}, sort_keys=True, ensure_ascii=False)


def succeed(txn: Transaction, openid: str | None = None) -> None:
    txn.trade_state, txn.trade_state_desc = "SUCCESS", "支付成功"
    txn.success_time = utcnow()
    txn.transaction_id = txn.transaction_id or _transaction_id()
    txn.openid = openid or txn.openid or "o" + secrets.token_urlsafe(20)[:27]


def notify_paid(ctx_settings: Settings, keys: SandboxKeys, txn: Transaction) -> None:
    STATE.notify(
        keys,
        event_type="TRANSACTION.SUCCESS",
        summary="支付成功",
        original_type="transaction",
        resource=txn.document(),
        url=txn.notify_url,
        sign_mode=txn.sign_mode,
        time_scale=ctx_settings.payment_sandbox_time_scale,
        out_trade_no=txn.out_trade_no,
    )


# -- payments -----------------------------------------------------------------------------------


async def _prepay(ctx: Ctx, trade_type: str) -> tuple[Transaction, bool]:
    """Create (or find again, for the same request) a NATIVE / MWEB / JSAPI transaction."""
    _merchant(ctx)
    description = _str(ctx.data, "description", max_len=127)
    out_trade_no = _out_trade_no(_str(ctx.data, "out_trade_no", max_len=64))
    notify_url = _str(ctx.data, "notify_url", max_len=256)
    if not notify_url.startswith(("http://", "https://")):
        raise WxError(400, "PARAM_ERROR", "参数 notify_url 必须是 http(s) 地址")
    total = _amount(ctx)
    expire_text = _str(ctx.data, "time_expire", required=False, max_len=64)
    expires_at = None
    if expire_text:
        try:
            expires_at = wx.parse_rfc3339(expire_text)
        except wx.ProtocolError:
            raise WxError(400, "PARAM_ERROR", "参数 time_expire 不是 RFC 3339 时间") from None
    fingerprint = _fingerprint(ctx, trade_type)
    existing = STATE.transactions.get(out_trade_no)
    if existing is not None:
        _expire(existing)
        if existing.trade_state in {"SUCCESS", "REFUND"}:
            raise WxError(403, "ORDERPAID", "该订单已支付")
        if existing.trade_state in {"CLOSED", "REVOKED"}:
            raise WxError(400, "ORDER_CLOSED", "订单已关闭")
        if existing.fingerprint != fingerprint:
            raise WxError(400, "INVALID_REQUEST", "商户订单号重复，且请求参数与原订单不一致")
        return existing, False
    txn = Transaction(
        out_trade_no=out_trade_no,
        appid=ctx.keys.appid,
        mchid=ctx.keys.mchid,
        description=description,
        total=total,
        trade_type=trade_type,
        notify_url=notify_url,
        sign_mode=ctx.mode,
        fingerprint=fingerprint,
        created_at=utcnow(),
        attach=_str(ctx.data, "attach", required=False, max_len=128),
        expires_at=expires_at,
        pay_ref="wx" + utcnow().strftime("%d%H%M%S") + secrets.token_hex(12),
    )
    if trade_type == "JSAPI":
        txn.openid = _str(ctx.data, "payer.openid", max_len=128)
    STATE.transactions[out_trade_no] = txn
    return txn, True


@router.post("/v3/pay/transactions/native")
async def native(request: Request) -> Response:
    async def run(ctx: Ctx) -> tuple[int, dict[str, Any] | None]:
        txn, _ = await _prepay(ctx, "NATIVE")
        return 200, {"code_url": f"weixin://wxpay/bizpayurl?pr={txn.pay_ref[-12:]}"}

    return await handle(request, run, json_body=True)


@router.post("/v3/pay/transactions/h5")
async def h5(request: Request) -> Response:
    async def run(ctx: Ctx) -> tuple[int, dict[str, Any] | None]:
        _str(ctx.data, "scene_info.payer_client_ip", max_len=45)
        _str(ctx.data, "scene_info.h5_info.type", max_len=32)
        txn, _ = await _prepay(ctx, "MWEB")
        return 200, {"h5_url": f"{ctx.gateway}/_control/pay?prepay_id={txn.pay_ref}"}

    return await handle(request, run, json_body=True)


@router.post("/v3/pay/transactions/jsapi")
async def jsapi(request: Request) -> Response:
    async def run(ctx: Ctx) -> tuple[int, dict[str, Any] | None]:
        _str(ctx.data, "payer.openid", max_len=128)
        txn, _ = await _prepay(ctx, "JSAPI")
        return 200, {"prepay_id": txn.pay_ref}

    return await handle(request, run, json_body=True)


@router.post("/v3/pay/transactions/codepay")
async def codepay(request: Request) -> Response:
    async def run(ctx: Ctx) -> tuple[int, dict[str, Any] | None]:
        _merchant(ctx)
        description = _str(ctx.data, "description", max_len=127)
        out_trade_no = _out_trade_no(_str(ctx.data, "out_trade_no", max_len=64))
        auth_code = _str(ctx.data, "payer.auth_code", max_len=32)
        _str(ctx.data, "scene_info.store_info.out_id", max_len=32)
        total = _amount(ctx)
        if not _AUTH_CODE.match(auth_code):
            raise WxError(400, "PARAM_ERROR", "参数 payer.auth_code 不是有效的付款码（18 位数字）")
        existing = STATE.transactions.get(out_trade_no)
        if existing is not None:
            if existing.trade_state in {"SUCCESS", "REFUND"}:
                raise WxError(403, "ORDERPAID", "该订单已支付")
            if existing.trade_state == "USERPAYING":
                return 202, {"code": "USERPAYING", "message": "需要用户输入支付密码"}
            raise WxError(400, "INVALID_REQUEST", "商户订单号重复")
        txn = Transaction(
            out_trade_no=out_trade_no,
            appid=ctx.keys.appid,
            mchid=ctx.keys.mchid,
            description=description,
            total=total,
            trade_type="MICROPAY",
            notify_url="",
            sign_mode=ctx.mode,
            fingerprint=_fingerprint(ctx, "MICROPAY"),
            created_at=utcnow(),
            attach=_str(ctx.data, "attach", required=False, max_len=128),
            openid="o" + auth_code[-10:] + "sandboxPayer",
        )
        STATE.transactions[out_trade_no] = txn
        switch = STATE.take_next(ctx.target, {"decline", "user_paying"})
        forced = switch.action if switch else None
        if auth_code == TEST_AUTH_CODES["user_paying"] or forced == "user_paying":
            txn.trade_state, txn.trade_state_desc = "USERPAYING", "需要用户输入支付密码"
            return 202, {"code": "USERPAYING", "message": "需要用户输入支付密码"}
        if auth_code == TEST_AUTH_CODES["declined"] or forced == "decline":
            txn.trade_state, txn.trade_state_desc = "PAYERROR", "支付失败，用户拒绝付款"
            raise WxError(403, "TRADE_ERROR", "交易错误，用户拒绝付款")
        if auth_code == TEST_AUTH_CODES["insufficient_funds"]:
            txn.trade_state, txn.trade_state_desc = "PAYERROR", "支付失败，余额不足"
            raise WxError(403, "NOT_ENOUGH", "用户账户余额不足")
        succeed(txn)
        if auth_code == TEST_AUTH_CODES["timeout"]:
            # paid, but the answer arrives after any client has given up
            ctx.forced = NextCall(action="timeout")
        return 200, txn.document()

    return await handle(request, run, json_body=True)


@router.get("/v3/pay/transactions/out-trade-no/{out_trade_no}")
async def query(request: Request, out_trade_no: str) -> Response:
    async def run(ctx: Ctx) -> tuple[int, dict[str, Any] | None]:
        _query_mchid(ctx)
        return 200, _txn(out_trade_no).document()

    return await handle(request, run, json_body=False)


@router.get("/v3/pay/transactions/id/{transaction_id}")
async def query_by_id(request: Request, transaction_id: str) -> Response:
    async def run(ctx: Ctx) -> tuple[int, dict[str, Any] | None]:
        _query_mchid(ctx)
        for txn in STATE.transactions.values():
            if txn.transaction_id == transaction_id:
                return 200, txn.document()
        raise WxError(404, "ORDER_NOT_EXIST", "订单不存在")

    return await handle(request, run, json_body=False)


@router.post("/v3/pay/transactions/out-trade-no/{out_trade_no}/close")
async def close(request: Request, out_trade_no: str) -> Response:
    async def run(ctx: Ctx) -> tuple[int, dict[str, Any] | None]:
        if _str(ctx.data, "mchid", max_len=32) != ctx.keys.mchid:
            raise WxError(400, "PARAM_ERROR", "参数 mchid 与请求商户不符")
        txn = _txn(out_trade_no)
        if txn.trade_state in {"SUCCESS", "REFUND"}:
            raise WxError(403, "ORDERPAID", "该订单已支付，不能关闭")
        if txn.trade_state not in {"CLOSED", "REVOKED"}:
            txn.trade_state, txn.trade_state_desc = "CLOSED", "订单已关闭"
        return 204, None

    return await handle(request, run, json_body=True)


@router.post("/v3/pay/transactions/out-trade-no/{out_trade_no}/reverse")
async def reverse(request: Request, out_trade_no: str) -> Response:
    async def run(ctx: Ctx) -> tuple[int, dict[str, Any] | None]:
        _merchant(ctx)
        txn = _txn(out_trade_no)
        if txn.trade_type != "MICROPAY":
            raise WxError(400, "INVALID_REQUEST", "只有付款码支付的订单可以撤销")
        if STATE.take_next(ctx.target, {"decline"}) is not None:
            # refused, the transaction as it was (the customer may still be paying)
            raise WxError(403, "TRADE_ERROR", "交易错误，撤销失败，请稍后再试")
        if txn.refunded:
            raise WxError(400, "INVALID_REQUEST", "订单已发生退款，不能撤销")
        # a paid order's money goes back to the customer
        txn.trade_state, txn.trade_state_desc = "REVOKED", "已撤销"
        return 200, {"appid": txn.appid, "mchid": txn.mchid, "out_trade_no": txn.out_trade_no}

    return await handle(request, run, json_body=True)


# -- refunds ------------------------------------------------------------------------------------


@router.post("/v3/refund/domestic/refunds")
async def refund(request: Request) -> Response:
    async def run(ctx: Ctx) -> tuple[int, dict[str, Any] | None]:
        out_refund_no = _out_trade_no(_str(ctx.data, "out_refund_no", max_len=64), "out_refund_no")
        amount = _int(ctx.data, "amount.refund")
        total = _int(ctx.data, "amount.total")
        if _str(ctx.data, "amount.currency", max_len=16) != "CNY":
            raise WxError(400, "PARAM_ERROR", "参数 amount.currency 只支持 CNY")
        transaction_id = _str(ctx.data, "transaction_id", required=False, max_len=32)
        out_trade_no = _str(ctx.data, "out_trade_no", required=False, max_len=64)
        if not (transaction_id or out_trade_no):
            raise WxError(400, "PARAM_ERROR", "transaction_id 和 out_trade_no 必须二选一")
        txn = next(
            (
                t
                for t in STATE.transactions.values()
                if (transaction_id and t.transaction_id == transaction_id)
                or (not transaction_id and t.out_trade_no == out_trade_no)
            ),
            None,
        )
        if txn is None:
            raise WxError(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        existing = STATE.refunds.get(out_refund_no)
        if existing is not None:
            if existing.out_trade_no != txn.out_trade_no or existing.refund != amount:
                raise WxError(
                    400, "INVALID_REQUEST", "商户退款单号重复，且请求参数与原退款单不一致"
                )
            return 200, existing.document()
        if txn.trade_state not in {"SUCCESS", "REFUND"}:
            raise WxError(400, "INVALID_REQUEST", "订单未支付成功，不能退款")
        if total != txn.total:
            raise WxError(400, "PARAM_ERROR", "参数 amount.total 与原订单金额不符")
        if amount > txn.total - txn.refunded:
            raise WxError(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
        if STATE.take_next(ctx.target, {"decline"}) is not None:
            raise WxError(403, "NOT_ENOUGH", "基本账户余额不足，请充值后重新发起")
        ending = STATE.take_next(ctx.target, {"refund_abnormal", "refund_closed"})
        final = {"refund_abnormal": "ABNORMAL", "refund_closed": "CLOSED"}.get(
            ending.action if ending is not None else "", "SUCCESS"
        )
        notify_url = _str(ctx.data, "notify_url", required=False, max_len=256)
        item = Refund(
            out_refund_no=out_refund_no,
            refund_id="50" + "".join(secrets.choice("0123456789") for _ in range(27)),
            out_trade_no=txn.out_trade_no,
            transaction_id=txn.transaction_id,
            refund=amount,
            total=txn.total,
            reason=_str(ctx.data, "reason", required=False, max_len=80),
            notify_url=notify_url,
            sign_mode=ctx.mode,
            created_at=utcnow(),
        )
        STATE.refunds[out_refund_no] = item
        txn.refunded += amount
        txn.trade_state, txn.trade_state_desc = "REFUND", "订单发生过退款，退款详情请查询退款单"
        scale = ctx.settings.payment_sandbox_time_scale
        keys = ctx.keys
        task = asyncio.get_running_loop().create_task(_settle_refund(keys, item, scale, final))
        STATE.tasks.add(task)
        task.add_done_callback(STATE.tasks.discard)
        return 200, item.document()

    return await handle(request, run, json_body=True)


#: how a refund ends -> its callback's summary
_REFUND_SUMMARIES = {"SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭"}


async def _settle_refund(
    keys: SandboxKeys, item: Refund, time_scale: float, final: str = "SUCCESS"
) -> None:
    await asyncio.sleep(REFUND_SECONDS / time_scale)
    if item.status != "PROCESSING":
        return
    item.status = final
    if final == "SUCCESS":
        item.success_time = utcnow()
    else:  # the money goes back to the merchant's account
        txn = next(
            (t for t in STATE.transactions.values() if t.out_trade_no == item.out_trade_no),
            None,
        )
        if txn is not None:
            txn.refunded -= item.refund
    resource: dict[str, Any] = {
        "mchid": keys.mchid,
        "out_trade_no": item.out_trade_no,
        "transaction_id": item.transaction_id,
        "out_refund_no": item.out_refund_no,
        "refund_id": item.refund_id,
        "refund_status": item.status,
        "user_received_account": "支付用户零钱",
        "amount": {
            "total": item.total,
            "refund": item.refund,
            "payer_total": item.total,
            "payer_refund": item.refund,
        },
    }
    if item.success_time is not None:
        resource["success_time"] = wx.rfc3339(item.success_time)
    STATE.notify(
        keys,
        event_type=f"REFUND.{final}",
        summary=_REFUND_SUMMARIES[final],
        original_type="refund",
        resource=resource,
        url=item.notify_url,
        sign_mode=item.sign_mode,
        time_scale=time_scale,
        out_trade_no=item.out_trade_no,
        out_refund_no=item.out_refund_no,
    )


@router.get("/v3/refund/domestic/refunds/{out_refund_no}")
async def query_refund(request: Request, out_refund_no: str) -> Response:
    async def run(ctx: Ctx) -> tuple[int, dict[str, Any] | None]:
        item = STATE.refunds.get(out_refund_no)
        if item is None:
            raise WxError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return 200, item.document()

    return await handle(request, run, json_body=False)


# -- certificates -------------------------------------------------------------------------------


@router.get("/v3/certificates")
async def certificates(request: Request) -> Response:
    async def run(ctx: Ctx) -> tuple[int, dict[str, Any] | None]:
        data = []
        for cert in STATE.certificates(ctx.keys):
            parsed = x509.load_pem_x509_certificate(cert.pem.encode())
            nonce = secrets.token_hex(6)
            data.append(
                {
                    "serial_no": cert.serial,
                    "effective_time": wx.rfc3339(parsed.not_valid_before_utc),
                    "expire_time": wx.rfc3339(parsed.not_valid_after_utc),
                    "encrypt_certificate": {
                        "algorithm": wx.AEAD,
                        "nonce": nonce,
                        "associated_data": "certificate",
                        "ciphertext": wx.aead_encrypt(
                            ctx.keys.api_v3_key, nonce, "certificate", cert.pem.encode()
                        ),
                    },
                }
            )
        ctx.mode = "certificate"
        return 200, {"data": data}

    return await handle(request, run, json_body=False)


async def unknown_path(request: Request) -> Response:
    """Any other `/v3/` path or method: the platform's signed 404 (after the usual checks)."""

    async def run(ctx: Ctx) -> tuple[int, dict[str, Any] | None]:
        raise WxError(404, "NOT_FOUND", f"{request.method} {ctx.target.split('?')[0]} 不存在")

    return await handle(request, run, json_body=False)

"""The UnionPay ACP 5.1.0 gateway as our sandbox speaks it: `/gateway/api/backTransReq.do`
(consume 01, consume undo 31, refund 04), `/gateway/api/queryTrans.do` (00) and
`/gateway/api/fileTransReq.do` (76, fileType 00), form bodies in, `k=v&...` answers out, each
signed with the gateway's certificate (shown in `signPubKeyCert`); the result of a consume,
undo or refund also goes to its `backUrl` until the merchant answers HTTP 200.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from selfmart.config import Settings
from selfmart.kit.time import utcnow
from selfmart.payments.unionpay import protocol as u
from selfmart.sandbox.unionpay.state import TEST_CARDS, Txn, UnionPaySandbox, sandbox_for

router = APIRouter(include_in_schema=False)

#: the sandbox merchant's fee rate in basis points, 0.5%
FEE_RATE_BP = 50

COMMON = (
    "version",
    "encoding",
    "certId",
    "signature",
    "signMethod",
    "txnType",
    "txnSubType",
    "bizType",
    "accessType",
    "merId",
    "txnTime",
)
#: what each transaction type needs besides COMMON, and its txnSubType and bizType
SHAPES: dict[str, tuple[tuple[str, ...], str, str]] = {
    u.CONSUME: (
        ("orderId", "txnAmt", "currencyCode", "backUrl", "channelType", "accNo", "encryptCertId"),
        "01",
        u.BIZ_GATEWAY,
    ),
    u.CONSUME_UNDO: (
        ("orderId", "txnAmt", "backUrl", "channelType", "origQryId"),
        "00",
        u.BIZ_GATEWAY,
    ),
    u.REFUND: (("orderId", "txnAmt", "backUrl", "channelType", "origQryId"), "00", u.BIZ_GATEWAY),
    u.QUERY: (("orderId",), "00", u.BIZ_DEFAULT),
    u.FILE_TRANSFER: (("settleDate", "fileType"), "01", u.BIZ_DEFAULT),
}
PATH_TYPES = {
    "backTransReq.do": {u.CONSUME, u.CONSUME_UNDO, u.REFUND},
    "queryTrans.do": {u.QUERY},
    "fileTransReq.do": {u.FILE_TRANSFER},
}


class Refusal(Exception):
    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(message or u.MESSAGES.get(code, code))
        self.code = code
        self.message = message or u.MESSAGES.get(code, code)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def answer(
    sandbox: UnionPaySandbox, fields: dict[str, str], code: str, message: str = "", **extra: str
) -> Response:
    """A signed answer echoing the request's identifying fields."""
    echoed = {
        k: fields[k]
        for k in (
            "version",
            "encoding",
            "txnType",
            "txnSubType",
            "bizType",
            "accessType",
            "merId",
            "orderId",
            "txnTime",
            "signMethod",
        )
        if fields.get(k)
    }
    body = {
        **echoed,
        "version": u.VERSION,
        "encoding": u.ENCODING,
        "signMethod": u.SIGN_METHOD,
        "respCode": code,
        "respMsg": message or u.MESSAGES.get(code, code),
        "certId": sandbox.sign_cert_id,
        "signPubKeyCert": sandbox.sign_cert,
        **{k: v for k, v in extra.items() if v != ""},
    }
    signed = u.sign(body, sandbox.sign_key)
    return Response(u.encode_answer(signed), media_type="text/plain;charset=UTF-8")


async def _handle(request: Request, path: str) -> Response:
    sandbox = sandbox_for(_settings(request))
    form = await request.form()
    fields = {k: str(v) for k, v in form.items()}
    sandbox.received.append({"at": utcnow().isoformat(), "path": path, "fields": fields})
    del sandbox.received[:-500]
    txn_type = fields.get("txnType", "")
    action = sandbox.take_action(path, txn_type)
    if action is not None:
        kind = action.get("action")
        if kind == "error":
            return PlainTextResponse("Internal Server Error", status_code=500)
        if kind == "timeout":
            await asyncio.sleep(float(action.get("seconds", 30)))
        if kind == "decline":
            return answer(sandbox, fields, str(action.get("resp_code") or u.ISSUER_DECLINED))
    try:
        _check(sandbox, fields, path)
        if txn_type == u.QUERY:
            return _query(sandbox, fields)
        if txn_type == u.FILE_TRANSFER:
            return _file(sandbox, fields)
        return _transact(sandbox, fields, action)
    except Refusal as refusal:
        return answer(sandbox, fields, refusal.code, refusal.message)


def _check(sandbox: UnionPaySandbox, fields: dict[str, str], path: str) -> None:
    txn_type = fields.get("txnType", "")
    if txn_type not in PATH_TYPES[path]:
        raise Refusal(u.FORMAT_ERROR, f"txnType {txn_type!r} 不能发往 {path}")
    needed, sub_type, biz_type = SHAPES[txn_type]
    missing = [k for k in (*COMMON, *needed) if not fields.get(k)]
    if missing:
        raise Refusal(u.MISSING_FIELD, f"报文交易要素缺失[{missing[0]}]")
    if fields["version"] != u.VERSION or fields["encoding"].upper() != u.ENCODING:
        raise Refusal(u.FORMAT_ERROR, "version 或 encoding 不正确")
    if fields["signMethod"] != u.SIGN_METHOD:
        raise Refusal(u.FORMAT_ERROR, "signMethod 不正确")
    if fields["certId"] != sandbox.merchant_cert_id:
        raise Refusal(u.BAD_SIGNATURE, "certId 不正确")
    try:
        u.verify_with(fields, sandbox.merchant_cert)
    except u.SignatureError:
        raise Refusal(u.BAD_SIGNATURE) from None
    if fields["merId"] != sandbox.mer_id:
        raise Refusal("31", "商户状态不正确")
    if fields["txnSubType"] != sub_type or fields["bizType"] != biz_type:
        raise Refusal(u.FORMAT_ERROR, "txnSubType 或 bizType 不正确")
    if fields["accessType"] != "0":
        raise Refusal(u.FORMAT_ERROR, "accessType 不正确")
    if "channelType" in needed and fields["channelType"] not in ("07", "08"):
        raise Refusal(u.FORMAT_ERROR, "channelType 不正确")
    if "currencyCode" in needed and fields["currencyCode"] != u.CURRENCY:
        raise Refusal(u.FORMAT_ERROR, "currencyCode 不正确")
    try:
        u.parse_txn_time(fields["txnTime"])
        if "txnAmt" in needed:
            u.parse_amount(fields["txnAmt"])
    except ValueError as exc:
        raise Refusal(u.FORMAT_ERROR, str(exc)) from None
    if "orderId" in needed and not u.valid_order_id(fields["orderId"]):
        raise Refusal(u.FORMAT_ERROR, "orderId 格式不正确")


def _transact(
    sandbox: UnionPaySandbox, fields: dict[str, str], action: dict[str, Any] | None
) -> Response:
    key = (fields["orderId"], fields["txnTime"])
    if key in sandbox.txns:
        raise Refusal(u.DUPLICATE)
    txn_type = fields["txnType"]
    amount = u.parse_amount(fields["txnAmt"])
    original: Txn | None = None
    card = ""
    result = u.OK
    sync_code = u.OK
    if txn_type == u.CONSUME:
        if any(
            t.order_id == fields["orderId"] and t.txn_type == u.CONSUME and t.result == u.OK
            for t in sandbox.txns.values()
        ):
            raise Refusal(u.DUPLICATE, "重复交易：该订单号已支付")
        if fields["encryptCertId"] != sandbox.encrypt_cert_id:
            raise Refusal(u.FORMAT_ERROR, "encryptCertId 不正确")
        try:
            number = u.decrypt_sensitive(fields["accNo"], sandbox.encrypt_key)
        except ValueError:
            raise Refusal(u.CARD_INVALID) from None
        if not (number.isdigit() and 13 <= len(number) <= 19):
            raise Refusal(u.CARD_INVALID)
        card = u.mask_card(number)
        if number == TEST_CARDS["declined"]:
            raise Refusal(u.ISSUER_DECLINED)
        if number == TEST_CARDS["insufficient_funds"]:
            raise Refusal(u.INSUFFICIENT_FUNDS)
        if number == TEST_CARDS["user_paying"] or (action or {}).get("action") == "user_paying":
            result = u.ACCEPTED
        if number == TEST_CARDS["timeout"]:
            sync_code = u.TIMED_OUT
    else:
        original = sandbox.by_query_id(fields["origQryId"])
        if original is None or original.txn_type != u.CONSUME or original.result != u.OK:
            raise Refusal(u.ORIGINAL_BAD_STATE)
        remaining = original.amount_fen - original.returned_fen
        if txn_type == u.CONSUME_UNDO:
            if original.returned_fen or amount != original.amount_fen:
                raise Refusal(u.ORIGINAL_MISMATCH, "撤销金额须等于原交易金额，且原交易未退货")
            if original.settle_date != utcnow().astimezone(u.BEIJING).strftime("%m%d"):
                raise Refusal(u.ORIGINAL_BAD_STATE, "原交易已清算，请发起退货")
        elif amount > remaining:
            raise Refusal(u.ORIGINAL_MISMATCH, "退货金额超过原交易可退金额")
        original.returned_fen += amount
        card = original.card
    now = utcnow()
    txn = Txn(
        txn_type=txn_type,
        txn_sub_type=fields["txnSubType"],
        order_id=fields["orderId"],
        txn_time=fields["txnTime"],
        amount_fen=amount,
        query_id=sandbox.new_query_id(),
        card=card,
        back_url=fields["backUrl"],
        result=result,
        created_at=now,
        trace_no=sandbox.next_trace(),
        orig_query_id=original.query_id if original else "",
        finished_at=now if result == u.OK else None,
    )
    sandbox.txns[key] = txn
    if result == u.OK:
        notify(sandbox, txn)
    return answer(
        sandbox,
        fields,
        sync_code,
        queryId=txn.query_id,
        txnAmt=fields["txnAmt"],
        origQryId=txn.orig_query_id,
    )


def finish(sandbox: UnionPaySandbox, txn: Txn, code: str) -> None:
    """A pending consume is decided (control API): approved ("00") or refused."""
    txn.result = code
    txn.finished_at = utcnow()
    notify(sandbox, txn)


def _query(sandbox: UnionPaySandbox, fields: dict[str, str]) -> Response:
    txn = sandbox.txns.get((fields["orderId"], fields["txnTime"]))
    if txn is None:
        raise Refusal(u.NOT_FOUND)
    extra = {
        "origRespCode": txn.result,
        "origRespMsg": u.MESSAGES.get(txn.result, txn.result),
        "queryId": txn.query_id,
        "txnAmt": str(txn.amount_fen),
        "currencyCode": u.CURRENCY,
        "traceNo": txn.trace_no,
        "traceTime": txn.created_at.astimezone(u.BEIJING).strftime("%m%d%H%M%S"),
        "accNo": txn.card,
        "origQryId": txn.orig_query_id,
    }
    if txn.result == u.OK:
        extra["settleDate"] = txn.settle_date
        extra["settleAmt"] = str(txn.amount_fen)
        extra["settleCurrencyCode"] = u.CURRENCY
    # the answer describes the original transaction: its own type, not the query's
    body = {
        **fields,
        "txnType": txn.txn_type,
        "txnSubType": txn.txn_sub_type,
        "bizType": u.BIZ_GATEWAY,
    }
    return answer(sandbox, body, u.OK, **extra)


def settle_day(mmdd: str) -> date:
    """The latest date with this MMDD that is not in the future (Beijing)."""
    today = utcnow().astimezone(u.BEIJING).date()
    for year in (today.year, today.year - 1):
        try:
            day = date(year, int(mmdd[:2]), int(mmdd[2:]))
        except ValueError:
            continue
        if day <= today:
            return day
    raise Refusal(u.FORMAT_ERROR, "settleDate 不正确")


def records(sandbox: UnionPaySandbox, day: date) -> list[u.ZmRecord]:
    out = []
    mmdd = day.strftime("%m%d")
    for txn in sandbox.txns.values():
        if txn.result != u.OK or txn.settle_date != mmdd or txn.finished_at is None:
            continue
        if txn.finished_at.astimezone(u.BEIJING).date() != day:
            continue
        sign = 1 if txn.txn_type == u.CONSUME else -1
        fee = (txn.amount_fen * FEE_RATE_BP + 5_000) // 10_000  # returned on refunds
        original = sandbox.by_query_id(txn.orig_query_id) if txn.orig_query_id else None
        out.append(
            u.ZmRecord(
                txn_type=txn.txn_type,
                query_id=txn.query_id,
                order_id=txn.order_id,
                txn_time=txn.txn_time[4:],
                amount_fen=txn.amount_fen,
                fee_fen=-fee * sign,
                settle_fen=txn.amount_fen * sign,
                card=txn.card,
                trace_no=txn.trace_no,
                mer_id=sandbox.mer_id,
                orig_query_id=txn.orig_query_id,
                orig_order_id=original.order_id if original else "",
            )
        )
    return out


def _file(sandbox: UnionPaySandbox, fields: dict[str, str]) -> Response:
    if fields["fileType"] != "00":
        raise Refusal(u.FORMAT_ERROR, "fileType 不支持")
    mmdd = fields["settleDate"]
    if len(mmdd) != 4 or not mmdd.isdigit():
        raise Refusal(u.FORMAT_ERROR, "settleDate 格式为 MMDD")
    day = settle_day(mmdd)
    rows = records(sandbox, day)
    if not rows:
        raise Refusal(u.FILE_NOT_FOUND)
    name, archive = u.build_archive(sandbox.mer_id, day, rows)
    return answer(
        sandbox,
        fields,
        u.OK,
        settleDate=mmdd,
        fileType="00",
        fileName=name,
        fileContent=u.encode_file_content(archive),
    )


@router.post("/gateway/api/backTransReq.do")
async def back_trans(request: Request) -> Response:
    return await _handle(request, "backTransReq.do")


@router.post("/gateway/api/queryTrans.do")
async def query_trans(request: Request) -> Response:
    return await _handle(request, "queryTrans.do")


@router.post("/gateway/api/fileTransReq.do")
async def file_trans(request: Request) -> Response:
    return await _handle(request, "fileTransReq.do")


# --- notifications -----------------------------------------------------------------------


def notification_fields(sandbox: UnionPaySandbox, txn: Txn) -> dict[str, str]:
    fields = {
        "version": u.VERSION,
        "encoding": u.ENCODING,
        "signMethod": u.SIGN_METHOD,
        "certId": sandbox.sign_cert_id,
        "signPubKeyCert": sandbox.sign_cert,
        "txnType": txn.txn_type,
        "txnSubType": txn.txn_sub_type,
        "bizType": u.BIZ_GATEWAY,
        "accessType": "0",
        "merId": sandbox.mer_id,
        "orderId": txn.order_id,
        "txnTime": txn.txn_time,
        "txnAmt": str(txn.amount_fen),
        "currencyCode": u.CURRENCY,
        "queryId": txn.query_id,
        "respCode": txn.result,
        "respMsg": u.MESSAGES.get(txn.result, txn.result),
        "traceNo": txn.trace_no,
        "traceTime": txn.created_at.astimezone(u.BEIJING).strftime("%m%d%H%M%S"),
        "accNo": txn.card,
    }
    if txn.orig_query_id:
        fields["origQryId"] = txn.orig_query_id
    if txn.result == u.OK:
        fields.update(
            settleDate=txn.settle_date, settleAmt=str(txn.amount_fen), settleCurrencyCode=u.CURRENCY
        )
    return fields


def notify(sandbox: UnionPaySandbox, txn: Txn) -> None:
    if not txn.back_url:
        return
    fields = u.sign(notification_fields(sandbox, txn), sandbox.sign_key)
    mode = sandbox.notify_modes.pop(0) if sandbox.notify_modes else {}
    kind = str(mode.get("mode", ""))
    if kind == "bad_signature":
        first = "B" if fields["signature"][0] == "A" else "A"
        fields["signature"] = first + fields["signature"][1:]
    label = {"orderId": txn.order_id, "txnType": txn.txn_type, "respCode": txn.result, "mode": kind}
    sandbox.notifier.send_scripted(
        sandbox.held,
        mode,
        txn.back_url,
        urlencode(fields).encode(),
        "application/x-www-form-urlencoded; charset=UTF-8",
        kind="backUrl",
        label=label,
    )

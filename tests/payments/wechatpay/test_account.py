"""`WechatPayAccount` against our WeChat Pay sandbox served over real HTTP: every operation,
every fixed test payment code, and every way an answer or a callback must not be believed."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta

import httpx
import pytest

from selfmart.kit.time import utcnow
from selfmart.payments.platform import (
    NotificationRejected,
    PayRequest,
    PlatformError,
    RefundSpec,
    open_account,
)
from selfmart.payments.wechatpay import protocol as wxp
from selfmart.payments.wechatpay.account import WechatPayAccount
from selfmart.sandbox.wechatpay.keys import load, new_rsa
from tests.payments.wechatpay.support import Sandbox

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def no() -> str:
    return "T" + uuid.uuid4().hex[:20]


def code(sb: Sandbox, outcome: str) -> str:
    return str(sb.credentials()["test_auth_codes"][outcome])


def pay_code(sb: Sandbox, outcome: str, amount: int = 350) -> PayRequest:
    return PayRequest(
        out_trade_no=no(), amount_fen=amount, description="可乐 x1", mode="code",
        auth_code=code(sb, outcome), store_ref="S001",
    )  # fmt: skip


# -- payments -----------------------------------------------------------------------------------


async def test_the_account_is_registered_for_the_wechat_channel(wx: Sandbox) -> None:
    account = open_account(wx.config())
    assert isinstance(account, WechatPayAccount)
    assert account.code == "wechat"


async def test_payment_code_success_is_paid_at_once(wx: Sandbox) -> None:
    account = wx.account()
    request = pay_code(wx, "success")
    paid = await account.pay(request)
    assert paid.status == "succeeded"
    assert paid.amount_fen == 350
    assert paid.channel_txn_id
    assert paid.channel_txn_id.startswith("4200")
    assert paid.paid_at is not None
    assert paid.paid_at.utcoffset() == timedelta(0)
    assert abs(paid.paid_at - utcnow()) < timedelta(seconds=30)
    queried = await account.query(request.out_trade_no)
    assert (queried.status, queried.channel_txn_id) == ("succeeded", paid.channel_txn_id)


async def test_payment_code_user_paying_is_pending_until_the_customer_acts(wx: Sandbox) -> None:
    account = wx.account()
    request = pay_code(wx, "user_paying")
    first = await account.pay(request)
    assert (first.status, first.channel_txn_id) == ("pending", None)
    assert first.raw["response"]["status"] == 202
    assert first.raw["response"]["body"]["code"] == "USERPAYING"
    assert (await account.query(request.out_trade_no)).status == "pending"
    approved = wx.control("POST", f"/payments/{request.out_trade_no}/approve")
    assert approved.status_code == 200
    assert (await account.query(request.out_trade_no)).status == "succeeded"


async def test_payment_code_user_paying_then_declined_fails(wx: Sandbox) -> None:
    account = wx.account()
    request = pay_code(wx, "user_paying")
    assert (await account.pay(request)).status == "pending"
    assert wx.control("POST", f"/payments/{request.out_trade_no}/decline").status_code == 200
    queried = await account.query(request.out_trade_no)
    assert (queried.status, queried.failure_code) == ("failed", "PAYERROR")


@pytest.mark.parametrize(
    ("outcome", "failure_code"), [("declined", "TRADE_ERROR"), ("insufficient_funds", "NOT_ENOUGH")]
)
async def test_payment_code_refusals_fail_with_the_platform_code(
    wx: Sandbox, outcome: str, failure_code: str
) -> None:
    account = wx.account()
    request = pay_code(wx, outcome)
    refused = await account.pay(request)
    assert refused.status == "failed"
    assert refused.failure_code == failure_code
    assert refused.failure_reason
    assert refused.raw["response"]["status"] == 403
    queried = await account.query(request.out_trade_no)
    assert (queried.status, queried.failure_code) == ("failed", "PAYERROR")


async def test_payment_code_timeout_is_a_platform_error_and_the_query_finds_it_paid(
    wx: Sandbox,
) -> None:
    account = wx.account(timeout=0.5)
    request = pay_code(wx, "timeout")
    with pytest.raises(PlatformError) as caught:
        await account.pay(request)
    assert caught.value.code == "timeout"
    assert (await account.query(request.out_trade_no)).status == "succeeded"


async def test_a_second_pay_of_a_paid_number_answers_from_the_query(wx: Sandbox) -> None:
    account = wx.account()
    request = pay_code(wx, "success")
    first = await account.pay(request)
    again = await account.pay(request)
    assert again.status == "succeeded"
    assert again.channel_txn_id == first.channel_txn_id


async def test_qr_payment_is_pending_with_the_code_url_then_paid_with_a_callback(
    wx: Sandbox,
) -> None:
    account = wx.account()
    request = PayRequest(out_trade_no=no(), amount_fen=1280, description="面包", mode="qr")
    started = await account.pay(request)
    assert started.status == "pending"
    assert started.pay_url
    assert started.pay_url.startswith("weixin://wxpay/bizpayurl?pr=")
    assert started.raw["request"]["body"]["notify_url"] == f"{wx.receiver.url}/notify/pay"
    assert wx.control("POST", f"/payments/{request.out_trade_no}/approve").status_code == 200
    [callback] = wx.receiver.wait_for("/notify/pay")
    note = account.parse_notification(callback.headers, callback.body)
    assert note.kind == "payment"
    assert (note.status, note.amount_fen, note.out_trade_no) == (
        "succeeded",
        1280,
        request.out_trade_no,
    )
    assert note.merchant_id == wx.credentials()["merchant_id"]
    assert note.app_id == wx.credentials()["app_id"]
    assert note.transaction_id
    assert note.notification_id
    assert note.occurred_at is not None
    assert note.occurred_at.utcoffset() == timedelta(0)
    assert (await account.query(request.out_trade_no)).status == "succeeded"


async def test_h5_and_jsapi_payments_are_pending_with_where_to_pay(wx: Sandbox) -> None:
    account = wx.account()
    h5 = await account.pay(
        PayRequest(
            out_trade_no=no(), amount_fen=500, description="牛奶", mode="h5",
            client_ip="10.1.2.3", return_url="https://shop.example/o/1",
        )
    )  # fmt: skip
    assert h5.status == "pending"
    assert h5.pay_url
    assert h5.pay_url.startswith(f"{wx.base_url}/_control/pay?prepay_id=wx")
    assert h5.pay_url.endswith("&redirect_url=https%3A%2F%2Fshop.example%2Fo%2F1")
    async with httpx.AsyncClient() as client:
        page = await client.get(h5.pay_url)
    assert page.status_code == 200
    assert "牛奶" in page.text
    jsapi = await account.pay(
        PayRequest(
            out_trade_no=no(), amount_fen=500, description="牛奶", mode="jsapi", payer_id="oUser1"
        )
    )
    assert jsapi.status == "pending"
    assert jsapi.pay_url
    assert jsapi.pay_url.startswith("wx")


async def test_close_and_reverse(wx: Sandbox) -> None:
    account = wx.account()
    qr = PayRequest(out_trade_no=no(), amount_fen=100, description="x", mode="qr")
    await account.pay(qr)
    closed = await account.close(qr.out_trade_no)
    assert (closed.status, closed.failure_code) == ("failed", "CLOSED")
    queried = await account.query(qr.out_trade_no)
    assert (queried.status, queried.failure_code) == ("failed", "CLOSED")
    # a closed payment can no longer be paid
    refused = wx.control("POST", f"/payments/{qr.out_trade_no}/approve")
    assert refused.status_code == 409

    paid = pay_code(wx, "success")
    await account.pay(paid)
    reversed_ = await account.reverse(paid.out_trade_no)
    assert (reversed_.status, reversed_.failure_code) == ("failed", "REVOKED")
    queried = await account.query(paid.out_trade_no)
    assert (queried.status, queried.failure_code) == ("failed", "REVOKED")


async def test_closing_a_paid_payment_answers_paid(wx: Sandbox) -> None:
    account = wx.account()
    request = pay_code(wx, "success")
    await account.pay(request)
    answer = await account.close(request.out_trade_no)
    assert answer.status == "succeeded"


async def test_query_of_an_unknown_payment_is_failed_order_not_exist(wx: Sandbox) -> None:
    queried = await wx.account().query(no())
    assert (queried.status, queried.failure_code) == ("failed", "ORDER_NOT_EXIST")
    assert queried.raw["response"]["status"] == 404


# -- refunds ------------------------------------------------------------------------------------


async def test_refund_is_pending_then_succeeds_with_a_callback(wx: Sandbox) -> None:
    account = wx.account()
    request = pay_code(wx, "success", amount=1000)
    paid = await account.pay(request)
    spec = RefundSpec(
        out_trade_no=request.out_trade_no, out_refund_no="R" + no(), total_fen=1000,
        amount_fen=300, reason="少找零", notify_url=f"{wx.receiver.url}/notify/refund",
        transaction_id=paid.channel_txn_id,
    )  # fmt: skip
    started = await account.refund(spec)
    assert started.status == "pending"
    assert started.channel_refund_id
    [callback] = wx.receiver.wait_for("/notify/refund")
    note = account.parse_notification(callback.headers, callback.body)
    assert note.kind == "refund"
    assert (note.status, note.amount_fen) == ("succeeded", 300)
    assert (note.out_refund_no, note.refund_id) == (spec.out_refund_no, started.channel_refund_id)
    done = await account.query_refund(spec.out_trade_no, spec.out_refund_no)
    assert done.status == "succeeded"
    assert done.completed_at is not None
    # the payment itself stays paid (trade_state REFUND)
    assert (await account.query(request.out_trade_no)).status == "succeeded"


async def test_refund_refusals_are_failed_answers(wx: Sandbox) -> None:
    account = wx.account()
    request = pay_code(wx, "success", amount=1000)
    await account.pay(request)
    too_much = await account.refund(
        RefundSpec(request.out_trade_no, "R" + no(), total_fen=1000, amount_fen=1001)
    )
    assert (too_much.status, too_much.failure_code) == ("failed", "INVALID_REQUEST")
    wx.control("POST", "/next", json={"action": "decline", "path_prefix": "/v3/refund/"})
    declined = await account.refund(
        RefundSpec(request.out_trade_no, "R" + no(), total_fen=1000, amount_fen=100)
    )
    assert (declined.status, declined.failure_code) == ("failed", "NOT_ENOUGH")
    unknown = await account.query_refund(request.out_trade_no, "R" + no())
    assert (unknown.status, unknown.failure_code) == ("failed", "RESOURCE_NOT_EXISTS")


# -- bills --------------------------------------------------------------------------------------


async def test_download_the_days_trade_and_fundflow_bills(wx: Sandbox) -> None:
    account = wx.account()
    request = pay_code(wx, "success", amount=1234)
    paid = await account.pay(request)
    today = utcnow().astimezone(wxp.CST).date()
    data = await account.download_bill(today)
    assert data is not None
    bill = wxp.parse_bill(data)
    assert bill.header == wxp.TRADE_BILL_HEADER
    [row] = [r for r in bill.records() if r["商户订单号"] == request.out_trade_no]
    assert (row["微信订单号"], row["订单金额"], row["交易状态"]) == (
        paid.channel_txn_id,
        "12.34",
        "SUCCESS",
    )
    assert bill.summary()["总交易单数"] == "1"
    assert bill.summary()["订单总金额"] == "12.34"
    fundflow = await account.download_bill(today, "fundflow")
    assert fundflow is not None
    flows = wxp.parse_bill(fundflow)
    assert flows.header == wxp.FUNDFLOW_BILL_HEADER
    assert flows.summary()["收入金额"] == "12.34"


async def test_the_bill_is_written_to_a_file_as_it_arrives_and_checked_there(
    wx: Sandbox,
) -> None:
    account = wx.account()
    await account.pay(pay_code(wx, "success", amount=1234))
    today = utcnow().astimezone(wxp.CST).date()
    file = io.BytesIO()
    assert await account.download_bill_to(today, file) is True
    assert file.getvalue() == await account.download_bill(today)
    assert wxp.parse_bill(file.getvalue()).summary()["订单总金额"] == "12.34"
    assert await account.download_bill_to(date(2020, 1, 1), io.BytesIO()) is False

    def on_the_file(change: Callable[[bytes], bytes]) -> WechatPayAccount:
        def edit(response: httpx.Response, body: bytes) -> tuple[dict[str, str], bytes]:
            if not body.startswith(b"\x1f\x8b"):  # not the gzip file: an API answer
                return _headers(response), body
            return _headers(response), change(body)

        return tampered(wx, edit)

    # Another bill, well compressed: its hash is not the one the signed answer gave.
    other = on_the_file(
        lambda body: gzip.compress(gzip.decompress(body).replace(b"12.34", b"12.35"))
    )
    # The file cut short: what arrived decompresses, but the gzip stream does not end.
    short = on_the_file(lambda body: body[: len(body) - 12])
    for account, says in ((other, "does not match its hash_value"), (short, "ends short")):
        with pytest.raises(PlatformError, match=says) as caught:
            await account.download_bill_to(today, io.BytesIO())
        assert caught.value.code == "bad_answer"


async def test_a_day_without_a_bill_is_none(wx: Sandbox) -> None:
    assert await wx.account().download_bill(date(2020, 1, 1)) is None


# -- answers that must not be believed ----------------------------------------------------------


class Tamper(httpx.AsyncBaseTransport):
    """A man in the middle between our account and the sandbox."""

    def __init__(self, change: Callable[[httpx.Response, bytes], tuple[dict[str, str], bytes]]):
        self._inner = httpx.AsyncHTTPTransport()
        self._change = change

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        body = await response.aread()
        headers, body = self._change(response, body)
        return httpx.Response(response.status_code, headers=headers, content=body)


def tampered(
    sb: Sandbox, change: Callable[[httpx.Response, bytes], tuple[dict[str, str], bytes]]
) -> WechatPayAccount:
    return WechatPayAccount(sb.config(), http=httpx.AsyncClient(transport=Tamper(change)))


def _headers(response: httpx.Response, *, signed: bool = True) -> dict[str, str]:
    return {
        k: v
        for k, v in response.headers.items()
        if k.lower() != "content-length" and (signed or not k.lower().startswith("wechatpay-"))
    }


async def test_a_tampered_answer_is_a_platform_error(wx: Sandbox) -> None:
    def change(response: httpx.Response, body: bytes) -> tuple[dict[str, str], bytes]:
        return _headers(response), body.replace(b'"SUCCESS"', b'"NOTPAY"')

    with pytest.raises(PlatformError) as caught:
        await tampered(wx, change).pay(pay_code(wx, "success"))
    assert caught.value.code == "bad_signature"


async def test_an_unsigned_answer_is_a_platform_error(wx: Sandbox) -> None:
    def change(response: httpx.Response, body: bytes) -> tuple[dict[str, str], bytes]:
        headers = {
            k: v for k, v in _headers(response).items() if k.lower() != "wechatpay-signature"
        }
        return headers, body

    with pytest.raises(PlatformError) as caught:
        await tampered(wx, change).query(no())
    assert caught.value.code == "bad_signature"


async def test_a_stale_but_well_signed_answer_is_a_platform_error(wx: Sandbox) -> None:
    keys = load(wx.settings.payment_sandbox_dir)

    def change(response: httpx.Response, body: bytes) -> tuple[dict[str, str], bytes]:
        old = str(int(time.time()) - 600)
        headers = _headers(response, signed=False)
        headers.update(
            wxp.response_headers(
                keys.public_key.key, keys.public_key.key_id, body, timestamp=old, nonce="n"
            )
        )
        return headers, body

    with pytest.raises(PlatformError) as caught:
        await tampered(wx, change).query(no())
    assert caught.value.code == "stale"


async def test_an_answer_from_an_unknown_key_or_the_wrong_key_is_a_platform_error(
    wx: Sandbox,
) -> None:
    creds = wx.credentials()
    stranger = wxp.public_key_pem(new_rsa().public_key())
    unknown = wx.account(platform_public_keys={"PUB_KEY_ID_0199": creds["platform_public_key"]})
    with pytest.raises(PlatformError) as caught:
        await unknown.query(no())
    assert caught.value.code == "unknown_key"
    wrong = wx.account(platform_public_keys={creds["platform_public_key_id"]: stranger})
    with pytest.raises(PlatformError) as caught:
        await wrong.query(no())
    assert caught.value.code == "bad_signature"


async def test_5xx_and_unreachable_are_platform_errors(wx: Sandbox) -> None:
    account = wx.account()
    wx.control("POST", "/next", json={"action": "error_500"})
    with pytest.raises(PlatformError) as caught:
        await account.pay(pay_code(wx, "success"))
    assert caught.value.code == "platform_error"
    gone = wx.account(base_url="http://127.0.0.1:9/sandbox/wechatpay")
    with pytest.raises(PlatformError):
        await gone.query(no())


async def test_the_platform_certificate_mode_verifies_with_the_certificate(wx: Sandbox) -> None:
    creds = wx.credentials()
    account = wx.account(
        platform_public_keys={creds["platform_certificate_serial"]: creds["platform_certificate"]}
    )
    paid = await account.pay(pay_code(wx, "success"))
    assert paid.status == "succeeded"
    # no public key named: the platform signed with its certificate
    [last] = wx.control("GET", "/received").json()["requests"][-1:]
    assert last["url"] == "/v3/pay/transactions/codepay"


async def test_two_keys_during_a_rotation(wx: Sandbox) -> None:
    creds = wx.credentials()
    old_only = wx.account()
    assert (await old_only.query(no())).failure_code == "ORDER_NOT_EXIST"
    rotated = wx.control("POST", "/rotate").json()
    both = wx.account(
        platform_public_keys={
            creds["platform_public_key_id"]: creds["platform_public_key"],
            rotated["platform_public_key_id"]: rotated["platform_public_key"],
        }
    )
    assert (await both.query(no())).failure_code == "ORDER_NOT_EXIST"
    with pytest.raises(PlatformError) as caught:
        await old_only.query(no())
    assert caught.value.code == "unknown_key"


# -- raw records --------------------------------------------------------------------------------


async def test_raw_records_hold_no_secrets(wx: Sandbox) -> None:
    creds = wx.credentials()
    account = wx.account()
    paid = await account.pay(pay_code(wx, "success"))
    text = json.dumps(paid.raw, ensure_ascii=False)
    assert "Authorization" not in text
    assert "signature" not in text.lower()
    assert creds["api_v3_key"] not in text
    assert "PRIVATE KEY" not in text
    assert code(wx, "success") not in text
    assert paid.raw["request"]["body"]["payer"]["auth_code"].startswith("1300")


# -- callbacks ----------------------------------------------------------------------------------


async def _callback(sb: Sandbox, account: WechatPayAccount) -> tuple[dict[str, str], bytes]:
    request = PayRequest(out_trade_no=no(), amount_fen=990, description="x", mode="qr")
    await account.pay(request)
    sb.control("POST", f"/payments/{request.out_trade_no}/approve")
    [callback] = sb.receiver.wait_for("/notify/pay")
    return callback.headers, callback.body


async def test_a_tampered_callback_is_rejected(wx: Sandbox) -> None:
    account = wx.account()
    headers, body = await _callback(wx, account)
    document = json.loads(body)
    document["event_type"] = "REFUND.SUCCESS"
    with pytest.raises(NotificationRejected) as caught:
        account.parse_notification(headers, json.dumps(document).encode())
    assert caught.value.code == "bad_signature"


async def test_a_callback_signed_by_an_unknown_or_wrong_key_is_rejected(wx: Sandbox) -> None:
    account = wx.account()
    headers, body = await _callback(wx, account)
    creds = wx.credentials()
    with pytest.raises(NotificationRejected) as caught:
        wx.account(
            platform_public_keys={"PUB_KEY_ID_0100": creds["platform_public_key"]}
        ).parse_notification(headers, body)
    assert caught.value.code == "unknown_key"
    stranger = wxp.public_key_pem(new_rsa().public_key())
    with pytest.raises(NotificationRejected) as caught:
        wx.account(
            platform_public_keys={creds["platform_public_key_id"]: stranger}
        ).parse_notification(headers, body)
    assert caught.value.code == "bad_signature"


async def test_a_replayed_stale_callback_is_rejected(wx: Sandbox) -> None:
    account = wx.account()
    headers, body = await _callback(wx, account)
    keys = load(wx.settings.payment_sandbox_dir)
    old = str(int(time.time()) - 301)
    replay = {
        **headers,
        **wxp.response_headers(
            keys.public_key.key, keys.public_key.key_id, body, timestamp=old, nonce="n"
        ),
    }
    with pytest.raises(NotificationRejected) as caught:
        account.parse_notification(replay, body)
    assert caught.value.code == "stale"


async def test_a_callback_encrypted_with_another_apiv3_key_is_rejected(wx: Sandbox) -> None:
    account = wx.account()
    headers, body = await _callback(wx, account)
    other = wx.account(api_v3_key="f" * 32)
    with pytest.raises(NotificationRejected) as caught:
        other.parse_notification(headers, body)
    assert caught.value.code == "undecryptable"


async def test_answer_notification(wx: Sandbox) -> None:
    account = wx.account()
    ok = account.answer_notification(True)
    assert (ok.status_code, ok.body) == (204, b"")
    failed = account.answer_notification(False, "amount mismatch")
    assert 400 <= failed.status_code < 500  # not received: called again; not our fault
    assert json.loads(failed.body) == {"code": "FAIL", "message": "amount mismatch"}


async def test_callback_headers_in_any_case_as_a_web_framework_gives_them(wx: Sandbox) -> None:
    account = wx.account()
    headers, body = await _callback(wx, account)
    lowered = {k.lower(): v for k, v in headers.items()}
    assert account.parse_notification(lowered, body).status == "succeeded"


async def test_an_unpaid_qr_payment_past_its_expiry_is_closed(wx: Sandbox) -> None:
    account = wx.account()
    request = PayRequest(
        out_trade_no=no(), amount_fen=100, description="x", mode="qr",
        expires_at=utcnow() + timedelta(seconds=1),
    )  # fmt: skip
    started = await account.pay(request)
    assert wxp.parse_rfc3339(started.raw["request"]["body"]["time_expire"]) > utcnow()
    assert (await account.query(request.out_trade_no)).status == "pending"
    await asyncio.sleep(1.2)
    closed = await account.query(request.out_trade_no)
    assert (closed.status, closed.failure_code) == ("failed", "CLOSED")

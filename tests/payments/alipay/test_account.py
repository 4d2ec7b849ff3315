"""Our AlipayAccount against our Alipay sandbox (in process): every operation, every fixed test
auth code, the controls, notifications and the bill."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from fastapi import FastAPI

from selfmart.kit.time import utcnow
from selfmart.payments.alipay import AlipayAccount
from selfmart.payments.alipay import protocol as p
from selfmart.payments.platform import (
    ChannelConfig,
    NotificationRejected,
    PayRequest,
    PlatformError,
    RefundSpec,
    open_account,
)
from selfmart.sandbox import alipay as sandbox_module
from selfmart.sandbox.alipay.state import sandbox_for

from .support import Receiver, sandbox_app, wait_for

BASE = "http://testserver/sandbox/alipay"
NOTIFY = "http://merchant.test/alipay/notify"


@pytest.fixture(scope="module")
def keydir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("alipay-sandbox")


@pytest.fixture(scope="module")
def app(keydir: Path) -> FastAPI:
    return sandbox_app(keydir, time_scale=1_000_000)


@pytest.fixture(scope="module")
def creds(app: FastAPI) -> dict[str, Any]:
    return sandbox_module.credentials(app.state.settings)


@pytest.fixture
def receiver(app: FastAPI) -> Receiver:
    receiver = Receiver()
    sandbox_for(app.state.settings).notifier.transport = httpx.ASGITransport(app=receiver.app)
    return receiver


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def config(creds: dict[str, Any], **changes: Any) -> ChannelConfig:
    values: dict[str, Any] = {
        "channel": "alipay",
        "account_id": 1,
        "base_url": BASE,
        "merchant_id": creds["merchant_id"],
        "app_id": creds["app_id"],
        "private_key_pem": creds["merchant_private_key"],
        "private_key_id": "",
        "platform_public_keys": {"": creds["platform_public_key"]},
        "notify_url": NOTIFY,
    }
    values.update(changes)
    return ChannelConfig(**values)


@pytest.fixture
def account(creds: dict[str, Any], http: httpx.AsyncClient) -> AlipayAccount:
    opened = open_account(config(creds), http=http)
    assert isinstance(opened, AlipayAccount)
    return opened


_n = 0


def out_no(prefix: str = "SM") -> str:
    global _n
    _n += 1
    return f"{prefix}{utcnow():%H%M%S%f}{_n:04d}"


def code_pay(no: str, auth_code: str, fen: int = 1234) -> PayRequest:
    return PayRequest(
        out_trade_no=no, amount_fen=fen, description="可乐 x2", mode="code", auth_code=auth_code
    )


async def test_credentials_follow_the_contract(creds: dict[str, Any], keydir: Path) -> None:
    assert creds["base_url"].endswith("/sandbox/alipay")
    assert creds["merchant_key_id"] == ""
    assert creds["platform_public_key_id"] == ""
    assert set(creds["test_auth_codes"]) == {
        "success",
        "user_paying",
        "declined",
        "insufficient_funds",
        "timeout",
    }
    assert creds["merchant_private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    # generated once, kept on disk: a second sandbox on the same directory is the same merchant
    from selfmart.sandbox.alipay.state import AlipaySandbox

    again = AlipaySandbox(keydir / "alipay", 1.0)
    assert again.app_id == creds["app_id"]
    assert again.alipay_public_key == creds["platform_public_key"]


async def test_code_payment_succeeds_and_is_notified(
    account: AlipayAccount, creds: dict[str, Any], receiver: Receiver
) -> None:
    no = out_no()
    paid = await account.pay(code_pay(no, creds["test_auth_codes"]["success"]))
    assert paid.status == "succeeded"
    assert paid.amount_fen == 1234
    assert paid.channel_txn_id
    assert len(paid.channel_txn_id) == 28
    assert paid.paid_at is not None
    # secrets are not recorded: neither the signature nor the customer's payment code
    sent = paid.raw["request"]["params"]
    assert "sign" not in sent
    assert "auth_code" not in sent["biz_content"]
    assert paid.raw["response"]["payload"]["total_amount"] == "12.34"

    queried = await account.query(no)
    assert (queried.status, queried.amount_fen) == ("succeeded", 1234)
    assert queried.channel_txn_id == paid.channel_txn_id

    await wait_for(lambda: receiver.bodies("/alipay/notify"))
    note = account.parse_notification({}, receiver.bodies("/alipay/notify")[0])
    assert (note.kind, note.status, note.amount_fen) == ("payment", "succeeded", 1234)
    assert note.out_trade_no == no
    assert note.transaction_id == paid.channel_txn_id
    assert note.app_id == creds["app_id"]
    assert note.merchant_id == creds["merchant_id"]
    assert note.notification_id
    assert "sign" not in note.raw
    answer = account.answer_notification(True)
    assert (answer.status_code, answer.body) == (200, b"success")
    assert account.answer_notification(False).body == b"fail"


async def test_user_paying_then_approved(
    account: AlipayAccount, creds: dict[str, Any], http: httpx.AsyncClient
) -> None:
    no = out_no()
    waiting = await account.pay(code_pay(no, creds["test_auth_codes"]["user_paying"]))
    assert waiting.status == "pending"
    assert waiting.failure_code is None
    assert (await account.query(no)).status == "pending"
    approved = await http.post(f"/sandbox/alipay/_control/trades/{no}/approve")
    assert approved.status_code == 200, approved.text
    assert (await account.query(no)).status == "succeeded"
    # a decided trade cannot be decided again
    again = await http.post(f"/sandbox/alipay/_control/trades/{no}/decline")
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("which", "sub_code"),
    [
        ("declined", "ACQ.PAYMENT_AUTH_CODE_INVALID"),
        ("insufficient_funds", "ACQ.BUYER_BALANCE_NOT_ENOUGH"),
    ],
)
async def test_refused_codes_fail_with_the_platform_code(
    account: AlipayAccount, creds: dict[str, Any], which: str, sub_code: str
) -> None:
    result = await account.pay(code_pay(out_no(), creds["test_auth_codes"][which]))
    assert (result.status, result.failure_code) == ("failed", sub_code)
    assert result.failure_reason


async def test_a_malformed_auth_code_is_refused(account: AlipayAccount) -> None:
    result = await account.pay(code_pay(out_no(), "123"))
    assert (result.status, result.failure_code) == ("failed", "ACQ.PAYMENT_AUTH_CODE_INVALID")


async def test_timeout_code_is_unknown_then_found_paid(
    account: AlipayAccount, creds: dict[str, Any]
) -> None:
    no = out_no()
    result = await account.pay(code_pay(no, creds["test_auth_codes"]["timeout"]))
    assert (result.status, result.failure_code) == ("unknown", "ACQ.SYSTEM_ERROR")
    assert (await account.query(no)).status == "succeeded"


async def test_qr_payment_shows_a_page_and_closes(
    account: AlipayAccount, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    no = out_no()
    req = PayRequest(out_trade_no=no, amount_fen=500, description="水", mode="qr")
    started = await account.pay(req)
    assert started.status == "pending"
    assert started.pay_url
    page = await http.get(started.pay_url.replace("http://testserver", ""))
    assert page.status_code == 200
    assert "5.00" in page.text
    assert "approve" in page.text
    closed = await account.close(no)
    assert (closed.status, closed.failure_code) == ("failed", "TRADE_CLOSED")
    queried = await account.query(no)
    assert (queried.status, queried.failure_code) == ("failed", "TRADE_CLOSED")
    # closing again answers ACQ.TRADE_STATUS_ERROR, which the account reads as "what is it now"
    assert (await account.close(no)).failure_code == "TRADE_CLOSED"
    await wait_for(lambda: receiver.bodies("/alipay/notify"))
    note = account.parse_notification({}, receiver.bodies("/alipay/notify")[-1])
    assert (note.kind, note.status) == ("payment", "closed")


async def test_qr_payment_approved_on_the_page(
    account: AlipayAccount, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    no = out_no()
    await account.pay(PayRequest(out_trade_no=no, amount_fen=700, description="x", mode="qr"))
    form = await http.post(
        f"/sandbox/alipay/_control/trades/{no}/approve",
        data={"return_url": ""},
    )
    assert form.status_code == 200
    assert "TRADE_SUCCESS" in form.text
    assert (await account.query(no)).status == "succeeded"
    # paid: close says so instead of closing
    assert (await account.close(no)).status == "succeeded"
    await wait_for(lambda: receiver.bodies("/alipay/notify"))
    note = account.parse_notification({}, receiver.bodies("/alipay/notify")[-1])
    assert (note.status, note.amount_fen) == ("succeeded", 700)


async def test_phone_page_payment(account: AlipayAccount, http: httpx.AsyncClient) -> None:
    no = out_no()
    req = PayRequest(
        out_trade_no=no,
        amount_fen=1999,
        description="h5",
        mode="h5",
        return_url="https://shop.test/orders/1",
    )
    started = await account.pay(req)
    assert started.status == "pending"
    assert started.pay_url
    # nothing exists until the customer's browser opens the signed URL
    not_yet = await account.query(no)
    assert (not_yet.status, not_yet.failure_code) == ("pending", "ACQ.TRADE_NOT_EXIST")
    page = await http.get(started.pay_url.replace("http://testserver", ""))
    assert page.status_code == 200
    assert "19.99" in page.text
    decided = await http.post(
        f"/sandbox/alipay/_control/trades/{no}/approve",
        data={"return_url": "https://shop.test/orders/1"},
    )
    assert decided.status_code == 303
    assert decided.headers["location"] == "https://shop.test/orders/1"
    assert (await account.query(no)).status == "succeeded"


async def test_a_tampered_phone_page_url_is_refused(
    account: AlipayAccount, http: httpx.AsyncClient
) -> None:
    started = await account.pay(
        PayRequest(out_trade_no=out_no(), amount_fen=100, description="h5", mode="h5")
    )
    assert started.pay_url
    tampered = started.pay_url.replace("http://testserver", "").replace("1.00", "0.01")
    page = await http.get(tampered)
    assert "isv.invalid-signature" in page.text


async def test_reverse_refunds_a_paid_code_payment(
    account: AlipayAccount, creds: dict[str, Any]
) -> None:
    no = out_no()
    await account.pay(code_pay(no, creds["test_auth_codes"]["success"]))
    reversed_ = await account.reverse(no)
    assert (reversed_.status, reversed_.failure_code) == ("failed", "TRADE_CANCELLED")
    assert reversed_.raw["response"]["payload"]["action"] == "refund"
    assert (await account.query(no)).failure_code == "TRADE_CLOSED"
    # an unpaid one is closed
    waiting = out_no()
    await account.pay(code_pay(waiting, creds["test_auth_codes"]["user_paying"]))
    closed = await account.reverse(waiting)
    assert closed.raw["response"]["payload"]["action"] == "close"


async def test_refunds_partial_repeat_excess_and_notify(
    account: AlipayAccount, creds: dict[str, Any], receiver: Receiver
) -> None:
    no = out_no()
    paid = await account.pay(code_pay(no, creds["test_auth_codes"]["success"], fen=1000))
    spec = RefundSpec(
        out_trade_no=no, out_refund_no=no + "R1", total_fen=1000, amount_fen=300, reason="少找"
    )
    first = await account.refund(spec)
    assert (first.status, first.channel_refund_id) == ("succeeded", no + "R1")
    assert first.completed_at is not None
    # the same refund again is the same refund (fund_change N), not a second one
    again = await account.refund(spec)
    assert again.status == "succeeded"
    queried = await account.query_refund(no, no + "R1")
    assert queried.status == "succeeded"
    assert queried.raw["response"]["payload"]["refund_amount"] == "3.00"
    too_much = await account.refund(
        RefundSpec(
            out_trade_no=no,
            out_refund_no=no + "R2",
            total_fen=1000,
            amount_fen=701,
            transaction_id=paid.channel_txn_id,
        )
    )
    assert (too_much.status, too_much.failure_code) == ("failed", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")
    missing = await account.query_refund(no, no + "R9")
    assert (missing.status, missing.failure_code) == ("failed", "REFUND_NOT_EXIST")

    rest = await account.refund(
        RefundSpec(out_trade_no=no, out_refund_no=no + "R3", total_fen=1000, amount_fen=700)
    )
    assert rest.status == "succeeded"
    await wait_for(lambda: len(receiver.bodies("/alipay/notify")) >= 3)
    notes = [account.parse_notification({}, b) for b in receiver.bodies("/alipay/notify")]
    refunds = [n for n in notes if n.kind == "refund"]
    assert [(n.out_refund_no, n.amount_fen) for n in refunds] == [
        (no + "R1", 300),
        (no + "R3", 1000),
    ]
    assert refunds[-1].raw["trade_status"] == "TRADE_CLOSED"


async def test_refund_of_an_unpaid_trade_is_refused(
    account: AlipayAccount, creds: dict[str, Any]
) -> None:
    no = out_no()
    await account.pay(code_pay(no, creds["test_auth_codes"]["user_paying"]))
    refused = await account.refund(
        RefundSpec(out_trade_no=no, out_refund_no=no + "R", total_fen=1234, amount_fen=1)
    )
    assert (refused.status, refused.failure_code) == ("failed", "ACQ.TRADE_STATUS_ERROR")


async def test_unknown_trade(account: AlipayAccount) -> None:
    result = await account.query("NOPE" + out_no())
    assert (result.status, result.failure_code) == ("pending", "ACQ.TRADE_NOT_EXIST")


async def test_bill_download_and_parse(account: AlipayAccount, creds: dict[str, Any]) -> None:
    no = out_no()
    await account.pay(code_pay(no, creds["test_auth_codes"]["success"], fen=2599))
    await account.refund(
        RefundSpec(out_trade_no=no, out_refund_no=no + "R", total_fen=2599, amount_fen=599)
    )
    today = utcnow().astimezone(p.BEIJING).date()
    archive = await account.download_bill(today)
    assert archive is not None
    bill = p.parse_bill(archive)
    assert bill.account == creds["merchant_id"] + "0156"
    assert bill.day == today
    mine = [r for r in bill.rows if r.out_trade_no == no]
    assert [(r.kind, r.amount_fen) for r in mine] == [("交易", 2599), ("退款", -599)]
    assert mine[1].refund_no == no + "R"
    assert bill.summary is not None
    assert bill.summary.amount_fen == sum(r.amount_fen for r in bill.rows)
    assert bill.summary.trade_count == sum(1 for r in bill.rows if r.kind == "交易")
    # no bill for a day with no business (and none for tomorrow)
    assert await account.download_bill(today - timedelta(days=400)) is None
    assert await account.download_bill(today + timedelta(days=1)) is None


async def test_an_answer_signed_with_another_key_is_not_believed(
    creds: dict[str, Any], http: httpx.AsyncClient
) -> None:
    _private, other_public = p.generate_key_pair()
    wrong = AlipayAccount(config(creds, platform_public_keys={"": other_public}), http=http)
    with pytest.raises(PlatformError) as caught:
        await wrong.query("ANY" + out_no())
    assert caught.value.code == "bad_signature"


async def test_a_request_signed_with_the_wrong_key_is_refused(
    creds: dict[str, Any], http: httpx.AsyncClient
) -> None:
    other_private, _public = p.generate_key_pair()
    wrong = AlipayAccount(config(creds, private_key_pem=other_private), http=http)
    with pytest.raises(PlatformError) as caught:
        await wrong.query("ANY" + out_no())
    assert caught.value.code == "isv.invalid-signature"
    stranger = AlipayAccount(config(creds, app_id="2021000000000000"), http=http)
    with pytest.raises(PlatformError) as caught:
        await stranger.query("ANY" + out_no())
    assert caught.value.code == "isv.invalid-app-id"


async def test_controls_make_the_next_call_fail(
    account: AlipayAccount, creds: dict[str, Any], http: httpx.AsyncClient
) -> None:
    success = creds["test_auth_codes"]["success"]
    await http.post("/sandbox/alipay/_control/next", json={"action": "error"})
    with pytest.raises(PlatformError):
        await account.pay(code_pay(out_no(), success))

    await http.post(
        "/sandbox/alipay/_control/next",
        json={
            "action": "decline",
            "method": "alipay.trade.pay",
            "sub_code": "ACQ.BUYER_BALANCE_NOT_ENOUGH",
        },
    )
    # the query is not the method named, so it goes through
    await account.query("ANY" + out_no())
    declined = await account.pay(code_pay(out_no(), success))
    assert (declined.status, declined.failure_code) == ("failed", "ACQ.BUYER_BALANCE_NOT_ENOUGH")

    await http.post("/sandbox/alipay/_control/next", json={"action": "user_paying"})
    no = out_no()
    assert (await account.pay(code_pay(no, success))).status == "pending"

    await http.post("/sandbox/alipay/_control/next", json={"action": "system_error"})
    assert (await account.query(no)).status == "unknown"

    listed = await http.get(
        "/sandbox/alipay/_control/requests", params={"method": "alipay.trade.pay"}
    )
    assert listed.status_code == 200
    assert listed.json()


async def test_bad_requests_get_the_gateways_answers(http: httpx.AsyncClient) -> None:
    unknown = await http.post("/sandbox/alipay/gateway.do", data={"method": "alipay.nope"})
    assert unknown.json()["error_response"]["sub_code"] == "isv.invalid-method"
    missing = await http.post("/sandbox/alipay/gateway.do", data={"method": "alipay.trade.query"})
    body = missing.json()
    assert body["alipay_trade_query_response"]["code"] == "40001"
    assert "sign" not in body


# --- notifications -------------------------------------------------------------------------


def _notification(creds: dict[str, Any], **changes: str) -> dict[str, str]:
    params = {
        "notify_time": p.format_time(utcnow()),
        "notify_type": "trade_status_sync",
        "notify_id": "n1",
        "app_id": creds["app_id"],
        "charset": "utf-8",
        "version": "1.0",
        "trade_no": "2026120622001400000000000001",
        "out_trade_no": "SM1",
        "seller_id": creds["merchant_id"],
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "12.34",
        "gmt_payment": p.format_time(utcnow()),
    }
    params.update(changes)
    return params


def _signed(creds: dict[str, Any], key: str | None = None, **changes: str) -> bytes:
    sandbox_key = sandbox_for_creds(creds)
    params = p.sign_notification(_notification(creds, **changes), key or sandbox_key)
    return urlencode(params).encode()


def sandbox_for_creds(creds: dict[str, Any]) -> str:
    # the sandbox's Alipay private key, read from its key directory
    from selfmart.sandbox.alipay.state import _SANDBOXES

    for sandbox in _SANDBOXES.values():
        if sandbox.app_id == creds["app_id"]:
            return sandbox.alipay_private_key
    raise AssertionError("sandbox not found")


async def test_notification_checks(account: AlipayAccount, creds: dict[str, Any]) -> None:
    good = _signed(creds)
    note = account.parse_notification({}, good)
    assert (note.status, note.amount_fen, note.notification_id) == ("succeeded", 1234, "n1")
    # a replay is the same notification (the caller de-duplicates on notification_id)
    assert account.parse_notification({}, good).notification_id == "n1"

    params = dict(parse_qsl(good.decode()))
    tampered = urlencode({**params, "total_amount": "0.01"}).encode()
    with pytest.raises(NotificationRejected) as caught:
        account.parse_notification({}, tampered)
    assert caught.value.code == "bad_signature"

    unsigned = urlencode({k: v for k, v in params.items() if k != "sign"}).encode()
    with pytest.raises(NotificationRejected):
        account.parse_notification({}, unsigned)

    other_private, _ = p.generate_key_pair()
    with pytest.raises(NotificationRejected) as caught:
        account.parse_notification({}, _signed(creds, key=other_private))
    assert caught.value.code == "bad_signature"

    with pytest.raises(NotificationRejected) as caught:
        account.parse_notification({}, _signed(creds, app_id="2021999999999999"))
    assert caught.value.code == "wrong_merchant"

    stale = p.format_time(utcnow() - timedelta(hours=27))
    with pytest.raises(NotificationRejected) as caught:
        account.parse_notification({}, _signed(creds, notify_time=stale))
    assert caught.value.code == "stale"

    with pytest.raises(NotificationRejected) as caught:
        account.parse_notification({}, _signed(creds, total_amount="12.345"))
    assert caught.value.code == "malformed"
    with pytest.raises(NotificationRejected):
        account.parse_notification({}, b"\xff\xfe")
    # sign_type is not signed: changing it (to what it is) keeps the signature good, while
    # any signed field breaks it
    waiting = account.parse_notification({}, _signed(creds, trade_status="WAIT_BUYER_PAY"))
    assert waiting.status == "pending"
    finished = account.parse_notification({}, _signed(creds, trade_status="TRADE_FINISHED"))
    assert finished.status == "succeeded"


async def test_time_expire_closes_unpaid_trades(
    account: AlipayAccount, http: httpx.AsyncClient
) -> None:
    # a phone-page URL opened after its time_expire creates nothing
    late = await account.pay(
        PayRequest(
            out_trade_no=out_no(),
            amount_fen=100,
            description="h5",
            mode="h5",
            expires_at=utcnow() - timedelta(seconds=1),
        )
    )
    assert late.pay_url
    page = await http.get(late.pay_url.replace("http://testserver", ""))
    assert page.status_code == 400
    assert "ACQ.TRADE_HAS_CLOSE" in page.text
    # a QR trade left unpaid past its time_expire is closed, and cannot be approved
    no = out_no()
    started = await account.pay(
        PayRequest(
            out_trade_no=no,
            amount_fen=100,
            description="qr",
            mode="qr",
            # Alipay's times are whole seconds: 2 s leaves at least one before it expires
            expires_at=utcnow() + timedelta(seconds=2),
        )
    )
    assert started.status == "pending"
    await asyncio.sleep(2.05)
    closed = await account.query(no)
    assert (closed.status, closed.failure_code) == ("failed", "TRADE_CLOSED")
    assert closed.failure_reason == "closed before it was paid"
    assert (await http.post(f"/sandbox/alipay/_control/trades/{no}/approve")).status_code == 409


async def test_a_trade_refunded_in_full_says_it_was_paid(
    account: AlipayAccount, creds: dict[str, Any]
) -> None:
    no = out_no()
    await account.pay(code_pay(no, creds["test_auth_codes"]["success"], fen=500))
    await account.refund(
        RefundSpec(out_trade_no=no, out_refund_no=no + "R", total_fen=500, amount_fen=500)
    )
    queried = await account.query(no)
    assert (queried.status, queried.failure_code) == ("failed", "TRADE_CLOSED")
    assert queried.failure_reason == "closed after it was paid and refunded in full"
    assert queried.paid_at is not None


def test_a_malformed_amount_in_an_answer_is_unreadable() -> None:
    from selfmart.payments.alipay.account import _Answer

    answer = _Answer(p.GatewayAnswer({"code": "10000", "total_amount": "1.234"}, True, ""), {})
    with pytest.raises(PlatformError, match="total_amount"):
        answer.fen("total_amount")
    assert _Answer(p.GatewayAnswer({}, True, ""), {}).fen("total_amount") == 0


async def test_a_finished_trade_is_paid_and_takes_no_refund(
    account: AlipayAccount, creds: dict[str, Any], http: httpx.AsyncClient, receiver: Receiver
) -> None:
    no = out_no()
    await account.pay(code_pay(no, creds["test_auth_codes"]["success"], fen=300))
    finished = await http.post(f"/sandbox/alipay/_control/trades/{no}/finish")
    assert finished.json()["trade_status"] == "TRADE_FINISHED"
    assert (await account.query(no)).status == "succeeded"
    refused = await account.refund(
        RefundSpec(out_trade_no=no, out_refund_no=no + "R", total_fen=300, amount_fen=1)
    )
    assert (refused.status, refused.failure_code) == ("failed", "ACQ.TRADE_HAS_FINISHED")
    await wait_for(lambda: len(receiver.bodies("/alipay/notify")) >= 2)
    last = account.parse_notification({}, receiver.bodies("/alipay/notify")[-1])
    assert (last.status, last.raw["trade_status"]) == ("succeeded", "TRADE_FINISHED")
    assert (await http.post(f"/sandbox/alipay/_control/trades/{no}/finish")).status_code == 409


async def test_a_resent_payment_that_went_through_is_paid(
    account: AlipayAccount, creds: dict[str, Any]
) -> None:
    no = out_no()
    first = await account.pay(code_pay(no, creds["test_auth_codes"]["success"]))
    # the terminal resends (it never saw the answer): Alipay says ACQ.TRADE_HAS_SUCCESS
    again = await account.pay(code_pay(no, creds["test_auth_codes"]["success"]))
    assert (again.status, again.channel_txn_id) == ("succeeded", first.channel_txn_id)
    qr = await account.pay(PayRequest(out_trade_no=no, amount_fen=1234, description="", mode="qr"))
    assert qr.status == "succeeded"

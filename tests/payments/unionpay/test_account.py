"""Our UnionPayAccount against our UnionPay sandbox (in process): consume with every test card,
query, undo, refund, refund query, notifications, the reconciliation file and bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from fastapi import FastAPI

from selfmart.kit.time import utcnow
from selfmart.payments.platform import (
    ChannelConfig,
    NotificationRejected,
    PayRequest,
    PlatformError,
    RefundSpec,
    open_account,
)
from selfmart.payments.unionpay import UnionPayAccount
from selfmart.payments.unionpay import protocol as u
from selfmart.sandbox import unionpay as sandbox_module
from selfmart.sandbox.unionpay.state import sandbox_for
from tests.payments.alipay.support import Receiver, sandbox_app, wait_for

BASE = "http://testserver/sandbox/unionpay"
BACK_URL = "http://merchant.test/card/notify"


@pytest.fixture(scope="module")
def keydir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("unionpay-sandbox")


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
        "channel": "card",
        "account_id": 3,
        "base_url": BASE,
        "merchant_id": creds["merchant_id"],
        "app_id": "",
        "private_key_pem": creds["merchant_private_key"],
        "private_key_id": creds["merchant_key_id"],
        "platform_public_keys": {creds["platform_public_key_id"]: creds["platform_public_key"]},
        "notify_url": BACK_URL,
        "extra": {
            "encrypt_cert": creds["encrypt_certificate"],
            "encrypt_cert_id": creds["encrypt_cert_id"],
        },
    }
    values.update(changes)
    return ChannelConfig(**values)


@pytest.fixture
def account(creds: dict[str, Any], http: httpx.AsyncClient) -> UnionPayAccount:
    opened = open_account(config(creds), http=http)
    assert isinstance(opened, UnionPayAccount)
    return opened


_n = 0


def order_id() -> str:
    global _n
    _n += 1
    return f"SM{utcnow():%H%M%S%f}{_n:04d}"


def card_pay(no: str, card: str, fen: int = 1234) -> PayRequest:
    return PayRequest(
        out_trade_no=no, amount_fen=fen, description="card", mode="card", auth_code=card
    )


async def test_credentials_follow_the_contract(creds: dict[str, Any]) -> None:
    assert creds["base_url"].endswith("/sandbox/unionpay")
    assert creds["merchant_key_id"] == u.cert_id(creds["merchant_certificate"])
    assert creds["platform_public_key_id"] == u.cert_id(creds["platform_public_key"])
    assert set(creds["test_auth_codes"]) == {
        "success",
        "user_paying",
        "declined",
        "insufficient_funds",
        "timeout",
    }


async def test_consume_succeeds_and_backurl_is_notified(
    account: UnionPayAccount, creds: dict[str, Any], receiver: Receiver
) -> None:
    no = order_id()
    paid = await account.pay(card_pay(no, creds["test_auth_codes"]["success"]))
    assert (paid.status, paid.amount_fen) == ("succeeded", 1234)
    assert paid.channel_txn_id
    assert len(paid.channel_txn_id) == 21
    # no card number, signature or certificate in the record
    sent = paid.raw["request"]["fields"]
    assert "accNo" not in sent
    assert "signature" not in sent
    assert sent["txnType"] == "01"
    assert sent["bizType"] == "000201"
    assert "signPubKeyCert" not in paid.raw["response"]["fields"]
    queried = await account.query(no)
    assert (queried.status, queried.channel_txn_id) == ("succeeded", paid.channel_txn_id)

    await wait_for(lambda: receiver.bodies("/card/notify"))
    note = account.parse_notification({}, receiver.bodies("/card/notify")[0])
    assert (note.kind, note.status, note.amount_fen) == ("payment", "succeeded", 1234)
    assert (note.out_trade_no, note.transaction_id) == (no, paid.channel_txn_id)
    assert note.merchant_id == creds["merchant_id"]
    assert note.raw["accNo"] == "621626*********0018"
    assert account.answer_notification(True).status_code == 200
    assert account.answer_notification(False).status_code != 200


async def test_pending_consume_then_approved(
    account: UnionPayAccount, creds: dict[str, Any], http: httpx.AsyncClient
) -> None:
    no = order_id()
    waiting = await account.pay(card_pay(no, creds["test_auth_codes"]["user_paying"]))
    assert waiting.status == "pending"
    assert (await account.query(no)).status == "pending"
    decided = await http.post(f"/sandbox/unionpay/_control/transactions/{no}/approve")
    assert decided.status_code == 200
    assert (await account.query(no)).status == "succeeded"
    # a pending one can be declined instead
    other = order_id()
    await account.pay(card_pay(other, creds["test_auth_codes"]["user_paying"]))
    await http.post(f"/sandbox/unionpay/_control/transactions/{other}/decline", json={})
    refused = await account.query(other)
    assert (refused.status, refused.failure_code) == ("failed", "60")


@pytest.mark.parametrize(("which", "code"), [("declined", "60"), ("insufficient_funds", "51")])
async def test_refused_cards(
    account: UnionPayAccount, creds: dict[str, Any], which: str, code: str
) -> None:
    result = await account.pay(card_pay(order_id(), creds["test_auth_codes"][which]))
    assert (result.status, result.failure_code) == ("failed", code)
    assert result.failure_reason


async def test_timeout_card_is_found_paid_by_the_query(
    account: UnionPayAccount, creds: dict[str, Any]
) -> None:
    no = order_id()
    result = await account.pay(card_pay(no, creds["test_auth_codes"]["timeout"]))
    # the gateway answered 03 (timed out, query): the account queried and found it paid
    assert result.raw["response"]["fields"]["respCode"] == "03"
    assert result.status == "succeeded"


async def test_undo_then_refunds(
    account: UnionPayAccount, creds: dict[str, Any], receiver: Receiver
) -> None:
    no = order_id()
    await account.pay(card_pay(no, creds["test_auth_codes"]["success"], fen=1000))
    undone = await account.reverse(no)
    assert (undone.status, undone.failure_code) == ("failed", "TRADE_CANCELLED")
    assert undone.raw["request"]["fields"]["txnType"] == "31"
    # an undone consume cannot be refunded
    refused = await account.refund(
        RefundSpec(out_trade_no=no, out_refund_no=no + "R1", total_fen=1000, amount_fen=100)
    )
    assert (refused.status, refused.failure_code) == ("failed", "36")

    paid_no = order_id()
    paid = await account.pay(card_pay(paid_no, creds["test_auth_codes"]["success"], fen=1000))
    part = await account.refund(
        RefundSpec(
            out_trade_no=paid_no,
            out_refund_no=paid_no + "R1",
            total_fen=1000,
            amount_fen=300,
            transaction_id=paid.channel_txn_id,
        )
    )
    assert part.status == "succeeded"
    assert part.channel_refund_id
    assert (await account.query_refund(paid_no, paid_no + "R1")).status == "succeeded"
    too_much = await account.refund(
        RefundSpec(
            out_trade_no=paid_no, out_refund_no=paid_no + "R2", total_fen=1000, amount_fen=701
        )
    )
    assert (too_much.status, too_much.failure_code) == ("failed", "36")
    # undo after a refund is refused by the gateway; reverse then refunds the rest... which
    # exceeds what is left, so it is reported, not hidden
    assert (await account.reverse(paid_no)).status == "unknown"

    await wait_for(lambda: len(receiver.bodies("/card/notify")) >= 4)
    notes = [account.parse_notification({}, b) for b in receiver.bodies("/card/notify")]
    refunds = [n for n in notes if n.kind == "refund"]
    assert {(n.out_refund_no, n.amount_fen) for n in refunds} >= {(paid_no + "R1", 300)}
    assert all(n.transaction_id for n in refunds)


async def test_a_refund_sent_again_is_the_same_refund(
    account: UnionPayAccount, creds: dict[str, Any]
) -> None:
    """The refund query job sends again a refund whose answer was lost (payments.twophase):
    the gateway answers the repeated orderId and txnTime 12 (duplicate) and the account asks
    what became of the first, so the money goes back once."""
    paid_no = order_id()
    paid = await account.pay(card_pay(paid_no, creds["test_auth_codes"]["success"], fen=1000))
    spec = RefundSpec(
        out_trade_no=paid_no,
        out_refund_no=paid_no + "R1",
        total_fen=1000,
        amount_fen=400,
        transaction_id=paid.channel_txn_id,
        started_at=utcnow().replace(microsecond=0),
    )
    first = await account.refund(spec)
    again = await account.refund(spec)
    assert first.status == again.status == "succeeded"
    assert again.channel_refund_id == first.channel_refund_id
    assert again.raw["response"]["fields"]["respCode"] == u.DUPLICATE
    # 600 is left; had the repeat refunded again, only 200 would be and this would be refused.
    rest = await account.refund(
        RefundSpec(
            out_trade_no=paid_no,
            out_refund_no=paid_no + "R2",
            total_fen=1000,
            amount_fen=600,
            transaction_id=paid.channel_txn_id,
        )
    )
    assert rest.status == "succeeded"


async def test_queries_of_orders_this_process_did_not_send(
    account: UnionPayAccount, creds: dict[str, Any]
) -> None:
    # the txnTime is unknown, so the gateway's signed 34 (not found) proves the keys but not
    # that nothing was paid: the outcome is unknown
    probe = await account.query("NEVERSENT0001")
    assert (probe.status, probe.failure_code) == ("unknown", "34")
    refund = await account.query_refund("NEVERSENT0001", "NEVERSENT0001R")
    assert (refund.status, refund.failure_code) == ("unknown", "34")
    # one it sent and the gateway never took is a plain failure
    from selfmart.payments.unionpay.account import _remember

    _remember(creds["merchant_id"], "SENTBUTLOST01", u.format_txn_time(utcnow()))
    lost = await account.query("SENTBUTLOST01")
    assert (lost.status, lost.failure_code) == ("failed", "34")


async def test_bad_order_ids_and_modes_are_programming_errors(
    account: UnionPayAccount, creds: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="orderId"):
        await account.pay(card_pay("SM-1-2", creds["test_auth_codes"]["success"]))
    with pytest.raises(ValueError, match="card"):
        await account.pay(
            PayRequest(out_trade_no="SM00000001", amount_fen=1, description="", mode="qr")
        )


async def test_reconciliation_file(account: UnionPayAccount, creds: dict[str, Any]) -> None:
    no = order_id()
    paid = await account.pay(card_pay(no, creds["test_auth_codes"]["success"], fen=4321))
    await account.refund(
        RefundSpec(
            out_trade_no=no,
            out_refund_no=no + "R",
            total_fen=4321,
            amount_fen=321,
            transaction_id=paid.channel_txn_id,
        )
    )
    today = utcnow().astimezone(u.BEIJING).date()
    archive = await account.download_bill(today)
    assert archive is not None
    files = u.read_archive(archive)
    ((name, records),) = files.items()
    assert name == f"INN{today:%y%m%d}88ZM_{creds['merchant_id']}"
    mine = [r for r in records if r.order_id in (no, no + "R")]
    assert [(r.txn_type, r.amount_fen, r.settle_fen) for r in mine] == [
        ("01", 4321, 4321),
        ("04", 321, -321),
    ]
    assert mine[1].orig_query_id == paid.channel_txn_id
    assert await account.download_bill(today - timedelta(days=40)) is None


async def test_answers_from_an_untrusted_certificate_are_not_believed(
    creds: dict[str, Any], http: httpx.AsyncClient
) -> None:
    _key, other_cert = u.make_certificate("not the gateway")
    wrong = UnionPayAccount(
        config(creds, platform_public_keys={u.cert_id(other_cert): other_cert}), http=http
    )
    with pytest.raises(PlatformError) as caught:
        await wrong.pay(card_pay(order_id(), creds["test_auth_codes"]["success"]))
    assert caught.value.code == "bad_signature"


async def test_a_request_signed_with_the_wrong_key_is_refused(
    creds: dict[str, Any], http: httpx.AsyncClient
) -> None:
    other_key, _cert = u.make_certificate("impostor")
    wrong = UnionPayAccount(config(creds, private_key_pem=other_key), http=http)
    refused = await wrong.pay(card_pay(order_id(), creds["test_auth_codes"]["success"]))
    assert (refused.status, refused.failure_code) == ("failed", "11")
    stranger = UnionPayAccount(config(creds, private_key_id="12345"), http=http)
    assert (await stranger.pay(card_pay(order_id(), "6216261000000000018"))).failure_code == "11"


async def test_controls(
    account: UnionPayAccount, creds: dict[str, Any], http: httpx.AsyncClient
) -> None:
    await http.post("/sandbox/unionpay/_control/next", json={"action": "error"})
    with pytest.raises(PlatformError):
        await account.pay(card_pay(order_id(), creds["test_auth_codes"]["success"]))
    await http.post(
        "/sandbox/unionpay/_control/next",
        json={"action": "decline", "txn_type": "01", "resp_code": "51"},
    )
    declined = await account.pay(card_pay(order_id(), creds["test_auth_codes"]["success"]))
    assert (declined.status, declined.failure_code) == ("failed", "51")
    await http.post("/sandbox/unionpay/_control/next", json={"action": "user_paying"})
    assert (await account.pay(card_pay(order_id(), "6222000000000000001"))).status == "pending"
    listed = await http.get("/sandbox/unionpay/_control/transactions")
    assert listed.status_code == 200
    assert listed.json()


async def test_gateway_refuses_malformed_messages(
    http: httpx.AsyncClient, creds: dict[str, Any]
) -> None:
    bare = await http.post("/sandbox/unionpay/gateway/api/backTransReq.do", data={"txnType": "01"})
    fields = u.decode_answer(bare.content)
    assert fields["respCode"] == "13"
    u.verify_gateway(fields, {creds["platform_public_key_id"]: creds["platform_public_key"]})
    wrong_path = await http.post(
        "/sandbox/unionpay/gateway/api/queryTrans.do", data={"txnType": "01"}
    )
    assert u.decode_answer(wrong_path.content)["respCode"] == "10"


# --- notifications -------------------------------------------------------------------------


def _notice(app: FastAPI, creds: dict[str, Any], key: str | None = None, **changes: str) -> bytes:
    sandbox = sandbox_for(app.state.settings)
    fields = {
        "version": "5.1.0",
        "encoding": "UTF-8",
        "signMethod": "01",
        "certId": sandbox.sign_cert_id,
        "signPubKeyCert": sandbox.sign_cert,
        "txnType": "01",
        "txnSubType": "01",
        "bizType": "000201",
        "accessType": "0",
        "merId": creds["merchant_id"],
        "orderId": "SM0000000042",
        "txnTime": "20261206103000",
        "txnAmt": "1234",
        "queryId": "202612061030000000042",
        "respCode": "00",
        "respMsg": "success",
    }
    fields.update(changes)
    return urlencode(u.sign(fields, key or sandbox.sign_key)).encode()


async def test_notification_checks(
    app: FastAPI, account: UnionPayAccount, creds: dict[str, Any]
) -> None:
    good = _notice(app, creds)
    note = account.parse_notification({}, good)
    assert (note.status, note.amount_fen, note.out_trade_no) == ("succeeded", 1234, "SM0000000042")
    assert account.parse_notification({}, good).notification_id == note.notification_id
    fields = dict(parse_qsl(good.decode()))
    with pytest.raises(NotificationRejected) as caught:
        account.parse_notification({}, urlencode({**fields, "txnAmt": "1"}).encode())
    assert caught.value.code == "bad_signature"
    other_key, other_cert = u.make_certificate("forger")
    with pytest.raises(NotificationRejected):
        account.parse_notification({}, _notice(app, creds, key=other_key))
    with pytest.raises(NotificationRejected):
        account.parse_notification(
            {}, _notice(app, creds, key=other_key, signPubKeyCert=other_cert)
        )
    with pytest.raises(NotificationRejected) as caught:
        account.parse_notification({}, _notice(app, creds, merId="777290058999999"))
    assert caught.value.code == "wrong_merchant"
    with pytest.raises(NotificationRejected) as caught:
        account.parse_notification({}, _notice(app, creds, txnAmt="12.34"))
    assert caught.value.code == "malformed"
    failed = account.parse_notification({}, _notice(app, creds, respCode="51"))
    assert failed.status == "failed"
    refund = account.parse_notification(
        {}, _notice(app, creds, txnType="04", txnSubType="00", origQryId="202612060000000000001")
    )
    assert (refund.kind, refund.out_refund_no, refund.transaction_id) == (
        "refund",
        "SM0000000042",
        "202612060000000000001",
    )


async def test_reverse_after_settlement_refunds_instead(
    app: FastAPI, account: UnionPayAccount, creds: dict[str, Any]
) -> None:
    no = order_id()
    await account.pay(card_pay(no, creds["test_auth_codes"]["success"], fen=800))
    # the consume was settled yesterday: the gateway takes no undo for it any more
    sandbox = sandbox_for(app.state.settings)
    txn = next(t for t in sandbox.txns.values() if t.order_id == no)
    txn.created_at -= timedelta(days=1)
    assert txn.finished_at is not None
    txn.finished_at -= timedelta(days=1)
    reversed_ = await account.reverse(no)
    assert (reversed_.status, reversed_.failure_code) == ("failed", "TRADE_CANCELLED")
    assert reversed_.raw["response"]["fields"]["respCode"] == "35"
    assert reversed_.raw["refund"]["request"]["fields"]["txnType"] == "04"
    assert txn.returned_fen == 800


async def test_a_resent_consume_never_charges_twice(
    app: FastAPI, account: UnionPayAccount, creds: dict[str, Any], http: httpx.AsyncClient
) -> None:
    no = order_id()
    first = await account.pay(card_pay(no, creds["test_auth_codes"]["success"]))
    again = await account.pay(card_pay(no, creds["test_auth_codes"]["success"]))
    assert (again.status, again.channel_txn_id) == ("succeeded", first.channel_txn_id)
    consumes = [
        t
        for t in sandbox_for(app.state.settings).txns.values()
        if t.order_id == no and t.txn_type == "01"
    ]
    assert len(consumes) == 1
    # another process (no memory of the first) is refused by the gateway as a duplicate
    other = UnionPayAccount(account.config, http=http)
    from selfmart.payments.unionpay import account as module

    module._SENT.pop((creds["merchant_id"], no))
    refused = await other.pay(card_pay(no, creds["test_auth_codes"]["success"]))
    assert (refused.status, refused.failure_code) == ("failed", "12")
    # a declined card may be tried again under the same order
    retry = order_id()
    declined = await account.pay(card_pay(retry, creds["test_auth_codes"]["declined"]))
    assert declined.status == "failed"
    assert (await account.pay(card_pay(retry, "6216261000000000018"))).status == "succeeded"


async def test_a_fresh_process_finds_a_payment_and_refund_by_their_start_times(
    creds: dict[str, Any], http: httpx.AsyncClient
) -> None:
    """The consume and refund go out with the caller's start time as txnTime; another
    process (a new account object, nothing remembered) names it again and finds them."""
    from selfmart.payments.unionpay import account as account_module

    started = utcnow() - timedelta(minutes=3)
    no = order_id()
    sender = open_account(config(creds), http=http)
    paid = await sender.pay(
        PayRequest(
            out_trade_no=no,
            amount_fen=800,
            description="card",
            mode="card",
            auth_code=creds["test_auth_codes"]["success"],
            started_at=started,
        )
    )
    assert paid.status == "succeeded"
    assert paid.raw["request"]["fields"]["txnTime"] == u.format_txn_time(started)
    refund_started = utcnow() - timedelta(minutes=1)
    refunded = await sender.refund(
        RefundSpec(
            out_trade_no=no,
            out_refund_no=no + "R1",
            total_fen=800,
            amount_fen=300,
            transaction_id=paid.channel_txn_id,
            started_at=refund_started,
        )
    )
    assert refunded.status == "succeeded"

    account_module._SENT.clear()  # what a restart forgets
    fresh = open_account(config(creds), http=http)
    assert (await fresh.query(no)).status == "unknown"  # no start time: cannot say
    found = await fresh.query(no, started_at=started)
    assert (found.status, found.amount_fen, found.channel_txn_id) == (
        "succeeded",
        800,
        paid.channel_txn_id,
    )
    assert found.raw["request"]["fields"]["txnTime"] == u.format_txn_time(started)
    refund = await fresh.query_refund(no, no + "R1", started_at=refund_started)
    assert (refund.status, refund.channel_refund_id) == ("succeeded", refunded.channel_refund_id)
    assert (await fresh.query_refund(no, no + "R1")).status == "unknown"
    # a reverse from a fresh process finds the consume it undoes
    other = order_id()
    await sender.pay(
        PayRequest(
            out_trade_no=other,
            amount_fen=500,
            description="card",
            mode="card",
            auth_code=creds["test_auth_codes"]["success"],
            started_at=started,
        )
    )
    account_module._SENT.clear()
    assert (await fresh.reverse(other)).status == "unknown"  # cannot find it: does nothing
    undone = await fresh.reverse(other, started_at=started)
    assert (undone.status, undone.failure_code) == ("failed", "TRADE_CANCELLED")
    assert undone.raw["request"]["fields"]["txnType"] == "31"
    never = await fresh.query(order_id(), started_at=started)
    assert (never.status, never.failure_code) == ("failed", "34")  # named, and not there


async def test_the_customer_page_lists_a_waiting_card_payment_and_pays_it(
    account: UnionPayAccount, creds: dict[str, Any], http: httpx.AsyncClient
) -> None:
    """`/_control/pay`: a person at `make run` plays the cardholder at the PIN pad."""
    no, other = order_id(), order_id()
    for n in (no, other):
        await account.pay(card_pay(n, creds["test_auth_codes"]["user_paying"]))
    page = (await http.get("/sandbox/unionpay/_control/pay")).text
    for n in (no, other):
        assert f"/_control/transactions/{n}/approve" in page
        assert f"/_control/transactions/{n}/decline" in page
    form = {"content-type": "application/x-www-form-urlencoded"}
    paid = await http.post(f"/sandbox/unionpay/_control/transactions/{no}/approve", headers=form)
    assert paid.status_code == 303
    assert paid.headers["location"].endswith("/sandbox/unionpay/_control/pay")
    declined = await http.post(
        f"/sandbox/unionpay/_control/transactions/{other}/decline", headers=form
    )
    assert declined.status_code == 303
    assert (await account.query(no)).status == "succeeded"
    refused = await account.query(other)
    assert (refused.status, refused.failure_code) == ("failed", "60")
    page = (await http.get("/sandbox/unionpay/_control/pay")).text
    assert no not in page
    assert other not in page

"""The UnionPay sandbox: what our account sends checked field by field against the ACP 5.1.0
field tables (no Python client exists to drive it instead), the backUrl retry schedule
(compressed) until HTTP 200, and twice / late / out of order / bad signature."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

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
)
from selfmart.payments.unionpay import UnionPayAccount
from selfmart.payments.unionpay import protocol as u
from selfmart.sandbox import unionpay as sandbox_module
from selfmart.sandbox.unionpay.state import UNIONPAY_RETRY_SECONDS, sandbox_for
from tests.payments.alipay.support import Receiver, sandbox_app, wait_for

SCALE = 1000.0
BACK_URL = "http://merchant.test/card"

#: ACP 5.1.0 field tables: the fields each request carries (M and the C ones we use)
CONSUME_FIELDS = {
    "version",
    "encoding",
    "certId",
    "signature",
    "signMethod",
    "txnType",
    "txnSubType",
    "bizType",
    "accessType",
    "channelType",
    "merId",
    "orderId",
    "txnTime",
    "txnAmt",
    "currencyCode",
    "backUrl",
    "accNo",
    "encryptCertId",
}
REFUND_FIELDS = {
    "version",
    "encoding",
    "certId",
    "signature",
    "signMethod",
    "txnType",
    "txnSubType",
    "bizType",
    "accessType",
    "channelType",
    "merId",
    "orderId",
    "txnTime",
    "txnAmt",
    "origQryId",
    "backUrl",
}
QUERY_FIELDS = {
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
    "orderId",
    "txnTime",
}
FILE_FIELDS = {
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
    "settleDate",
    "txnTime",
    "fileType",
}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return sandbox_app(tmp_path_factory.mktemp("unionpay-sandbox-http"), time_scale=SCALE)


@pytest.fixture
def receiver(app: FastAPI) -> Receiver:
    receiver = Receiver()
    sandbox_for(app.state.settings).notifier.transport = httpx.ASGITransport(app=receiver.app)
    return receiver


@pytest.fixture
async def account(app: FastAPI) -> AsyncIterator[UnionPayAccount]:
    creds: dict[str, Any] = sandbox_module.credentials(app.state.settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield UnionPayAccount(
            ChannelConfig(
                channel="card",
                account_id=1,
                base_url="http://testserver/sandbox/unionpay",
                merchant_id=creds["merchant_id"],
                app_id="",
                private_key_pem=creds["merchant_private_key"],
                private_key_id=creds["merchant_key_id"],
                platform_public_keys={
                    creds["platform_public_key_id"]: creds["platform_public_key"]
                },
                notify_url=BACK_URL,
                extra={"encrypt_cert": creds["encrypt_certificate"]},
            ),
            http=http,
        )


_n = 0


async def consume(account: UnionPayAccount, fen: int = 100) -> str:
    global _n
    _n += 1
    no = f"UP{utcnow():%H%M%S%f}{_n:03d}"
    request = PayRequest(
        out_trade_no=no,
        amount_fen=fen,
        description="",
        mode="card",
        auth_code="6216261000000000018",
    )
    assert (await account.pay(request)).status == "succeeded"
    return no


async def test_messages_match_the_field_tables(app: FastAPI, account: UnionPayAccount) -> None:
    sandbox = sandbox_for(app.state.settings)
    sandbox.received.clear()
    no = await consume(account)
    await account.refund(
        RefundSpec(out_trade_no=no, out_refund_no=no + "R", total_fen=100, amount_fen=40)
    )
    await account.download_bill(utcnow().astimezone(u.BEIJING).date())
    sent = [(r["path"], r["fields"]) for r in sandbox.received]
    by_type = {(path, f["txnType"]): f for path, f in sent}
    consume_fields = by_type[("backTransReq.do", "01")]
    assert set(consume_fields) == CONSUME_FIELDS
    assert (consume_fields["txnSubType"], consume_fields["bizType"]) == ("01", "000201")
    assert consume_fields["channelType"] in ("07", "08")
    assert (consume_fields["version"], consume_fields["signMethod"]) == ("5.1.0", "01")
    assert consume_fields["currencyCode"] == "156"
    assert consume_fields["txnAmt"] == "100"
    assert len(consume_fields["txnTime"]) == 14
    assert "6216" not in consume_fields["accNo"]  # encrypted, never plain
    refund_fields = by_type[("backTransReq.do", "04")]
    assert set(refund_fields) == REFUND_FIELDS
    assert refund_fields["txnSubType"] == "00"
    assert set(by_type[("queryTrans.do", "00")]) == QUERY_FIELDS
    assert by_type[("queryTrans.do", "00")]["bizType"] == "000000"
    file_fields = by_type[("fileTransReq.do", "76")]
    assert set(file_fields) == FILE_FIELDS
    assert (file_fields["fileType"], len(file_fields["settleDate"])) == ("00", 4)


async def test_backurl_retried_until_http_200(
    app: FastAPI, account: UnionPayAccount, receiver: Receiver
) -> None:
    receiver.script = ["500", "500"]
    await consume(account)
    await wait_for(lambda: len(receiver.received) >= 3, seconds=10)
    at = [r["at"] for r in receiver.received]
    gaps = [b - a for a, b in zip(at, at[1:], strict=False)]
    for gap, wanted in zip(gaps, UNIONPAY_RETRY_SECONDS, strict=False):
        assert gap >= wanted / SCALE * 0.9
    delivery = sandbox_for(app.state.settings).notifier.deliveries[-1]
    await wait_for(lambda: delivery.finished)
    assert delivery.answered
    assert [a["status"] for a in delivery.attempts] == [500, 500, 200]


async def test_gives_up_after_five_retries(tmp_path: Any) -> None:
    app = sandbox_app(tmp_path, time_scale=100_000)
    receiver = Receiver(default="500")
    sandbox = sandbox_for(app.state.settings)
    sandbox.notifier.transport = httpx.ASGITransport(app=receiver.app)
    creds = sandbox_module.credentials(app.state.settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        account = UnionPayAccount(
            ChannelConfig(
                channel="card",
                account_id=1,
                base_url="http://testserver/sandbox/unionpay",
                merchant_id=creds["merchant_id"],
                app_id="",
                private_key_pem=creds["merchant_private_key"],
                private_key_id=creds["merchant_key_id"],
                platform_public_keys={
                    creds["platform_public_key_id"]: creds["platform_public_key"]
                },
                notify_url=BACK_URL,
                extra={"encrypt_cert": creds["encrypt_certificate"]},
            ),
            http=http,
        )
        await consume(account)
    await sandbox.notifier.drain()
    delivery = sandbox.notifier.deliveries[-1]
    assert not delivery.answered
    assert len(delivery.attempts) == 1 + len(UNIONPAY_RETRY_SECONDS) == 6


async def test_notification_modes(
    app: FastAPI, account: UnionPayAccount, receiver: Receiver
) -> None:
    async def control(body: dict[str, Any]) -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            assert (await http.post("/sandbox/unionpay/_control/notify", json=body)).is_success

    await control({"mode": "twice"})
    no = await consume(account)
    await wait_for(lambda: len(receiver.received) >= 2)
    assert {account.parse_notification({}, r["body"]).out_trade_no for r in receiver.received} == {
        no
    }
    receiver.received.clear()
    await control({"mode": "bad_signature"})
    await consume(account)
    await wait_for(lambda: receiver.received)
    with pytest.raises(NotificationRejected):
        account.parse_notification({}, receiver.received[0]["body"])
    receiver.received.clear()
    await control({"mode": "out_of_order"})
    first = await consume(account)
    second = await consume(account)
    await wait_for(lambda: len(receiver.received) >= 2)
    order = [account.parse_notification({}, r["body"]).out_trade_no for r in receiver.received]
    assert order == [second, first]
    receiver.received.clear()
    await control({"mode": "late", "delay_seconds": 0.4})
    started = utcnow()
    await consume(account)
    await wait_for(lambda: receiver.received)
    assert (utcnow() - started).total_seconds() >= 0.4


async def test_timeout_over_real_http_then_found_by_query(tmp_path: Any) -> None:
    import asyncio

    from tests.payments.alipay.support import serve

    app = sandbox_app(tmp_path, time_scale=SCALE)
    creds = sandbox_module.credentials(app.state.settings)
    with serve(app) as url:
        config = ChannelConfig(
            channel="card",
            account_id=1,
            base_url=f"{url}/sandbox/unionpay",
            merchant_id=creds["merchant_id"],
            app_id="",
            private_key_pem=creds["merchant_private_key"],
            private_key_id=creds["merchant_key_id"],
            platform_public_keys={creds["platform_public_key_id"]: creds["platform_public_key"]},
            notify_url="http://127.0.0.1:9/unused",
            extra={"encrypt_cert": creds["encrypt_certificate"]},
        )
        async with httpx.AsyncClient() as plain:
            control = await plain.post(
                f"{url}/sandbox/unionpay/_control/next",
                json={"action": "timeout", "txn_type": "01", "seconds": 1},
            )
            assert control.status_code == 200
        no = f"UPT{utcnow():%H%M%S%f}"
        request = PayRequest(
            out_trade_no=no,
            amount_fen=100,
            description="",
            mode="card",
            auth_code="6216261000000000018",
        )
        async with httpx.AsyncClient(timeout=0.3) as hurried:
            with pytest.raises(PlatformError):
                await UnionPayAccount(config, http=hurried).pay(request)
        await asyncio.sleep(2.0)  # the gateway waits 1 s, then goes on
        # the consume went through after the client gave up; the account kept its txnTime
        found = await UnionPayAccount(config).query(no)
        assert found.status == "succeeded"

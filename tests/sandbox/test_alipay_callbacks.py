"""The Alipay sandbox's notifications: Alipay's retry schedule (compressed by
payment_sandbox_time_scale) until the answer is exactly `success`, and the control API's
twice / late / out of order / bad signature."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from selfmart.kit.time import utcnow
from selfmart.payments.alipay import AlipayAccount
from selfmart.payments.platform import ChannelConfig, NotificationRejected, PayRequest
from selfmart.sandbox import alipay as sandbox_module
from selfmart.sandbox.alipay.callbacks import ALIPAY_RETRY_SECONDS
from selfmart.sandbox.alipay.state import sandbox_for
from tests.payments.alipay.support import Receiver, sandbox_app, wait_for

SCALE = 1000.0
NOTIFY = "http://merchant.test/notify"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return sandbox_app(tmp_path_factory.mktemp("alipay-callbacks"), time_scale=SCALE)


@pytest.fixture
def receiver(app: FastAPI) -> Receiver:
    receiver = Receiver()
    sandbox_for(app.state.settings).notifier.transport = httpx.ASGITransport(app=receiver.app)
    return receiver


@pytest.fixture
async def account(app: FastAPI) -> AsyncIterator[AlipayAccount]:
    creds: dict[str, Any] = sandbox_module.credentials(app.state.settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        config = ChannelConfig(
            channel="alipay",
            account_id=1,
            base_url="http://testserver/sandbox/alipay",
            merchant_id=creds["merchant_id"],
            app_id=creds["app_id"],
            private_key_pem=creds["merchant_private_key"],
            private_key_id="",
            platform_public_keys={"": creds["platform_public_key"]},
            notify_url=NOTIFY,
        )
        account = AlipayAccount(config, http=http)
        account.test_codes = creds["test_auth_codes"]  # type: ignore[attr-defined]
        yield account


_n = 0


async def paid(account: AlipayAccount) -> str:
    global _n
    _n += 1
    no = f"CB{utcnow():%H%M%S%f}{_n:03d}"
    codes = account.test_codes  # type: ignore[attr-defined]
    request = PayRequest(
        out_trade_no=no, amount_fen=100, description="x", mode="code", auth_code=codes["success"]
    )
    assert (await account.pay(request)).status == "succeeded"
    return no


async def control(app: FastAPI, path: str, body: dict[str, Any]) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.post(f"/sandbox/alipay/_control/{path}", json=body)
        assert response.status_code == 200, response.text


async def test_retries_on_alipays_schedule_until_success(
    app: FastAPI, account: AlipayAccount, receiver: Receiver
) -> None:
    # only the exact body `success` stops Alipay: `fail`, a 500 and `SUCCESS` do not
    receiver.script = ["fail", "500", "SUCCESS"]
    await paid(account)
    await wait_for(lambda: len(receiver.received) >= 4, seconds=10)
    at = [r["at"] for r in receiver.received]
    gaps = [b - a for a, b in zip(at, at[1:], strict=False)]
    expected = [s / SCALE for s in ALIPAY_RETRY_SECONDS[:3]]
    for gap, wanted in zip(gaps, expected, strict=True):
        assert gap >= wanted * 0.9
    # the schedule grows: 4 min, then 10 min
    assert gaps[1] > gaps[0]
    delivery = sandbox_for(app.state.settings).notifier.deliveries[-1]
    await wait_for(lambda: delivery.finished, seconds=5)
    assert delivery.answered
    assert [(a["status"], a["answer"]) for a in delivery.attempts] == [
        (200, "fail"),
        (500, "oops"),
        (200, "SUCCESS"),
        (200, "success"),
    ]
    assert len(receiver.received) == 4  # nothing after `success`


async def test_gives_up_after_the_last_retry(tmp_path: Any) -> None:
    # the whole 25-hour schedule compressed into under a second
    app = sandbox_app(tmp_path, time_scale=200_000)
    receiver = Receiver(default="fail")
    sandbox = sandbox_for(app.state.settings)
    sandbox.notifier.transport = httpx.ASGITransport(app=receiver.app)
    creds = sandbox_module.credentials(app.state.settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        config = ChannelConfig(
            channel="alipay",
            account_id=1,
            base_url="http://testserver/sandbox/alipay",
            merchant_id=creds["merchant_id"],
            app_id=creds["app_id"],
            private_key_pem=creds["merchant_private_key"],
            private_key_id="",
            platform_public_keys={"": creds["platform_public_key"]},
            notify_url=NOTIFY,
        )
        account = AlipayAccount(config, http=http)
        account.test_codes = creds["test_auth_codes"]  # type: ignore[attr-defined]
        await paid(account)
    await sandbox.notifier.drain()
    delivery = sandbox.notifier.deliveries[-1]
    assert not delivery.answered
    assert len(delivery.attempts) == 1 + len(ALIPAY_RETRY_SECONDS) == 8
    assert len(receiver.received) == 8
    # all eight carry the same notification
    assert len({r["body"] for r in receiver.received}) == 1


async def test_twice_late_bad_signature_out_of_order(
    app: FastAPI, account: AlipayAccount, receiver: Receiver
) -> None:
    await control(app, "notify", {"mode": "twice"})
    first = await paid(account)
    await wait_for(lambda: len(receiver.received) >= 2)
    twice = [account.parse_notification({}, r["body"]) for r in receiver.received]
    assert [n.out_trade_no for n in twice] == [first, first]
    assert twice[0].notification_id == twice[1].notification_id

    receiver.received.clear()
    await control(app, "notify", {"mode": "bad_signature"})
    await paid(account)
    await wait_for(lambda: receiver.received)
    with pytest.raises(NotificationRejected) as caught:
        account.parse_notification({}, receiver.received[0]["body"])
    assert caught.value.code == "bad_signature"

    receiver.received.clear()
    await control(app, "notify", {"mode": "late", "delay_seconds": 0.5})
    started = utcnow()
    await paid(account)
    await wait_for(lambda: receiver.received, seconds=5)
    assert (utcnow() - started).total_seconds() >= 0.5

    receiver.received.clear()
    await control(app, "notify", {"mode": "out_of_order"})
    earlier = await paid(account)
    later = await paid(account)
    await wait_for(lambda: len(receiver.received) >= 2)
    order = [account.parse_notification({}, r["body"]).out_trade_no for r in receiver.received]
    assert order == [later, earlier]

    listed = sandbox_for(app.state.settings).notifier.deliveries
    assert any(d.label["mode"] == "out_of_order" for d in listed)

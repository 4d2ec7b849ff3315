"""A platform's callback is answered without waiting on the slow work it sets off: with the
SMS that a paid order sends (the member crossed into a higher tier) stuck at a provider that
does not answer, a WeChat Pay, an Alipay and a UnionPay callback still get their answers (204,
`success`, `ok`) and the order is paid; the SMS goes out once the provider answers.

Not a timed assertion: the provider answers only after the callback has been answered, so a
callback that waited on it would never be answered at all (the guard below fails the test
rather than letting it hang). The job runtime runs as `make run` has it (in-memory broker,
jobs as background tasks), not inline as most tests have it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from selfmart.jobs import runtime
from selfmart.models import NotificationDelivery, Order, Payment, Refund
from selfmart.payments import sandboxes
from tests.builders import make_store
from tests.members.helpers import make_member, make_tier
from tests.orders.builders import make_order, make_product
from tests.payments.builders import demo_sandbox_account
from tests.payments.platforms import decide, deliver, next_call, refunds_sent, the_account
from tests.payments.test_terminal_pay import pay, setup
from tests.payments.wechatpay.support import Sandbox, free_port
from tests.support import settings_for, shared_app
from tests.terminals.builders import make_active_terminal

#: what each platform expects back from a callback it may stop sending
ANSWERS = {"wechat": ({200, 204}, b""), "alipay": ({200}, b"success"), "card": ({200}, b"ok")}
#: how the terminal pays on each channel so that the platform calls back later
MODES = {"wechat": "qr", "alipay": "qr", "card": "card"}
#: how long the test waits for an answer that must not wait on the SMS before it lets the SMS
#: go and fails (a bound against hanging, not a measure of speed)
GUARD_SECONDS = 30.0


@dataclass
class StuckSms:
    """An Aliyun-style SMS endpoint that holds every request until `release()`."""

    url: str
    received: list[bytes] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.gate.set()


@pytest.fixture
def stuck_sms() -> Iterator[StuckSms]:
    port = free_port()
    sms = StuckSms(url=f"http://127.0.0.1:{port}/")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            sms.received.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            sms.gate.wait(timeout=120)
            body = json.dumps({"Code": "OK", "BizId": "900001", "RequestId": "R1"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield sms
    finally:
        sms.release()
        server.shutdown()


async def _until(predicate: Any, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen in {seconds:.0f} s: {what}")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("channel", ["wechat", "alipay", "card"])
async def test_the_callback_is_answered_while_its_sms_is_stuck(
    channel: str,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_url: str,
    engine: AsyncEngine,
    wechat: Sandbox,
    stuck_sms: StuckSms,
) -> None:
    account = await demo_sandbox_account(session, wechat, channel)
    # The platform's callback goes to the receiver; the test hands it to the app.
    account.notify_url = f"{wechat.receiver.url}/notify/{channel}"
    store = await make_store(session)
    base = await make_tier(session, 0)
    silver = await make_tier(session, 1, min_spend_fen=700)
    member = await make_member(session, tier=base, mobile_no="13912345678")
    product = await make_product(session, stores=[store], price_fen=350)
    creds = await make_active_terminal(session, store)
    order = await make_order(session, store, [(product, 2)], terminal=creds.terminal)
    order.member_id, order.member_no = member.id, member.member_no
    await session.flush()

    app = shared_app(
        db_url, engine, sessionmaker, sms_endpoint=stuck_sms.url, sms_timeout_seconds=120.0
    )
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
        runtime.running(app.state.settings, sessionmaker, inline=False),
    ):
        extra: dict[str, Any] = {"channel": channel, "mode": MODES[channel]}
        if channel == "card":
            extra["auth_code"] = sandboxes.credentials(wechat.settings)["card"]["test_auth_codes"][
                "user_paying"
            ]
        r = await pay(client, creds, order.order_no, **extra)
        assert r.status_code == 201, r.text
        started = r.json()
        assert started["state"] in ("waiting", "paying"), started
        await decide(wechat, channel, started["out_trade_no"])
        [call, *_] = await asyncio.to_thread(wechat.receiver.wait_for, f"/notify/{channel}", 1)

        answering = asyncio.create_task(deliver(client, channel, account.id, call))
        done, _ = await asyncio.wait({answering}, timeout=GUARD_SECONDS)
        if not done:
            stuck_sms.release()
            await answering
            pytest.fail("the callback was answered only once the SMS provider answered")
        answer = answering.result()
        statuses, body = ANSWERS[channel]
        assert answer.status_code in statuses, answer.text
        assert answer.content == body
        placed = await session.get(Order, order.id, populate_existing=True)
        assert placed is not None
        assert (placed.status, placed.paid_fen) == ("paid", 700)
        await session.refresh(member)
        assert member.tier_id == silver.id

        async def sms(status: str) -> bool:
            delivery = await session.scalar(
                select(NotificationDelivery)
                .where(
                    NotificationDelivery.recipient == "13912345678",
                    NotificationDelivery.kind == "member.tier_upgrade",
                )
                .execution_options(populate_existing=True)
            )
            return delivery is not None and delivery.status == status

        # The SMS set off by the payment is at the provider, which has not answered.
        async def at_provider() -> bool:
            return bool(stuck_sms.received)

        await _until(at_provider, "the tier SMS reaching the provider")
        assert await sms("pending")

        stuck_sms.release()

        async def sent() -> bool:
            return await sms("sent")

        await _until(sent, "the tier SMS sent once the provider answered")
        assert len(stuck_sms.received) == 1


async def test_a_double_payments_callback_is_answered_before_its_refund_is(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_url: str,
    wechat: Sandbox,
) -> None:
    """A store that refunds double payments at once: the refund of the extra is sent by a job,
    so the callback that found the second payment is answered before the platform answers
    the refund (here it takes 8 s; WeChat wants its answer within 5 s)."""
    _, creds, order = await setup(session, wechat, auto_refund_duplicates=True)
    r = await pay(client, creds, order.order_no, mode="qr", attempt_id="Q1")
    qr = r.json()
    await decide(wechat, "wechat", qr["out_trade_no"])
    [call] = await asyncio.to_thread(wechat.receiver.wait_for, "/notify", 1)
    # We heard the QR closed; the money went through anyway. Then the code pays the order.
    await session.execute(
        update(Payment).where(Payment.id == qr["payment_id"]).values(status="closed")
    )
    codes = wechat.credentials()["test_auth_codes"]
    r = await pay(client, creds, order.order_no, attempt_id="C1", auth_code=codes["success"])
    assert r.json()["state"] == "paid", r.text
    # The platform takes 8 s to answer the refund of the extra (our client waits 10 s).
    await next_call(wechat, "wechat", "timeout", "/v3/refund/domestic/refunds", seconds=8)
    account = await the_account(session, order, "wechat")

    async def the_refund() -> Refund:
        refund = await session.scalar(
            select(Refund)
            .where(Refund.order_id == order.id)
            .execution_options(populate_existing=True)
        )
        assert refund is not None
        return refund

    async with runtime.running(settings_for(db_url), sessionmaker, inline=False):
        answer = await deliver(client, "wechat", account.id, call)
        assert answer.status_code in (200, 204), answer.text
        refund = await the_refund()
        assert refund.amount_fen == 700
        # Answered before the platform answered the refund: no answer recorded on it yet.
        assert not refund.raw_response

        async def settled() -> bool:
            return (await the_refund()).raw_response is not None

        await _until(settled, "the platform's answer to the refund, recorded by the job")
    refund = await the_refund()
    assert refund.status in ("pending", "succeeded")  # WeChat settles refunds later
    assert refund.failure_code is None, refund.failure_reason
    assert await refunds_sent(wechat, "wechat") == [(refund.out_refund_no, 700)]

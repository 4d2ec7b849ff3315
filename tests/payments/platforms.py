"""The three platform sandboxes side by side, for the service-level tests that run a flow on
each platform that has it: an order and a terminal of a store on the channel's account, and
the customer's and the sandbox's part in each platform's own words (its control API).

WeChat Pay's account is the one `test_terminal_pay.setup` makes (callbacks to the receiver);
Alipay's and UnionPay's are the chain's accounts as `seed-demo` configures them against the
sandboxes the test server serves, with their callbacks sent to the receiver too: a test hands
a callback to the app only when it means to, so "no callback came" is the default."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import Order, PaymentAccount, Store
from selfmart.payments import sandboxes
from tests.builders import make_store
from tests.orders.builders import make_order, make_product
from tests.payments.builders import SANDBOX_PATHS, demo_sandbox_account
from tests.payments.test_terminal_pay import setup
from tests.payments.wechatpay.support import Received, Sandbox
from tests.terminals.builders import Credentials, make_active_terminal

CHANNELS = ("wechat", "alipay", "card")
#: the channels with a QR the terminal shows (a card is only ever read by the terminal)
QR_CHANNELS = ("wechat", "alipay")
#: the mode in which the terminal pays with the customer's code or card in front of it
PRESENT_MODE = {"wechat": "code", "alipay": "code", "card": "card"}
#: the path each sandbox sends callbacks to (on the receiver)
NOTIFY_PATH = {"wechat": "/notify", "alipay": "/notify/alipay", "card": "/notify/card"}


async def channel_setup(
    session: AsyncSession, wechat: Sandbox, channel: str, **account: Any
) -> tuple[Store, Credentials, Order]:
    """A store, its terminal and an order of two colas (700 fen) on the channel's account."""
    if channel == "wechat":
        return await setup(session, wechat, **account)
    store = await make_store(session)
    cola = await make_product(session, stores=[store], price_fen=350)
    creds = await make_active_terminal(session, store)
    order = await make_order(session, store, [(cola, 2)], terminal=creds.terminal)
    found = await offer(session, wechat, channel)
    for name, value in account.items():
        setattr(found, name, value)
    await session.flush()
    return store, creds, order


async def offer(session: AsyncSession, wechat: Sandbox, channel: str) -> PaymentAccount:
    """The chain's account of `channel` against its sandbox (made as `seed-demo` makes it, once
    per test: the sandboxes of the other platforms are emptied only then), every chain account's
    callbacks going to the receiver."""
    existing = await session.scalar(
        select(PaymentAccount).where(
            PaymentAccount.channel == channel, PaymentAccount.store_id.is_(None)
        )
    )
    others = await session.scalar(
        select(PaymentAccount.id).where(
            PaymentAccount.channel.in_(("alipay", "card")), PaymentAccount.store_id.is_(None)
        )
    )
    if existing is None and others is None:
        for platform in ("alipay", "card"):
            r = await asyncio.to_thread(control, wechat, platform, "POST", "/reset")
            assert r.status_code in (200, 204), r.text
    found = existing or await demo_sandbox_account(session, wechat, channel, reset=False)
    chain = await session.scalars(select(PaymentAccount).where(PaymentAccount.store_id.is_(None)))
    for each in chain.all():
        if not each.notify_url:
            each.notify_url = f"{wechat.receiver.url}{NOTIFY_PATH[each.channel]}"
    await session.flush()
    return found


async def the_account(session: AsyncSession, order: Order, channel: str) -> PaymentAccount:
    from selfmart.payments import accounts

    account = await accounts.for_store(session, order.store_id, channel)
    assert account is not None
    return account


def codes(wechat: Sandbox, channel: str) -> dict[str, str]:
    """The payment codes (cards for UnionPay) whose outcome the sandbox fixes."""
    found: dict[str, str] = sandboxes.credentials(wechat.settings)[channel]["test_auth_codes"]
    return found


def present(wechat: Sandbox, channel: str, outcome: str) -> dict[str, Any]:
    """The pay request's body for the customer's code or card that ends in `outcome`."""
    return {
        "channel": channel,
        "mode": PRESENT_MODE[channel],
        "auth_code": codes(wechat, channel)[outcome],
    }


def control(wechat: Sandbox, channel: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A call to a sandbox's control API (`/sandbox/<platform>/_control<path>`)."""
    if channel == "wechat":
        return wechat.control(method, path, **kwargs)
    url = f"{wechat.url}/sandbox/{SANDBOX_PATHS[channel]}/_control{path}"
    return httpx.request(method, url, timeout=60, **kwargs)


async def decide(wechat: Sandbox, channel: str, out_trade_no: str, *, paid: bool = True) -> None:
    """The customer pays (or turns down) what waits for them at the platform."""
    what = {"wechat": "payments", "alipay": "trades", "card": "transactions"}[channel]
    verb = "approve" if paid else "decline"
    r = await asyncio.to_thread(control, wechat, channel, "POST", f"/{what}/{out_trade_no}/{verb}")
    assert r.status_code < 300, r.text


async def next_call(wechat: Sandbox, channel: str, action: str, call: str, **more: Any) -> None:
    """Script what the sandbox does with the next call of one kind: `call` is WeChat's path
    prefix, Alipay's method or UnionPay's txnType."""
    body: dict[str, Any] = {"action": action, **more}
    if channel == "wechat":
        body["action"] = {"error": "error_500"}.get(action, action)
        body["path_prefix"] = call
    elif channel == "alipay":
        body["method"] = call
    else:
        body["txn_type"] = call
    r = await asyncio.to_thread(control, wechat, channel, "POST", "/next", json=body)
    assert r.status_code == 200, r.text


#: the call that starts a payment with the customer present, and the one that refunds
PAY_CALL = {"wechat": "/v3/pay/transactions/codepay", "alipay": "alipay.trade.pay", "card": "01"}
REFUND_CALL = {
    "wechat": "/v3/refund/domestic/refunds",
    "alipay": "alipay.trade.refund",
    "card": "04",
}


async def calls(wechat: Sandbox, channel: str, kind: str) -> int:
    """How many calls of one kind (as for `next_call`) the sandbox received."""
    if channel == "wechat":
        received = (await asyncio.to_thread(wechat.control, "GET", "/received")).json()
        return sum(
            q["method"] == "POST" and str(q["url"]).startswith(kind) for q in received["requests"]
        )
    seen = (await asyncio.to_thread(control, wechat, channel, "GET", "/requests")).json()
    if channel == "alipay":
        return sum(q.get("method") == kind for q in seen)
    return sum(q.get("fields", {}).get("txnType") == kind for q in seen)


async def taken_fen(wechat: Sandbox, channel: str, out_trade_nos: list[str]) -> int:
    """What the platform took from the customer for these attempts (whatever it gave back
    later): a payment charged twice shows here twice."""
    if channel == "wechat":
        payments = (await asyncio.to_thread(wechat.control, "GET", "/payments")).json()
        return sum(
            int(p["total"])
            for p in payments
            if p["out_trade_no"] in out_trade_nos and p["trade_state"] in ("SUCCESS", "REFUND")
        )
    if channel == "alipay":
        trades = (await asyncio.to_thread(control, wechat, channel, "GET", "/trades")).json()
        return sum(
            _fen(t["total_amount"])
            for t in trades
            if t["out_trade_no"] in out_trade_nos
            and (
                t["trade_status"] in ("TRADE_SUCCESS", "TRADE_FINISHED")
                or _fen(t["refunded_amount"]) > 0
            )
        )
    txns = (await asyncio.to_thread(control, wechat, channel, "GET", "/transactions")).json()
    return sum(
        int(t["txnAmt"])
        for t in txns
        if t["txnType"] == "01" and t["orderId"] in out_trade_nos and t["result"] == "00"
    )


def _fen(yuan: str) -> int:
    whole, _, cents = yuan.partition(".")
    return int(whole) * 100 + int((cents + "00")[:2])


async def deliver(
    client: httpx.AsyncClient, channel: str, account_id: int, call: Received
) -> httpx.Response:
    """A callback the sandbox sent (to the receiver), handed as it was to our notify route."""
    if channel == "wechat":
        headers = {
            k: v
            for k, v in call.headers.items()
            if k.lower().startswith("wechatpay-") or k.lower() == "content-type"
        }
    else:
        kind = call.headers.get("Content-Type") or "application/x-www-form-urlencoded"
        headers = {"content-type": kind}
    return await client.post(
        f"/api/payments/notify/{channel}/{account_id}", content=call.body, headers=headers
    )


async def callbacks_of(wechat: Sandbox, channel: str, out_trade_no: str) -> list[Received]:
    """The callbacks the channel's sandbox sent (to the receiver) about one payment, once it
    has sent one. WeChat's are encrypted: every one it sent so far is handed back."""
    path = NOTIFY_PATH[channel]
    if channel == "wechat":
        return await asyncio.to_thread(wechat.receiver.wait_for, path, 1)
    name = "out_trade_no" if channel == "alipay" else "orderId"

    def about() -> list[Received]:
        return [
            c
            for c in wechat.receiver.at(path)
            if parse_qs(c.body.decode()).get(name) == [out_trade_no]
        ]

    for _ in range(400):
        if found := about():
            return found[:1]
        await asyncio.sleep(0.025)
    raise AssertionError(f"no callback about {out_trade_no} reached {path}")


async def refunds_sent(wechat: Sandbox, channel: str) -> list[tuple[str, int]]:
    """The refunds the platform was asked for: (our refund number, fen), as sent."""
    if channel == "wechat":
        received = (await asyncio.to_thread(wechat.control, "GET", "/received")).json()
        return [
            (body["out_refund_no"], body["amount"]["refund"])
            for body in (
                json.loads(q["body"])
                for q in received["requests"]
                if q["method"] == "POST" and q["url"] == "/v3/refund/domestic/refunds"
            )
        ]
    seen = (await asyncio.to_thread(control, wechat, channel, "GET", "/requests")).json()
    if channel == "alipay":
        out = []
        for q in seen:
            if q.get("method") == "alipay.trade.refund":
                biz = json.loads(q["params"]["biz_content"])
                out.append((biz["out_request_no"], _fen(biz["refund_amount"])))
        return out
    return [
        (q["fields"]["orderId"], int(q["fields"]["txnAmt"]))
        for q in seen
        if q.get("fields", {}).get("txnType") == "04"
    ]

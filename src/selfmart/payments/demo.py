"""Demo payments: `seed-demo`'s customers pay at the terminal with a payment code (or a card)
that goes to our sandboxes, through the very services a terminal's pay request and a refund go
through (`attempts.pay`, `refunds.send`, the refund query job's `settle_refund`), with the
sandboxes served in this process. So the payments list, the sandboxes' trades and bills (kept
under `payment_sandbox_dir`, see `selfmart.sandbox.store`) and the refunds of demo orders
agree, and the running server's sandbox knows every demo trade."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.config import Settings
from selfmart.iam.actor import Actor
from selfmart.models import Order, Refund
from selfmart.payments import accounts, attempts, sandboxes, tasks
from selfmart.payments.attempts import PayCommand

#: the in-process sandboxes' clock for retries and refund processing: a demo refund settles at
#: once, and the callbacks nobody is listening to (no server runs yet) give up at once
DEMO_TIME_SCALE = 1_000_000.0
#: how the demo's customers pay, by weight
CHANNEL_WEIGHTS = {"wechat": 50, "alipay": 35, "card": 15}
#: a WeChat refund is PROCESSING first: asked about this many times before it is left to the
#: refund query job
REFUND_QUERIES = 20


def sandbox_app(settings: Settings) -> FastAPI:
    """The payment sandboxes alone, on `settings`' directory (what `/sandbox/...` serves)."""
    from selfmart.sandbox import alipay, unionpay, wechatpay

    app = FastAPI()
    app.state.settings = settings
    app.include_router(wechatpay.router, prefix="/sandbox/wechatpay")
    app.include_router(alipay.router, prefix="/sandbox/alipay")
    app.include_router(unionpay.router, prefix="/sandbox/unionpay")
    return app


@dataclass(frozen=True)
class SandboxPayer:
    #: channel -> the sandbox's payment code (card number) that always succeeds
    codes: dict[str, str]

    def channel_for(self, r: random.Random) -> str:
        offered = [c for c in CHANNEL_WEIGHTS if c in self.codes]
        return r.choices(offered, weights=[CHANNEL_WEIGHTS[c] for c in offered])[0]

    async def pay(self, session: AsyncSession, order: Order, channel: str, actor: Actor) -> str:
        """The terminal `actor` takes the order's payment on `channel`; returns its state
        (paid, unless the sandbox was told otherwise). An answer that left it pending is
        followed by a query, as the terminal's poll would be."""
        answer = await attempts.pay(
            session,
            order_no=order.order_no,
            store_id=order.store_id,
            cmd=PayCommand(
                attempt_id=f"demo-{order.order_no}",
                channel=channel,
                mode="card" if channel == "card" else "code",
                auth_code=self.codes[channel],
            ),
            actor=actor,
        )
        if answer["state"] == "paying":
            return await attempts.refresh(session, int(answer["payment_id"]), actor=actor)
        return str(answer["state"])

    async def settle_refunds(self, session: AsyncSession, order_id: int, actor: Actor) -> None:
        """Ask the platform about the order's refunds still pending until they settle (as the
        refund query job would a minute later)."""
        pending = (
            await session.scalars(
                select(Refund.id).where(
                    Refund.order_id == order_id,
                    Refund.status == "pending",
                    Refund.account_id.is_not(None),
                )
            )
        ).all()
        for refund_id in pending:
            for _ in range(REFUND_QUERIES):
                if await tasks.settle_refund(session, refund_id, actor=actor):
                    break
                await asyncio.sleep(0.01)  # the sandbox's refund finishes on its own task


@asynccontextmanager
async def sandbox_payer(settings: Settings) -> AsyncIterator[SandboxPayer | None]:
    """While open, the platforms are asked in this process (`accounts.platform_http`); None
    when this server has no sandboxes (the demo then records manual payments)."""
    if not settings.payment_sandbox_enabled:
        yield None
        return
    from selfmart.sandbox.alipay.state import sandbox_for as alipay_sandbox
    from selfmart.sandbox.unionpay.state import sandbox_for as unionpay_sandbox
    from selfmart.sandbox.wechatpay.state import STATE as wechat_sandbox

    creds = sandboxes.credentials(settings)
    codes = {channel: str(c["test_auth_codes"]["success"]) for channel, c in creds.items()}
    demo_settings = settings.model_copy(update={"payment_sandbox_time_scale": DEMO_TIME_SCALE})
    app = sandbox_app(demo_settings)
    # No server is listening for the sandboxes' callbacks while the demo is seeded: they find
    # nobody at once (as they would at a closed port) instead of each opening a real client.
    nobody = httpx.MockTransport(_nobody_listening)
    notifiers = [alipay_sandbox(demo_settings).notifier, unionpay_sandbox(demo_settings).notifier]
    saved = (accounts.platform_http, wechat_sandbox.transport, [n.transport for n in notifiers])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), timeout=30) as http:
        accounts.platform_http = http
        wechat_sandbox.transport = nobody
        for n in notifiers:
            n.transport = nobody
        try:
            yield SandboxPayer(codes)
        finally:
            accounts.platform_http, wechat_sandbox.transport = saved[0], saved[1]
            for n, transport in zip(notifiers, saved[2], strict=True):
                n.transport = transport
            # the sandboxes' own clock back to the configured one
            alipay_sandbox(settings)
            unionpay_sandbox(settings)


def _nobody_listening(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("nobody listens while the demo is seeded", request=request)

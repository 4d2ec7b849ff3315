"""Refunds in three phases (payments.twophase) against the WeChat Pay sandbox: a process that
dies after the pending refund is committed but before the platform answers leaves a refund the
query job sends (once) and settles; a refund waiting on a slow platform holds no lock, and a
second refund racing it can never take more than what is left (real connections, PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.db import make_sessionmaker
from selfmart.iam.actor import job_actor
from selfmart.jobs import runtime
from selfmart.kit.time import utcnow
from selfmart.models import AuditLog, Order, OrderLine, Refund, Store
from selfmart.payments import tasks, twophase
from tests.builders import auth_headers, make_user
from tests.orders.builders import make_order, make_product
from tests.payments.test_callbacks import World, world
from tests.payments.test_terminal_pay import pay, setup
from tests.payments.wechatpay.support import Sandbox
from tests.support import settings_for
from tests.terminals.builders import make_active_terminal

__all__ = ["world"]  # the PostgreSQL fixture, shared with the callback tests

REFUNDS = "/v3/refund/domestic/refunds"


class Crash(Exception):
    """The process dying between phases: nothing after phase 1 runs."""


async def _refund_posts(wechat: Sandbox) -> list[dict[str, Any]]:
    received = (await asyncio.to_thread(wechat.control, "GET", "/received")).json()
    return [q for q in received["requests"] if q["method"] == "POST" and q["url"] == REFUNDS]


async def test_a_crash_between_phases_leaves_a_pending_refund_the_job_sends_and_settles(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_url: str,
    wechat: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, creds, order = await setup(session, wechat)
    codes = wechat.credentials()["test_auth_codes"]
    r = await pay(client, creds, order.order_no, auth_code=codes["success"])
    assert r.json()["state"] == "paid", r.text
    headers = await auth_headers(session, await make_user(session, role="super_admin"))

    async def crash(call: Callable[[], Awaitable[Any]]) -> Any:
        raise Crash

    monkeypatch.setattr(twophase, "_phase_two", crash)
    try:
        r = await client.post(
            f"/api/v1/orders/{order.id}/refunds",
            json={"full": True, "reason": "顾客退货"},
            headers=headers,
        )
        assert r.status_code == 500, r.text
    except Crash:
        pass
    monkeypatch.undo()

    # Phase 1 survived: the refund is recorded with its number, the units reserved, the
    # order waiting for the refund; the platform never heard of it.
    refund = await session.scalar(select(Refund).where(Refund.order_id == order.id))
    assert refund is not None
    assert (refund.status, refund.amount_fen) == ("pending", 700)
    assert refund.out_refund_no == f"{order.order_no}P01R01"
    assert refund.raw_response == {}
    await session.refresh(order)
    assert (order.status, order.refunded_fen) == ("refund_requested", 0)
    assert sum(x.refunded_qty for x in (await session.scalars(select(OrderLine))).all()) == 2
    assert await _refund_posts(wechat) == []
    audited = await session.scalar(
        select(AuditLog.id).where(
            AuditLog.action == "order.refund", AuditLog.entity_id == str(order.id)
        )
    )
    assert audited is not None

    async with runtime.running(settings_for(db_url), sessionmaker):
        # Moments old, its answer could still be on the way: the job leaves it alone.
        assert await tasks.pending_refunds(session) == []
        await session.execute(
            update(Refund)
            .where(Refund.id == refund.id)
            .values(created_at=utcnow() - timedelta(minutes=1))
        )
        await tasks.query_refunds(job_actor(tasks.QUERY_REFUNDS))  # sent: processing
        await asyncio.sleep(0.1)  # the sandbox settles it (its delay divided by the time scale)
        settled = await tasks.query_refunds(job_actor(tasks.QUERY_REFUNDS))
        assert settled == 1
        assert await tasks.query_refunds(job_actor(tasks.QUERY_REFUNDS)) == 0
    await session.refresh(refund)
    assert refund.status == "succeeded"
    assert refund.channel_refund_id
    await session.refresh(order)
    assert (order.status, order.refunded_fen) == ("refunded", 700)
    posts = await _refund_posts(wechat)
    assert len(posts) == 1, posts


async def test_a_refund_the_platform_never_answered_is_sent_again_under_its_number(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_url: str,
    wechat: Sandbox,
) -> None:
    """The platform answers 500 after taking the refund: unknown, so pending; sent again by
    the job under the same out_refund_no, the platform finds the same refund (money back
    once)."""
    _, creds, order = await setup(session, wechat)
    codes = wechat.credentials()["test_auth_codes"]
    r = await pay(client, creds, order.order_no, auth_code=codes["success"])
    assert r.json()["state"] == "paid", r.text
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    queued = await asyncio.to_thread(
        wechat.control, "POST", "/next", json={"action": "error_500", "path_prefix": REFUNDS}
    )
    assert queued.status_code == 200, queued.text
    r = await client.post(
        f"/api/v1/orders/{order.id}/refunds",
        json={"full": True, "reason": "顾客退货"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "pending"
    refund = await session.scalar(select(Refund).where(Refund.order_id == order.id))
    assert refund is not None
    assert refund.failure_code  # why it is unknown
    await session.execute(
        update(Refund)
        .where(Refund.id == refund.id)
        .values(updated_at=utcnow() - timedelta(minutes=1))
    )
    async with runtime.running(settings_for(db_url), sessionmaker):
        await tasks.query_refunds(job_actor(tasks.QUERY_REFUNDS))
        await asyncio.sleep(0.1)
        await tasks.query_refunds(job_actor(tasks.QUERY_REFUNDS))
    await session.refresh(refund)
    assert refund.status == "succeeded"
    await session.refresh(order)
    assert (order.status, order.refunded_fen) == ("refunded", 700)
    refunds = (await session.scalars(select(Refund).where(Refund.order_id == order.id))).all()
    assert len(refunds) == 1
    posts = await _refund_posts(wechat)
    assert len(posts) == 2  # the first (answered 500) and the job's, both R01
    assert all(f"{order.order_no}P01R01" in json.dumps(q) for q in posts)


@pytest.mark.postgres_only
async def test_a_refund_waiting_on_the_platform_holds_no_lock_and_cannot_be_exceeded(
    world: World, wechat: Sandbox
) -> None:
    """The platform takes two seconds to answer the first refund; meanwhile a second refund of
    more than what is left is refused at once (it does not wait for the first), and the money
    goes back once."""
    factory = make_sessionmaker(world.engine)
    async with factory() as s:
        store = await s.get(Store, world.store_id)
        assert store is not None
        cola = await make_product(s, stores=[store], price_fen=350)
        creds = await make_active_terminal(s, store)
        order = await make_order(s, store, [(cola, 3)], terminal=creds.terminal)
        user = await make_user(s, role="super_admin")
        headers = await auth_headers(s, user)
        await s.commit()
        order_id, order_no = order.id, order.order_no
    codes = wechat.credentials()["test_auth_codes"]
    r = await pay(world.client, creds, order_no, auth_code=codes["success"])
    assert r.json()["state"] == "paid", r.text
    async with factory() as s:
        line_id = await s.scalar(select(OrderLine.id).where(OrderLine.order_id == order_id))
    await asyncio.to_thread(
        wechat.control,
        "POST",
        "/next",
        json={"action": "timeout", "path_prefix": REFUNDS, "seconds": 2},
    )

    def refund(quantity: int) -> Awaitable[httpx.Response]:
        return world.client.post(
            f"/api/v1/orders/{order_id}/refunds",
            json={"lines": [{"line_id": line_id, "quantity": quantity}], "reason": "退货"},
            headers=headers,
        )

    first = asyncio.ensure_future(refund(2))
    for _ in range(100):  # until the platform has the first refund (phase 2)
        if await _refund_posts(wechat):
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the first refund never reached the platform")
    second = await refund(2)
    assert second.status_code == 409, second.text
    # says why: one refund at a time, the one with the platform settles first
    assert second.json()["error"] == "refund_in_progress", second.text
    assert not first.done()  # answered while the first still waits on the platform
    answered = await first
    assert answered.status_code == 201, answered.text
    async with factory() as s:
        refunds = (await s.scalars(select(Refund).where(Refund.order_id == order_id))).all()
        assert [(x.amount_fen, x.out_refund_no) for x in refunds] == [(700, f"{order_no}P01R01")]
        placed = await s.get(Order, order_id)
        assert placed is not None
        assert placed.paid_fen - placed.refunded_fen >= 350
    assert len(await _refund_posts(wechat)) == 1

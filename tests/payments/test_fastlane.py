"""The platform callbacks' fast lane (payments.fastlane): it answers good, forged, stale, unknown
and mismatched callbacks exactly as the notify route answers them without it, and writes the
same rows; concurrent callbacks are applied together (group commit), each on its own merits,
each answered only once committed, and a batch that fails is applied one by one."""

from __future__ import annotations

import asyncio
import json
import re
from collections import OrderedDict
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.db import make_sessionmaker
from selfmart.kit.time import utcnow
from selfmart.models import (
    AuditLog,
    Order,
    OrderEvent,
    OrderIssue,
    PaymentAccount,
    PaymentCallback,
    Store,
)
from selfmart.payments import callbacks_hot, fastlane, probe
from tests.orders.builders import make_order, make_product
from tests.payments.test_callbacks import (
    World,
    _account_id,
    _platform_callback,
    _replayable,
    world,
)
from tests.payments.test_callbacks_hot import _callback_for_qr_payment, _order_like, _written
from tests.payments.test_terminal_pay import pay, setup
from tests.payments.wechatpay.support import Sandbox
from tests.terminals.builders import make_active_terminal

__all__ = ["world"]  # the fixture, used here as in test_callbacks


@pytest.fixture(autouse=True)
def _fresh_accounts(monkeypatch: pytest.MonkeyPatch) -> None:
    # Accounts opened by earlier tests (ids are reused across test databases) start afresh.
    monkeypatch.setattr(callbacks_hot, "_OPENED", OrderedDict())


def _url(account_id: int) -> str:
    return f"/api/payments/notify/wechat/{account_id}"


def _answer(r: httpx.Response) -> tuple[Any, ...]:
    """Everything of an answer but its request id."""
    headers = sorted((k, v) for k, v in r.headers.items() if k != "x-request-id")
    return r.status_code, r.content, headers


def _through_the_route(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on no request takes the lane: the notify route answers every callback."""
    monkeypatch.setattr(fastlane, "_PATH", re.compile(r"(?!)"))


async def _records(session: AsyncSession) -> list[tuple[Any, ...]]:
    rows = (await session.scalars(select(PaymentCallback).order_by(PaymentCallback.id))).all()
    return [
        (r.account_id, r.verified, r.outcome, r.reason, r.kind, r.status, r.amount_fen)
        for r in rows
    ]


async def test_the_lane_answers_and_writes_as_the_route_does(
    client: httpx.AsyncClient,
    session: AsyncSession,
    wechat: Sandbox,
    app: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, creds, lane_order = await setup(session, wechat)
    route_order = await _order_like(session, lane_order, creds)
    account_id = await _account_id(session)

    async def pending(attempt: str) -> str:
        order = await _order_like(session, lane_order, creds)
        r = await pay(client, creds, order.order_no, mode="qr", attempt_id=attempt)
        assert r.status_code == 201, r.text
        return str(r.json()["out_trade_no"])

    # Refused without a change: the very same requests go to the lane and to the route.
    no = await pending("S1")
    body, headers = _platform_callback(wechat, no)
    refused_alike = [
        ("forged", _url(account_id), body.replace(b'"', b"'", 1), headers),
        ("stale", _url(account_id), *_platform_callback(wechat, no, age=timedelta(hours=1))),
        ("unknown account", _url(999_999), body, headers),
        ("unknown number", _url(account_id), *_platform_callback(wechat, "NOSUCHORDER01")),
    ]

    async def cases(attempt: str) -> list[tuple[str, str, bytes, dict[str, str]]]:
        # An amount not ours opens an issue on its order: one order each.
        no = await pending(attempt)
        one_fen_off = _platform_callback(wechat, no, amount_fen=701)
        return [*refused_alike, ("a fen off", _url(account_id), *one_fen_off)]

    good: list[tuple[Any, ...]] = []
    refused: list[tuple[Any, ...]] = []
    names: list[str] = []
    lane_batches: list[int] = []
    for through_route in (False, True):
        if through_route:
            _through_the_route(monkeypatch)
        order, attempt = (route_order, "R") if through_route else (lane_order, "L")
        call = await _callback_for_qr_payment(client, wechat, creds, order, attempt=attempt + "1")
        r = await client.post(_url(account_id), content=call.body, headers=_replayable(call))
        good.append(_answer(r))
        for name, url, body, headers in await cases(attempt + "2"):
            names.append(name)
            refused.append(_answer(await client.post(url, content=body, headers=headers)))
        batches = list(app.state.callback_batcher.sizes)
        # the lane wrote the good one and tried those it could verify; the route, none
        assert batches[0] == 1 if not through_route else batches == lane_batches
        lane_batches = batches

    assert good[0] == good[1]
    assert good[0][0] == 204
    n = len(refused) // 2
    for name, lane, route in zip(names[:n], refused[:n], refused[n:], strict=True):
        assert lane == route, name
        # refused (the platform tries again); an amount not ours is taken (an abnormal order)
        assert lane[0] == 204 if name == "a fen off" else lane[0] >= 400, name
    assert await _written(session, lane_order) == await _written(session, route_order)
    records = [r for r in await _records(session) if r[2] != "applied"]
    assert records[:n] == records[n:]
    assert [r[1:3] for r in records[:n]] == [
        (False, "rejected"),
        (False, "rejected"),
        (False, "rejected"),
        (True, "unmatched"),
        (True, "mismatch"),
    ]


async def test_a_callback_the_lane_did_not_apply_takes_the_full_path_once(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    """An account edited since it was opened: the lane's statement applies nothing, the route
    reads the row again and applies it (one record, one payment)."""
    _, creds, first = await setup(session, wechat)
    second = await _order_like(session, first, creds)
    account_id = await _account_id(session)
    call = await _callback_for_qr_payment(client, wechat, creds, first, attempt="E1")
    r = await client.post(_url(account_id), content=call.body, headers=_replayable(call))
    assert r.status_code == 204, r.text
    await session.execute(
        update(PaymentAccount)
        .where(PaymentAccount.id == account_id)
        .values(updated_at=utcnow() + timedelta(seconds=1))
    )
    call = await _callback_for_qr_payment(client, wechat, creds, second, attempt="E2")
    r = await client.post(_url(account_id), content=call.body, headers=_replayable(call))
    assert r.status_code == 204, r.text
    written = await _written(session, second)
    assert written["order"][:2] == ("paid", 700)
    assert [r[3] for r in written["records"]] == ["applied"]


# --- group commit: real concurrent connections (PostgreSQL) -------------------------------------


async def _pending_orders(world: World, n: int) -> tuple[list[int], list[str]]:
    """n orders of 7.00, each with a pending QR attempt: their ids and our numbers."""
    factory = make_sessionmaker(world.engine)
    async with factory() as s:
        store = await s.get(Store, world.store_id)
        assert store is not None
        cola = await make_product(s, stores=[store], price_fen=350)
        creds = await make_active_terminal(s, store)
        orders = [
            await make_order(s, store, [(cola, 2)], terminal=creds.terminal) for _ in range(n)
        ]
        await s.commit()
    numbers = []
    for i, order in enumerate(orders):
        r = await pay(world.client, creds, order.order_no, mode="qr", attempt_id=f"G{i}")
        assert r.status_code == 201, r.text
        numbers.append(r.json()["out_trade_no"])
    return [o.id for o in orders], numbers


@pytest.mark.postgres_only
async def test_callbacks_at_once_are_applied_together_each_on_its_merits(
    world: World, wechat: Sandbox
) -> None:
    ids, numbers = await _pending_orders(world, 5)
    # (which order, the callback): one for each of four, ten copies of the first, and one
    # for the fifth whose amount is not ours
    calls = [(i, _platform_callback(wechat, numbers[i])) for i in range(4)]
    calls += [calls[0]] * 9
    calls.append((4, _platform_callback(wechat, numbers[4], amount_fen=701)))
    factory = make_sessionmaker(world.engine)

    async def deliver(i: int, call: tuple[bytes, dict[str, str]]) -> tuple[int, str | None]:
        r = await world.client.post(_url(world.account_id), content=call[0], headers=call[1])
        # answered => committed: another connection sees at once what the answer says
        async with factory() as s:
            status = await s.scalar(select(Order.status).where(Order.id == ids[i]))
        return r.status_code, status

    answers = await asyncio.gather(*(deliver(i, call) for i, call in calls))
    assert [a[0] for a in answers] == [204] * 14, answers
    assert all(status == "paid" for _, status in answers[:13])
    assert answers[13][1] == "awaiting_payment"

    async with factory() as s:
        orders = {o.id: o for o in (await s.scalars(select(Order).where(Order.id.in_(ids)))).all()}
        assert [(orders[i].status, orders[i].paid_fen) for i in ids] == [("paid", 700)] * 4 + [
            ("awaiting_payment", 0)
        ]
        issue = await s.scalar(select(OrderIssue.kind).where(OrderIssue.order_id == ids[4]))
        assert issue == "amount_mismatch"
        outcomes = (
            await s.scalars(
                select(PaymentCallback.outcome)
                .where(PaymentCallback.order_id == ids[0])
                .order_by(PaymentCallback.outcome)
            )
        ).all()
        assert list(outcomes) == ["applied"] + ["duplicate"] * 9
    sizes = world.client._transport.app.state.callback_batcher.sizes  # type: ignore[attr-defined]
    assert max(sizes) > 1, sizes  # some were written together


@pytest.mark.postgres_only
async def test_a_batch_that_fails_is_applied_one_by_one(
    world: World, wechat: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One callback that the batch statement cannot write (here: a notification id too long
    for its column, made so after verification) sinks its batch; the others are then applied
    each alone, and it is left to the full path, which applies it."""
    ids, numbers = await _pending_orders(world, 4)
    real = callbacks_hot.verify

    def spoiled(*args: Any, **kwargs: Any) -> Any:
        item = real(*args, **kwargs)
        if item is not None and item.out_trade_no == numbers[2]:
            item.record["notification_id"] = "x" * 500
        return item

    monkeypatch.setattr(callbacks_hot, "verify", spoiled)
    factory = make_sessionmaker(world.engine)
    async with factory() as s:
        items = []
        for no in numbers:
            body, headers = _platform_callback(wechat, no)
            prepared = await callbacks_hot.prepare(
                s, channel="wechat", account_id=world.account_id, headers=headers, body=body
            )
            assert prepared is not None
            items.append(prepared)
    batcher = fastlane.Batcher(factory)
    applied = await asyncio.gather(*(batcher.submit(item) for item in items))
    assert applied == [True, True, False, True]
    assert list(batcher.sizes) == [4]
    async with factory() as s:
        statuses = (
            await s.scalars(select(Order.status).where(Order.id.in_(ids)).order_by(Order.id))
        ).all()
        assert list(statuses) == ["paid", "paid", "awaiting_payment", "paid"]

    monkeypatch.setattr(callbacks_hot, "verify", real)
    body, headers = _platform_callback(wechat, numbers[2])
    r = await world.client.post(_url(world.account_id), content=body, headers=headers)
    assert r.status_code == 204, r.text
    async with factory() as s:
        assert await s.scalar(select(Order.status).where(Order.id == ids[2])) == "paid"
        outcomes = (
            await s.scalars(
                select(PaymentCallback.outcome).where(PaymentCallback.order_id.in_(ids))
            )
        ).all()
        assert sorted(outcomes) == ["applied"] * 4


@pytest.mark.postgres_only
async def test_callbacks_arriving_together_on_a_cold_process_open_the_account_once(
    world: World, wechat: Sandbox, openings: list[int]
) -> None:
    """The first callbacks after a start (nothing opened yet) wait for one of them to open
    the account (a pooled connection, the keys loaded) and then use it, rather than each
    opening it on a connection of its own."""
    ids, numbers = await _pending_orders(world, 6)  # (the terminal's pay opens it too)
    callbacks_hot._OPENED.clear()
    openings.clear()
    calls = [_platform_callback(wechat, no) for no in numbers]
    answers = await asyncio.gather(
        *(world.client.post(_url(world.account_id), content=b, headers=h) for b, h in calls)
    )
    assert [a.status_code for a in answers] == [204] * 6, [a.text for a in answers]
    assert openings == [world.account_id]
    async with make_sessionmaker(world.engine)() as s:
        paid = await s.scalars(select(Order.status).where(Order.id.in_(ids)))
        assert list(paid) == ["paid"] * 6


@pytest.mark.postgres_only
async def test_ten_copies_at_once_open_the_account_once(
    world: World, wechat: Sandbox, openings: list[int]
) -> None:
    """Ten copies of one notification at once on a cold process: one opening serves them all,
    the nine not applied (duplicates, by the full path) keep it, and the order changes once."""
    ids, numbers = await _pending_orders(world, 2)
    callbacks_hot._OPENED.clear()
    openings.clear()
    call = _platform_callback(wechat, numbers[0])
    answers = await asyncio.gather(
        *(
            world.client.post(_url(world.account_id), content=call[0], headers=call[1])
            for _ in range(10)
        )
    )
    assert [a.status_code for a in answers] == [204] * 10, [a.text for a in answers]
    # and the next callback of the account still finds it opened
    other = _platform_callback(wechat, numbers[1])
    r = await world.client.post(_url(world.account_id), content=other[0], headers=other[1])
    assert r.status_code == 204, r.text
    assert openings == [world.account_id]
    async with make_sessionmaker(world.engine)() as s:
        statuses = await s.scalars(select(Order.status).where(Order.id.in_(ids)))
        assert list(statuses) == ["paid", "paid"]
        outcomes = (
            await s.scalars(
                select(PaymentCallback.outcome).where(PaymentCallback.order_id == ids[0])
            )
        ).all()
        assert sorted(outcomes) == ["applied"] + ["duplicate"] * 9
        paid_events = await s.scalar(
            select(func.count())
            .select_from(OrderEvent)
            .where(OrderEvent.order_id == ids[0], OrderEvent.to_status == "paid")
        )
        assert paid_events == 1


@pytest.mark.postgres_only
async def test_the_probe_times_each_stage_of_the_lane_when_asked(
    world: World, wechat: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    app = world.client._transport.app  # type: ignore[attr-defined]
    _, numbers = await _pending_orders(world, 3)
    call = _platform_callback(wechat, numbers[0])
    # off (the default): nothing timed, no file
    assert app.state.settings.callback_probe is None
    r = await world.client.post(_url(world.account_id), content=call[0], headers=call[1])
    assert r.status_code == 204
    path = tmp_path / "probe.json"
    monkeypatch.setattr(app.state.settings, "callback_probe", path)
    calls = [_platform_callback(wechat, no) for no in numbers[1:]]
    answers = await asyncio.gather(
        *(world.client.post(_url(world.account_id), content=b, headers=h) for b, h in calls)
    )
    assert [a.status_code for a in answers] == [204, 204]
    timer = probe.for_path(path)
    assert timer is not None
    timer.dump()
    found = json.loads(path.read_text())
    assert found["callbacks"] == 2
    stages = found["stages"]
    for stage in ("rate_limit", "body", "verify", "queue", "wake", "answer", "lane_total"):
        assert stages[stage]["n"] == 2, stage
    assert stages["statement"]["n"] >= 1
    assert stages["lane_total"]["max_ms"] >= stages["statement"]["max_ms"] > 0


async def test_callbacks_applied_together_keep_their_own_requests_context(
    world: World, wechat: Sandbox
) -> None:
    """The lane applies callbacks in a drain of its own, outside their requests: each one's
    audit entry still carries its own request's id and address, and its record the headers
    verification reads (and only those), as the full path keeps them."""
    ids, numbers = await _pending_orders(world, 3)
    calls = [_platform_callback(wechat, no) for no in numbers]
    sent = [
        {**headers, "X-Request-ID": f"cb-{i}", "X-Unrelated": "not kept"}
        for i, (_, headers) in enumerate(calls)
    ]
    answers = await asyncio.gather(
        *(
            world.client.post(_url(world.account_id), content=body, headers=headers)
            for (body, _), headers in zip(calls, sent, strict=True)
        )
    )
    assert [r.status_code for r in answers] == [204] * 3
    assert world.client._transport.app.state.callback_batcher.sizes  # type: ignore[attr-defined]
    async with make_sessionmaker(world.engine)() as s:
        for i, order_id in enumerate(ids):
            entry = await s.scalar(
                select(AuditLog).where(
                    AuditLog.action == "order.pay", AuditLog.entity_id == str(order_id)
                )
            )
            assert entry is not None
            assert (entry.request_id, entry.ip) == (f"cb-{i}", "127.0.0.1")
            record = await s.scalar(
                select(PaymentCallback).where(PaymentCallback.order_id == order_id)
            )
            assert record is not None
            assert record.outcome == "applied"
            wanted = {
                k.lower(): v
                for k, v in sent[i].items()
                if k.lower().startswith("wechatpay-") or k.lower() == "content-type"
            }
            assert {k: v for k, v in record.headers.items() if k != "user-agent"} == wanted
            assert record.headers["user-agent"].startswith("python-httpx/")

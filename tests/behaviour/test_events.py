"""POST /api/terminal/v1/events (signed batches of business events) and the console's
business log: idempotent per event id, all-or-nothing batches with per-index reasons,
bounded batches, a per-terminal rate limit, store-scoped search and export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.behaviour.schemas import MAX_BATCH
from selfmart.iam.permissions import Perm
from selfmart.models import BehaviourEvent
from tests.builders import auth_headers, make_role, make_store, make_user
from tests.terminals.builders import Credentials, make_active_terminal

URL = "/api/terminal/v1/events"
LOG = "/api/v1/business-logs"
T0 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def visit(prefix: str, t0: datetime = T0) -> list[dict[str, Any]]:
    """One customer's visit: scans, a removal, checkout, a failed then a tried payment."""
    at = [(t0 + timedelta(seconds=10 * i)).isoformat() for i in range(7)]
    s = f"{prefix}-S1"
    return [
        {"event_id": f"{prefix}-1", "kind": "session_start", "occurred_at": at[0], "session_id": s},
        {
            "event_id": f"{prefix}-2",
            "kind": "scan",
            "occurred_at": at[1],
            "session_id": s,
            "barcode": "6901234567892",
            "qty": 2,
        },
        {
            "event_id": f"{prefix}-3",
            "kind": "removal",
            "occurred_at": at[2],
            "session_id": s,
            "barcode": "6901234567892",
            "qty": 1,
        },
        {
            "event_id": f"{prefix}-4",
            "kind": "checkout",
            "occurred_at": at[3],
            "session_id": s,
            "order_no": "2611300000000001",
            "amount_fen": 350,
        },
        {
            "event_id": f"{prefix}-5",
            "kind": "payment_failure",
            "occurred_at": at[4],
            "session_id": s,
            "order_no": "2611300000000001",
            "amount_fen": 350,
            "method": "wechat",
            "reason": "余额不足",
            "data": {"error_code": "NOTENOUGH"},
        },
        {
            "event_id": f"{prefix}-6",
            "kind": "payment_attempt",
            "occurred_at": at[5],
            "session_id": s,
            "order_no": "2611300000000001",
            "amount_fen": 350,
            "method": "alipay",
        },
        {"event_id": f"{prefix}-7", "kind": "abandonment", "occurred_at": at[6], "reason": "idle"},
    ]


async def send(
    client: httpx.AsyncClient, creds: Credentials, events: list[dict[str, Any]]
) -> httpx.Response:
    body, headers = creds.signed_json("POST", URL, {"events": events})
    return await client.post(URL, content=body, headers=headers)


async def count(session: AsyncSession, terminal_id: int) -> int:
    n = await session.scalar(select(func.count()).where(BehaviourEvent.terminal_id == terminal_id))
    return n or 0


async def test_a_batch_is_stored_and_a_resent_batch_doubles_nothing(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    store = await make_store(session)
    creds = await make_active_terminal(session, store)
    events = visit("A")
    r = await send(client, creds, events)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 7, "duplicates": 0}

    # the answer was lost: the terminal sends the same batch again, plus one new event
    more = [*events, {**events[0], "event_id": "A-8"}]
    r = await send(client, creds, more)
    assert r.json() == {"accepted": 1, "duplicates": 7}
    assert await count(session, creds.terminal.id) == 8

    rows = (
        await session.scalars(
            select(BehaviourEvent)
            .where(BehaviourEvent.terminal_id == creds.terminal.id)
            .order_by(BehaviourEvent.event_id)
        )
    ).all()
    failure = next(e for e in rows if e.kind == "payment_failure")
    assert failure.store_id == store.id
    assert (failure.amount_fen, failure.method, failure.reason) == (350, "wechat", "余额不足")
    assert failure.data == {"error_code": "NOTENOUGH"}
    assert failure.occurred_at == T0 + timedelta(seconds=40)

    # another terminal may use the same event ids: they are its own
    other = await make_active_terminal(session, store)
    r = await send(client, other, events[:2])
    assert r.json() == {"accepted": 2, "duplicates": 0}


@pytest.mark.parametrize(
    ("index", "change", "field"),
    [
        (1, {"kind": "stroll"}, "kind"),
        (1, {"barcode": None}, None),  # a scan without a barcode
        (3, {"amount_fen": 3.5}, "amount_fen"),  # money is integer fen
        (4, {"method": None}, None),
        (2, {"occurred_at": "2026-11-30 02:00:00"}, "occurred_at"),  # no zone
        (5, {"colour": "red"}, "colour"),
        (0, {"event_id": "has space"}, "event_id"),
    ],
)
async def test_a_bad_event_is_named_by_index_and_nothing_of_the_batch_is_written(
    session: AsyncSession,
    client: httpx.AsyncClient,
    index: int,
    change: dict[str, Any],
    field: str | None,
) -> None:
    creds = await make_active_terminal(session, await make_store(session))
    events = visit("B")
    events[index] = {**events[index], **change}
    r = await send(client, creds, events)
    assert r.status_code == 422, r.text
    [detail] = r.json()["details"]
    where = f"body.events.{index}"
    assert detail["field"] == (f"{where}.{field}" if field else where), detail
    assert await count(session, creds.terminal.id) == 0


async def test_batch_wide_problems_name_every_event(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    creds = await make_active_terminal(session, await make_store(session))
    events = visit("C", t0=datetime.now(UTC) - timedelta(minutes=1))
    events[3] = {**events[3], "event_id": "C-1"}
    events[5] = {**events[5], "occurred_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    r = await send(client, creds, events)
    assert r.status_code == 422, r.text
    assert [(d["field"], d["reason"]) for d in r.json()["details"]] == [
        ("events.3.event_id", "duplicate_in_batch"),
        ("events.5.occurred_at", "in_the_future"),
    ]
    assert await count(session, creds.terminal.id) == 0


async def test_batches_are_bounded_and_rate_limited_per_terminal(
    session: AsyncSession, client: httpx.AsyncClient, app: Any
) -> None:
    store = await make_store(session)
    creds = await make_active_terminal(session, store)
    one = visit("D")[0]
    too_many = [{**one, "event_id": f"D-{i}"} for i in range(MAX_BATCH + 1)]
    r = await send(client, creds, too_many)
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "body.events"
    r = await send(client, creds, [])
    assert r.status_code == 422
    assert await count(session, creds.terminal.id) == 0

    limit = app.state.settings.terminal_event_batches_per_minute
    for i in range(limit):  # refused batches above never reached the counter
        r = await send(client, creds, [{**one, "event_id": f"E-{i}"}])
        assert r.status_code == 200, r.text
    r = await send(client, creds, [{**one, "event_id": "E-over"}])
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert await count(session, creds.terminal.id) == limit
    # another terminal is counted on its own
    other = await make_active_terminal(session, store)
    assert (await send(client, other, [one])).status_code == 200


async def test_unsigned_batches_are_refused(client: httpx.AsyncClient) -> None:
    r = await client.post(URL, json={"events": visit("F")})
    assert r.status_code == 401


async def test_the_business_log_is_searched_scoped_and_exported(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    mine, other = await make_store(session), await make_store(session)
    a = await make_active_terminal(session, mine)
    b = await make_active_terminal(session, other)
    assert (await send(client, a, visit("G"))).status_code == 200
    assert (await send(client, b, visit("H"))).status_code == 200
    manager = await make_user(
        session, role=await make_role(session, [Perm.ANALYTICS_READ.value]), stores=[mine]
    )
    headers = await auth_headers(session, manager)

    r = await client.get(LOG, headers=headers, params={"size": 100})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert {i["terminal_id"] for i in items} == {a.terminal.id}  # the other store is not seen
    assert [i["event_id"] for i in items] == [f"G-{n}" for n in range(7, 0, -1)]  # newest first

    async def ids(**params: Any) -> list[str]:
        r = await client.get(LOG, headers=headers, params=params)
        assert r.status_code == 200, r.text
        return [i["event_id"] for i in r.json()["items"]]

    assert await ids(kind="payment_failure") == ["G-5"]
    assert await ids(q="余额") == ["G-5"]
    assert await ids(order_no="2611300000000001", kind="checkout") == ["G-4"]
    assert await ids(session_id="G-S1", since=(T0 + timedelta(seconds=50)).isoformat()) == ["G-6"]
    assert await ids(store_id=other.id) == []
    bad = await client.get(LOG, headers=headers, params={"kind": "stroll"})
    assert bad.status_code == 422

    r = await client.get(
        f"{LOG}/export",
        headers={**headers, "accept-language": "en"},
        params={"format": "csv", "kind": "scan"},
    )
    assert r.status_code == 200, r.text
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["Time", "Store ID", "Terminal ID", "Kind"]
    assert [(row[3], row[4], row[7]) for row in rows[1:]] == [("scan", "G-2", "6901234567892")]
    assert rows[1][0] == "2026-11-30 10:00:10"  # shown in the operator's zone (UTC+8)

    clerk = await make_user(session, role=await make_role(session, [Perm.ORDER_READ.value]))
    r = await client.get(LOG, headers=await auth_headers(session, clerk))
    assert r.status_code == 403

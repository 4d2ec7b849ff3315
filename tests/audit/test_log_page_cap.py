"""A year of logs keeps the log pages fast (bench/bench_logs.py): a page counts its matches up to
LOG_COUNT_CAP and then answers "more than" (total_capped), and the action filter's list is read
by a loose index scan. Both answer what the plain queries would, where those are still exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.iam.actor import Actor
from selfmart.kit import searchlog
from selfmart.kit.pagination import LOG_COUNT_CAP, PageParams, page_of, paginate
from selfmart.models import AuditLog
from tests.builders import auth_headers, make_store, make_user

from .helpers import add_entry

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
URL = "/api/v1/audit-logs"


def _rows(n: int, **fields: object) -> list[dict[str, object]]:
    return [
        {
            "occurred_at": T0 + timedelta(seconds=i),
            "actor_type": "terminal",
            "actor_id": "1",
            "actor_name": "POS-01",
            "action": "order.create",
            "entity_type": "order",
            "entity_id": str(i),
            "changes": {},
            **fields,
        }
        for i in range(n)
    ]


async def test_paginate_counts_up_to_the_cap_and_says_when_more_match(
    session: AsyncSession,
) -> None:
    for i in range(8):
        await add_entry(session, T0 + timedelta(minutes=i), action="cap.probe")
    stmt = select(AuditLog).where(AuditLog.action == "cap.probe").order_by(AuditLog.id.desc())
    params = PageParams(page=1, size=3)

    rows, total = await paginate(session, stmt, params, count_cap=5)
    page = page_of(rows, total, params, count_cap=5)
    assert (len(page.items), page.total, page.total_capped) == (3, 5, True)

    rows, total = await paginate(session, stmt, params, count_cap=8)  # exactly at the cap
    page = page_of(rows, total, params, count_cap=8)
    assert (page.total, page.total_capped) == (8, False)

    rows, total = await paginate(session, stmt, params)  # no cap: exact, as every other list
    assert (total, page_of(rows, total, params).total_capped) == (8, False)


async def test_the_log_page_says_more_than_the_cap_and_is_exact_below_it(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    store = await make_store(session)
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    await session.execute(insert(AuditLog), _rows(LOG_COUNT_CAP + 2))
    await session.execute(insert(AuditLog), _rows(3, action="order.pay", store_id=store.id))
    await session.flush()

    r = await client.get(URL, headers=headers, params={"size": 50})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["total"], body["total_capped"], len(body["items"])) == (LOG_COUNT_CAP, True, 50)
    newest = max(body["items"], key=lambda item: item["occurred_at"])
    assert body["items"][0] == newest  # still newest first

    r = await client.get(URL, headers=headers, params={"action": "order.pay"})
    assert r.status_code == 200, r.text
    assert (r.json()["total"], r.json()["total_capped"]) == (3, False)


async def test_the_action_list_is_every_distinct_action_the_actor_may_see(
    session: AsyncSession,
) -> None:
    a, b = await make_store(session), await make_store(session)
    await add_entry(session, T0, action="zeta.one", store_id=a.id)
    await add_entry(session, T0, action="alpha.two", store_id=b.id)
    await add_entry(session, T0, action="alpha.two", store_id=a.id)
    await add_entry(session, T0, action="mid.chain")  # no store: chain-wide
    everyone = Actor(kind="user", id=None, name="all", store_ids=None)
    only_a = Actor(kind="user", id=None, name="a", store_ids=frozenset({a.id}))
    nobody = Actor(kind="user", id=None, name="none", store_ids=frozenset())

    plain = select(AuditLog.action).distinct().order_by(AuditLog.action)
    assert await audit.actions(session, everyone) == list((await session.scalars(plain)).all())
    assert {"zeta.one", "alpha.two", "mid.chain"} <= set(await audit.actions(session, everyone))
    scoped = searchlog.scoped(plain, AuditLog.store_id, only_a.store_ids)
    assert await audit.actions(session, only_a) == list((await session.scalars(scoped)).all())
    assert "mid.chain" not in await audit.actions(session, only_a)
    assert await audit.actions(session, nobody) == []

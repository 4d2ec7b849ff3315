"""GET /audit-logs: filters, newest first, pagination, and store scoping in the query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.permissions import Perm
from tests.builders import auth_headers, make_role, make_store, make_user

from .helpers import add_entry

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
URL = "/api/v1/audit-logs"


async def _ids(
    client: httpx.AsyncClient, headers: dict[str, str], **params: str | int
) -> list[int]:
    r = await client.get(URL, headers=headers, params={"size": 200, **params})
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["items"]]


async def test_filters_each_narrow_the_result(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    store = await make_store(session)
    admin = await make_user(session)
    headers = await auth_headers(session, admin)
    a = await add_entry(session, T0, action="product.update", entity_id="10", store_id=store.id)
    b = await add_entry(
        session,
        T0 + timedelta(hours=1),
        action="product.create",
        actor_type="terminal",
        actor_id="3",
        actor_name="POS-上海-01",
        entity_type="order",
        entity_id="55",
        note="自助结账",
    )
    c = await add_entry(
        session,
        T0 + timedelta(hours=2),
        action="user.disable",
        entity_type="user",
        entity_id="10",
        request_id="req-abc-123",
    )
    mine = {a.id, b.id, c.id}

    def only(ids: list[int]) -> list[int]:
        return [i for i in ids if i in mine]

    assert only(await _ids(client, headers)) == [c.id, b.id, a.id]  # newest first
    assert only(await _ids(client, headers, action="product.update")) == [a.id]
    assert only(await _ids(client, headers, action="product.*")) == [b.id, a.id]
    assert only(await _ids(client, headers, actor_type="terminal")) == [b.id]
    assert only(await _ids(client, headers, actor_type="terminal", actor_id="3")) == [b.id]
    assert only(await _ids(client, headers, entity_type="user", entity_id="10")) == [c.id]
    assert only(await _ids(client, headers, entity_id="10")) == [c.id, a.id]
    assert await _ids(client, headers, store_id=store.id) == [a.id]
    since = (T0 + timedelta(minutes=30)).isoformat()
    until = (T0 + timedelta(hours=2)).isoformat()  # exclusive
    assert only(await _ids(client, headers, since=since, until=until)) == [b.id]
    assert only(await _ids(client, headers, q="上海")) == [b.id]  # actor name
    assert only(await _ids(client, headers, q="自助")) == [b.id]  # note
    assert only(await _ids(client, headers, q="REQ-ABC")) == [c.id]  # request id, any case
    assert only(await _ids(client, headers, q="100%")) == []  # % is text, not a wildcard

    r = await client.get(URL, headers=headers, params={"store_id": store.id})
    item = r.json()["items"][0]
    assert item == {
        "id": a.id,
        "occurred_at": "2026-03-01T12:00:00Z",
        "actor_type": "user",
        "actor_id": "7",
        "actor_name": "alice",
        "action": "product.update",
        "entity_type": "product",
        "entity_id": "10",
        "entity_label": None,
        "store_id": store.id,
        "changes": {},
        "note": None,
        "ip": "203.0.113.9",
        "request_id": None,
    }


async def test_pagination_counts_the_whole_filter(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    store = await make_store(session)
    headers = await auth_headers(session, await make_user(session))
    entries = [
        await add_entry(session, T0 + timedelta(minutes=i), store_id=store.id) for i in range(5)
    ]
    newest_first = [e.id for e in reversed(entries)]
    r1 = await client.get(URL, headers=headers, params={"store_id": store.id, "size": 2})
    r3 = await client.get(URL, headers=headers, params={"store_id": store.id, "size": 2, "page": 3})
    assert r1.json()["total"] == 5
    assert [i["id"] for i in r1.json()["items"]] == newest_first[:2]
    assert [i["id"] for i in r3.json()["items"]] == newest_first[4:]
    assert (r3.json()["page"], r3.json()["size"]) == (3, 2)


async def test_store_scoped_reader_sees_only_their_stores(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    mine, other = await make_store(session), await make_store(session)
    role = await make_role(session, [Perm.AUDIT_READ])
    reader = await make_user(session, role=role, stores=[mine])
    headers = await auth_headers(session, reader)
    in_mine = await add_entry(session, T0, store_id=mine.id)
    in_other = await add_entry(session, T0, store_id=other.id)
    storeless = await add_entry(session, T0, store_id=None, action="role.update")

    seen = await _ids(client, headers)
    assert in_mine.id in seen
    assert in_other.id not in seen
    assert storeless.id not in seen  # store-less entries are for all-store actors only
    assert await _ids(client, headers, store_id=other.id) == []
    r = await client.get(URL, headers=headers, params={"size": 200})
    assert r.json()["total"] == len(seen)

    everything = await auth_headers(session, await make_user(session))  # super admin
    seen_all = await _ids(client, everything)
    assert {in_mine.id, in_other.id, storeless.id} <= set(seen_all)


async def test_reader_without_stores_sees_nothing(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    role = await make_role(session, [Perm.AUDIT_READ])
    headers = await auth_headers(session, await make_user(session, role=role, stores=[]))
    await add_entry(session, T0, store_id=(await make_store(session)).id)
    await add_entry(session, T0, store_id=None)
    r = await client.get(URL, headers=headers)
    assert r.json()["total"] == 0


async def test_bad_filters_are_422_naming_the_field(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    headers = await auth_headers(session, await make_user(session))
    r = await client.get(
        URL,
        headers=headers,
        params={"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"},
    )
    assert r.status_code == 422
    assert [d["field"] for d in r.json()["details"]] == ["until"]

    r = await client.get(URL, headers=headers, params={"since": "2026-03-02T00:00:00"})
    assert r.status_code == 422  # a time without a zone is ambiguous
    assert r.json()["details"][0]["field"] == "query.since"

    r = await client.get(URL, headers=headers, params={"store_id": "abc", "size": 500})
    assert r.status_code == 422
    assert {d["field"] for d in r.json()["details"]} == {"query.store_id", "query.size"}


async def test_needs_login_and_audit_read(session: AsyncSession, client: httpx.AsyncClient) -> None:
    assert (await client.get(URL)).status_code == 401
    assert (await client.get(f"{URL}/export")).status_code == 401
    cashier = await make_user(session, role="cashier", stores=[await make_store(session)])
    headers = await auth_headers(session, cashier)
    assert (await client.get(URL, headers=headers)).status_code == 403
    assert (await client.get(f"{URL}/export", headers=headers)).status_code == 403

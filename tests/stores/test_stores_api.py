"""Stores over HTTP: CRUD, validation naming the field, scoping to the actor's stores, audit."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import AuditLog, Store

from ..builders import auth_headers, make_role, make_store, make_user
from ..terminals.builders import make_terminal


async def _count(session: AsyncSession, model: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _super(session: AsyncSession) -> dict[str, str]:
    return await auth_headers(session, await make_user(session, role="super_admin"))


async def test_create_get_list_update(client: httpx.AsyncClient, session: AsyncSession) -> None:
    headers = await _super(session)
    r = await client.post(
        "/api/v1/stores",
        json={
            "code": "SH009",
            "name": "徐家汇自助店",
            "city": "上海",
            "address": "上海市徐汇区漕溪北路 1 号",
            "phone": "021-5555 0000",
            "opening_hours": "22:00-06:00",
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["code"] == "SH009"
    assert created["timezone"] == "Asia/Shanghai"
    assert created["status"] == "active"
    assert created["allow_negative_stock"] is True
    assert created["terminal_count"] == 0
    sid = created["id"]

    store = await session.get(Store, sid)
    assert store is not None
    await make_terminal(session, store)
    r = await client.get(f"/api/v1/stores/{sid}", headers=headers)
    assert r.status_code == 200
    assert r.json()["terminal_count"] == 1

    r = await client.get("/api/v1/stores", params={"q": "徐家汇"}, headers=headers)
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 1
    assert page["page"] == 1
    assert page["items"][0]["id"] == sid

    r = await client.patch(
        f"/api/v1/stores/{sid}",
        json={"status": "suspended", "timezone": "Asia/Urumqi", "opening_hours": "24h"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["timezone"], body["opening_hours"]) == (
        "suspended",
        "Asia/Urumqi",
        "24h",
    )
    assert body["name"] == "徐家汇自助店"  # untouched

    entries = (
        await session.scalars(
            select(AuditLog).where(AuditLog.entity_type == "store", AuditLog.entity_id == str(sid))
        )
    ).all()
    assert [e.action for e in entries] == ["store.create", "store.update"]
    assert entries[1].changes["status"] == {"before": "active", "after": "suspended"}
    assert "name" not in entries[1].changes
    assert entries[1].store_id == sid


async def test_list_filters(client: httpx.AsyncClient, session: AsyncSession) -> None:
    headers = await _super(session)
    a = await make_store(session, city="苏州", status="active")
    b = await make_store(session, city="苏州", status="closed")
    await make_store(session, city="无锡")
    r = await client.get("/api/v1/stores", params={"city": "苏州"}, headers=headers)
    assert {s["id"] for s in r.json()["items"]} == {a.id, b.id}
    r = await client.get(
        "/api/v1/stores", params={"city": "苏州", "status": "closed"}, headers=headers
    )
    assert [s["id"] for s in r.json()["items"]] == [b.id]
    r = await client.get("/api/v1/stores", params={"status": "bogus"}, headers=headers)
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "query.status"


async def test_q_is_not_a_pattern(client: httpx.AsyncClient, session: AsyncSession) -> None:
    headers = await _super(session)
    await make_store(session, name="plain")
    r = await client.get("/api/v1/stores", params={"q": "%"}, headers=headers)
    assert r.json()["total"] == 0


async def test_duplicate_code_is_409_naming_code(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await _super(session)
    await make_store(session, code="DUP01")
    other = await make_store(session, code="DUP02")
    before = (await _count(session, Store), await _count(session, AuditLog))
    r = await client.post("/api/v1/stores", json={"code": "DUP01", "name": "x"}, headers=headers)
    assert r.status_code == 409
    assert r.json()["error"] == "already_exists"
    assert r.json()["details"][0]["field"] == "code"
    r = await client.patch(f"/api/v1/stores/{other.id}", json={"code": "DUP01"}, headers=headers)
    assert r.status_code == 409
    assert r.json()["details"][0]["field"] == "code"
    assert (await _count(session, Store), await _count(session, AuditLog)) == before


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"code": "X1", "name": "n", "timezone": "Mars/Olympus"}, "body.timezone"),
        ({"code": "X1", "name": "n", "timezone": "../../etc/passwd"}, "body.timezone"),
        ({"code": "X1", "name": "n", "opening_hours": "9-5"}, "body.opening_hours"),
        ({"code": "X1", "name": "n", "opening_hours": "24:00-06:00"}, "body.opening_hours"),
        ({"code": "X1", "name": "n", "opening_hours": "08:00-08:00"}, "body.opening_hours"),
        ({"code": "X1", "name": "n", "status": "open"}, "body.status"),
        ({"code": "has space", "name": "n"}, "body.code"),
        ({"code": "X" * 33, "name": "n"}, "body.code"),
        ({"code": "X1", "name": ""}, "body.name"),
        ({"code": "X1"}, "body.name"),
        ({"code": "X1", "name": "n", "phone": "call me"}, "body.phone"),
        ({"code": "X1", "name": "n", "allow_negative_stock": "maybe"}, "body.allow_negative_stock"),
        ({"code": "X1", "name": "n", "owner": "me"}, "body.owner"),
    ],
)
async def test_bad_create_is_422_naming_field_and_writes_nothing(
    client: httpx.AsyncClient, session: AsyncSession, payload: dict[str, Any], field: str
) -> None:
    headers = await _super(session)
    before = (await _count(session, Store), await _count(session, AuditLog))
    r = await client.post("/api/v1/stores", json=payload, headers=headers)
    assert r.status_code == 422, r.text
    assert field in [d["field"] for d in r.json()["details"]]
    assert (await _count(session, Store), await _count(session, AuditLog)) == before


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": None}, "body.name"),
        ({"timezone": None}, "body.timezone"),
        ({"timezone": "Nowhere/City"}, "body.timezone"),
        ({"opening_hours": "25:00-26:00"}, "body.opening_hours"),
        ({"status": None}, "body.status"),
    ],
)
async def test_bad_update_is_422_and_changes_nothing(
    client: httpx.AsyncClient, session: AsyncSession, payload: dict[str, Any], field: str
) -> None:
    headers = await _super(session)
    store = await make_store(session, name="unchanged")
    r = await client.patch(f"/api/v1/stores/{store.id}", json=payload, headers=headers)
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == field
    await session.refresh(store)
    assert (store.name, store.timezone, store.status) == ("unchanged", "Asia/Shanghai", "active")


async def test_malformed_json_and_huge_id(client: httpx.AsyncClient, session: AsyncSession) -> None:
    headers = await _super(session)
    r = await client.post(
        "/api/v1/stores",
        content=b"{not json",
        headers={**headers, "content-type": "application/json"},
    )
    assert r.status_code == 422
    r = await client.get("/api/v1/stores/99999999999999999999", headers=headers)
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "path.store_id"
    r = await client.get("/api/v1/stores/2147483647", headers=headers)
    assert r.status_code == 404
    assert r.json()["error"] == "store_not_found"


async def test_admin_sees_only_own_stores(client: httpx.AsyncClient, session: AsyncSession) -> None:
    mine = await make_store(session, name="mine")
    theirs = await make_store(session, name="theirs")
    admin = await make_user(session, role="admin", stores=[mine])
    headers = await auth_headers(session, admin)

    r = await client.get("/api/v1/stores", params={"size": 200}, headers=headers)
    assert r.status_code == 200
    assert [s["id"] for s in r.json()["items"]] == [mine.id]
    assert r.json()["total"] == 1

    assert (await client.get(f"/api/v1/stores/{mine.id}", headers=headers)).status_code == 200
    r = await client.get(f"/api/v1/stores/{theirs.id}", headers=headers)
    assert r.status_code == 404


async def test_writing_needs_store_write(client: httpx.AsyncClient, session: AsyncSession) -> None:
    mine = await make_store(session)
    admin = await make_user(session, role="admin", stores=[mine])
    headers = await auth_headers(session, admin)
    r = await client.post("/api/v1/stores", json={"code": "NOPE1", "name": "x"}, headers=headers)
    assert r.status_code == 403
    r = await client.patch(f"/api/v1/stores/{mine.id}", json={"name": "x"}, headers=headers)
    assert r.status_code == 403
    r = await client.get("/api/v1/stores")
    assert r.status_code == 401


async def test_scoped_writer_cannot_touch_other_store(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    mine = await make_store(session)
    theirs = await make_store(session, name="theirs")
    role = await make_role(session, ["store:read", "store:write"])
    user = await make_user(session, role=role, stores=[mine])
    headers = await auth_headers(session, user)
    r = await client.patch(f"/api/v1/stores/{theirs.id}", json={"name": "hijack"}, headers=headers)
    assert r.status_code == 404
    await session.refresh(theirs)
    assert theirs.name == "theirs"
    r = await client.patch(f"/api/v1/stores/{mine.id}", json={"name": "ok"}, headers=headers)
    assert r.status_code == 200

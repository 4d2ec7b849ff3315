"""The caller's own profile."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.permissions import Perm
from selfmart.models import AuditLog

from ..builders import auth_headers, builtin_role, make_store, make_user
from .helpers import audit_count

ME = "/api/v1/auth/me"


async def test_me_shows_roles_permissions_and_stores(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    boss = await make_user(session, username="theboss", email="boss@example.cn")
    r = await client.get(ME, headers=await auth_headers(session, boss))
    assert r.status_code == 200
    me = r.json()
    assert me["username"] == "theboss"
    assert me["email"] == "boss@example.cn"
    assert me["locale"] == "zh-CN"
    assert me["store_ids"] is None
    assert [x["code"] for x in me["roles"]] == ["super_admin"]
    assert set(me["permissions"]) == {p.value for p in Perm}
    assert me["must_change_password"] is False

    a, b = await make_store(session), await make_store(session)
    cashier = await make_user(session, role="cashier", stores=[b, a])
    me = (await client.get(ME, headers=await auth_headers(session, cashier))).json()
    assert me["store_ids"] == sorted([a.id, b.id])
    role = await builtin_role(session, "cashier")
    assert me["roles"] == [{"id": role.id, "code": "cashier", "name": role.name}]
    assert "user:read" not in me["permissions"]
    assert "order:refund" in me["permissions"]
    assert (await client.get(ME)).status_code == 401
    assert (await client.get(ME, headers={"Authorization": "Bearer nonsense"})).status_code == 401


async def test_update_me_with_audit_and_validation(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    user = await make_user(session, role="cashier", stores=[store], phone="13800000000")
    h = await auth_headers(session, user)
    r = await client.patch(
        ME, headers=h, json={"display_name": "小李", "email": "li@example.cn", "locale": "en"}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["display_name"], r.json()["email"], r.json()["locale"]) == (
        "小李",
        "li@example.cn",
        "en",
    )
    assert r.json()["phone"] == "13800000000"
    entry = await session.scalar(select(AuditLog).where(AuditLog.action == "user.update_profile"))
    assert entry is not None
    assert entry.store_id == store.id
    assert entry.entity_id == str(user.id)
    assert entry.changes["locale"] == {"before": "zh-CN", "after": "en"}
    assert "phone" not in entry.changes

    audits = await audit_count(session)
    for body, field in [
        ({"locale": "fr"}, "body.locale"),
        ({"email": "nope"}, "body.email"),
        ({"display_name": "x" * 101}, "body.display_name"),
        ({"display_name": None}, "body.display_name"),
        ({"username": "other"}, "body.username"),
        ({"must_change_password": False}, "body.must_change_password"),
    ]:
        r = await client.patch(ME, headers=h, json=body)
        assert r.status_code == 422, body
        assert field in {d["field"] for d in r.json()["details"]}
    assert await audit_count(session) == audits
    r = await client.patch(ME, headers=h, json={"email": None})
    assert r.json()["email"] is None

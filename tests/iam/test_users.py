"""Users: CRUD, store scoping, the no-escalation rules, bad input leaving nothing behind."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.permissions import BUILTIN_ROLES, Perm
from selfmart.models import AuditLog, Store, User

from ..builders import auth_headers, builtin_role, make_role, make_store, make_user
from .helpers import audit_count, fields, login, reasons

USERS = "/api/v1/users"
CASHIER_PERMS = [str(p) for p in BUILTIN_ROLES["cashier"]["perms"]]  # type: ignore[attr-defined]


async def _user_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def _manager(session: AsyncSession, *stores: Store, refund_limit_fen: int = 50_000) -> User:
    """A store manager: manages people of their stores and does cashier work."""
    role = await make_role(session, [*CASHIER_PERMS, Perm.USER_READ, Perm.USER_WRITE])
    role.refund_limit_fen = refund_limit_fen
    await session.flush()
    return await make_user(session, role=role, stores=list(stores))


def _new(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "username": "newbie",
        "display_name": "新同事",
        "password": "Welcome-2026",
        "role_ids": [],
        "store_ids": [],
    }
    body.update(over)
    return body


async def test_super_admin_creates_a_user_who_must_change_password(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    cashier = await builtin_role(session, "cashier")
    h = await auth_headers(session, await make_user(session))
    r = await client.post(
        USERS,
        headers=h,
        json=_new(
            username="Lily.Wang",
            email="lily@example.cn",
            phone="+86 138-0000-0000",
            role_ids=[cashier.id],
            store_ids=[store.id, store.id],
        ),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["username"] == "lily.wang"
    assert body["display_name"] == "新同事"
    assert body["roles"] == [{"id": cashier.id, "code": "cashier", "name": cashier.name}]
    assert body["store_ids"] == [store.id]
    assert body["must_change_password"] is True
    assert body["is_active"] is True
    assert body["locked"] is False
    assert "password" not in body
    assert "password_hash" not in body
    entry = await session.scalar(select(AuditLog).where(AuditLog.action == "user.create"))
    assert entry is not None
    assert entry.entity_id == str(body["id"])
    assert entry.store_id == store.id
    assert entry.changes["role_ids"] == {"before": None, "after": [cashier.id]}
    r = await login(client, "lily.wang", "Welcome-2026")
    assert r.status_code == 200
    assert r.json()["must_change_password"] is True


async def test_username_clash_is_409_naming_username(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="taken")
    h = await auth_headers(session, await make_user(session))
    count = await _user_count(session)
    r = await client.post(USERS, headers=h, json=_new(username="TAKEN"))
    assert r.status_code == 409
    assert r.json()["error"] == "already_exists"
    assert fields(r) == {"username": "already_exists"}
    assert await _user_count(session) == count


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"username": "ab"}, "body.username"),
        ({"username": "bad name!"}, "body.username"),
        ({"username": "x" * 65}, "body.username"),
        ({"display_name": "x" * 101}, "body.display_name"),
        ({"display_name": ""}, "body.display_name"),
        ({"email": "not-an-email"}, "body.email"),
        ({"phone": "call me"}, "body.phone"),
        ({"role_ids": "1"}, "body.role_ids"),
        ({"role_ids": [0]}, "body.role_ids.0"),
        ({"store_ids": [2**40]}, "body.store_ids.0"),
        ({"store_ids": None}, "body.store_ids"),
        ({"password": 12345678}, "body.password"),
        ({"is_admin": True}, "body.is_admin"),
    ],
)
async def test_bad_user_input_is_422_naming_the_field_and_writes_nothing(
    client: httpx.AsyncClient, session: AsyncSession, override: dict[str, Any], field: str
) -> None:
    h = await auth_headers(session, await make_user(session))
    count, audits = await _user_count(session), await audit_count(session)
    r = await client.post(USERS, headers=h, json=_new(**override))
    assert r.status_code == 422, r.text
    assert field in {d["field"] for d in r.json()["details"]}
    assert (await _user_count(session), await audit_count(session)) == (count, audits)


async def test_missing_fields_and_weak_password_are_named(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await auth_headers(session, await make_user(session))
    count = await _user_count(session)
    r = await client.post(USERS, headers=h, json={"username": "solo"})
    assert r.status_code == 422
    assert {d["field"] for d in r.json()["details"]} >= {
        "body.display_name",
        "body.password",
        "body.role_ids",
        "body.store_ids",
    }
    r = await client.post(USERS, headers=h, json=_new(password="newbie123"))
    assert r.status_code == 422
    assert reasons(r, "password") == {"password_too_simple", "password_contains_username"}
    assert await _user_count(session) == count


async def test_unknown_roles_and_stores_are_named(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await auth_headers(session, await make_user(session))
    count = await _user_count(session)
    r = await client.post(USERS, headers=h, json=_new(role_ids=[999_999]))
    assert r.status_code == 422
    assert fields(r) == {"role_ids": "not_found"}
    r = await client.post(USERS, headers=h, json=_new(store_ids=[999_999]))
    assert r.status_code == 422
    assert fields(r) == {"store_ids": "not_found"}
    assert await _user_count(session) == count


async def test_scoped_admin_sees_only_users_sharing_a_store(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    a, b = await make_store(session), await make_store(session)
    manager = await _manager(session, a)
    in_a = await make_user(session, role="cashier", stores=[a], username="in-a")
    in_both = await make_user(session, role="cashier", stores=[a, b], username="in-both")
    in_b = await make_user(session, role="cashier", stores=[b], username="in-b")
    boss = await make_user(session, username="boss")  # super admin, no store
    h = await auth_headers(session, manager)

    r = await client.get(USERS, headers=h, params={"size": 200})
    assert r.status_code == 200
    seen = {u["id"] for u in r.json()["items"]}
    assert {in_a.id, in_both.id, manager.id} <= seen
    assert in_b.id not in seen
    assert boss.id not in seen
    assert r.json()["total"] == len(seen)

    r = await client.get(f"{USERS}/{in_b.id}", headers=h)
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"
    assert (await client.get(f"{USERS}/{boss.id}", headers=h)).status_code == 404
    r = await client.patch(f"{USERS}/{in_b.id}", headers=h, json={"display_name": "x"})
    assert r.status_code == 404
    r = await client.post(f"{USERS}/{in_b.id}/reset-password", headers=h, json={})
    assert r.status_code == 404
    # Filtering by the other store finds only the visible users who also work there.
    r = await client.get(USERS, headers=h, params={"store_id": b.id})
    assert [u["id"] for u in r.json()["items"]] == [in_both.id]


async def test_scoped_admin_cannot_grant_or_manage_beyond_their_reach(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    a, b = await make_store(session), await make_store(session)
    manager = await _manager(session, a)
    h = await auth_headers(session, manager)
    cashier = await builtin_role(session, "cashier")
    admin = await builtin_role(session, "admin")
    super_admin = await builtin_role(session, "super_admin")
    count, audits = await _user_count(session), await audit_count(session)

    r = await client.post(USERS, headers=h, json=_new(role_ids=[cashier.id], store_ids=[b.id]))
    assert r.status_code == 403
    assert fields(r) == {"store_ids": "beyond_your_reach"}
    # A store id that does not exist at all answers the same: no probing for stores.
    r = await client.post(USERS, headers=h, json=_new(store_ids=[a.id, 999_999]))
    assert r.status_code == 403
    assert fields(r) == {"store_ids": "beyond_your_reach"}
    for role in (admin, super_admin):
        r = await client.post(USERS, headers=h, json=_new(role_ids=[role.id], store_ids=[a.id]))
        assert r.status_code == 403
        assert fields(r) == {"role_ids": "beyond_your_reach"}
    generous = await make_role(session, CASHIER_PERMS)  # no refund limit: more than theirs
    r = await client.post(USERS, headers=h, json=_new(role_ids=[generous.id], store_ids=[a.id]))
    assert r.status_code == 403
    r = await client.post(USERS, headers=h, json=_new(store_ids=[]))
    assert r.status_code == 422
    assert fields(r) == {"store_ids": "required"}
    assert (await _user_count(session), await audit_count(session)) == (count, audits)

    r = await client.post(USERS, headers=h, json=_new(role_ids=[cashier.id], store_ids=[a.id]))
    assert r.status_code == 201, r.text
    new_id = r.json()["id"]

    # Someone who also works in store B, or holds more than the manager, is out of reach,
    # though visible: no disabling, no password reset (that would be a takeover).
    both = await make_user(session, role="cashier", stores=[a, b])
    stronger = await make_user(session, role="admin", stores=[a])
    for target in (both, stronger):
        for action, body in [
            ("disable", None),
            ("reset-password", {"new_password": "Taken-Over-2026"}),
        ]:
            r = await client.post(f"{USERS}/{target.id}/{action}", headers=h, json=body)
            assert r.status_code == 403, (target.username, action)
            assert r.json()["error"] == "beyond_your_reach"
        r = await client.patch(f"{USERS}/{target.id}", headers=h, json={"display_name": "x"})
        assert r.status_code == 403
    # Nor can the manager move their own user to store B, or give it a stronger role.
    r = await client.patch(f"{USERS}/{new_id}", headers=h, json={"store_ids": [a.id, b.id]})
    assert r.status_code == 403
    assert fields(r) == {"store_ids": "beyond_your_reach"}
    r = await client.patch(f"{USERS}/{new_id}", headers=h, json={"role_ids": [admin.id]})
    assert r.status_code == 403
    assert fields(r) == {"role_ids": "beyond_your_reach"}
    r = await client.get(f"{USERS}/{new_id}", headers=h)
    assert r.json()["store_ids"] == [a.id]
    assert [x["id"] for x in r.json()["roles"]] == [cashier.id]


async def test_nobody_can_disable_themselves(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    me = await make_user(session)
    r = await client.post(f"{USERS}/{me.id}/disable", headers=await auth_headers(session, me))
    assert r.status_code == 403
    assert r.json()["error"] == "cannot_disable_self"
    await session.refresh(me)
    assert me.is_active is True


async def test_update_changes_fields_roles_and_stores_with_audit(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    a, b = await make_store(session), await make_store(session)
    user = await make_user(session, role="cashier", stores=[a], email="old@example.cn")
    admin_role = await builtin_role(session, "admin")
    cashier = await builtin_role(session, "cashier")
    h = await auth_headers(session, await make_user(session))
    r = await client.patch(
        f"{USERS}/{user.id}",
        headers=h,
        json={
            "display_name": "Renamed",
            "email": None,
            "role_ids": [admin_role.id],
            "store_ids": [b.id],
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["display_name"] == "Renamed"
    assert body["email"] is None
    assert [x["code"] for x in body["roles"]] == ["admin"]
    assert body["store_ids"] == [b.id]
    entry = await session.scalar(select(AuditLog).where(AuditLog.action == "user.update"))
    assert entry is not None
    assert entry.changes["role_ids"] == {"before": [cashier.id], "after": [admin_role.id]}
    assert entry.changes["store_ids"] == {"before": [a.id], "after": [b.id]}
    assert entry.changes["email"] == {"before": "old@example.cn", "after": None}

    audits = await audit_count(session)
    for bad, field in [
        ({"display_name": None}, "body.display_name"),
        ({"role_ids": None}, "body.role_ids"),
        ({"username": "rename"}, "body.username"),
        ({"display_name": 5}, "body.display_name"),
    ]:
        r = await client.patch(f"{USERS}/{user.id}", headers=h, json=bad)
        assert r.status_code == 422, bad
        assert field in {d["field"] for d in r.json()["details"]}
    r = await client.patch(f"{USERS}/{user.id}", headers=h, json={"role_ids": [424242]})
    assert r.status_code == 422
    assert fields(r) == {"role_ids": "not_found"}
    assert await audit_count(session) == audits
    r = await client.get(f"{USERS}/{user.id}", headers=h)
    assert r.json()["display_name"] == "Renamed"


async def test_list_filters_and_pagination(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    a = await make_store(session)
    cashier = await builtin_role(session, "cashier")
    one = await make_user(session, role="cashier", stores=[a], display_name="张三")
    two = await make_user(session, role="cashier", stores=[a], is_active=False)
    h = await auth_headers(session, await make_user(session))
    r = await client.get(USERS, headers=h, params={"store_id": a.id})
    assert {u["id"] for u in r.json()["items"]} == {one.id, two.id}
    r = await client.get(USERS, headers=h, params={"store_id": a.id, "is_active": False})
    assert [u["id"] for u in r.json()["items"]] == [two.id]
    r = await client.get(USERS, headers=h, params={"q": "张三"})
    assert [u["id"] for u in r.json()["items"]] == [one.id]
    r = await client.get(USERS, headers=h, params={"q": "%"})
    assert r.json()["items"] == []
    r = await client.get(USERS, headers=h, params={"role_id": cashier.id, "size": 1})
    assert r.json()["total"] >= 2
    assert len(r.json()["items"]) == 1
    assert (r.json()["page"], r.json()["size"]) == (1, 1)
    for params in ({"size": 201}, {"page": 0}, {"store_id": "x"}, {"role_id": 2**40}):
        r = await client.get(USERS, headers=h, params=params)
        assert r.status_code == 422, params


async def test_unknown_and_absurd_ids(client: httpx.AsyncClient, session: AsyncSession) -> None:
    h = await auth_headers(session, await make_user(session))
    assert (await client.get(f"{USERS}/999999", headers=h)).status_code == 404
    r = await client.get(f"{USERS}/99999999999", headers=h)
    assert r.status_code == 422
    assert (await client.get(f"{USERS}/abc", headers=h)).status_code == 422


async def test_users_are_never_deleted(client: httpx.AsyncClient, session: AsyncSession) -> None:
    user = await make_user(session)
    h = await auth_headers(session, await make_user(session))
    r = await client.delete(f"{USERS}/{user.id}", headers=h)
    assert r.status_code == 405
    assert await session.get(User, user.id) is not None

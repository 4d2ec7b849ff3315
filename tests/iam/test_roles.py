"""Roles: CRUD, permission codes checked against Perm, built-in roles fixed, no escalation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam import service as iam
from selfmart.iam.permissions import BUILTIN_ROLES, GROUPS, Perm
from selfmart.iam.service import sync_builtin_roles
from selfmart.models import AuditLog, Role, RolePermission, User, UserRole

from ..builders import auth_headers, builtin_role, make_role, make_store, make_user
from .helpers import audit_count, fields

ROLES = "/api/v1/roles"


async def _role_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Role)) or 0)


async def test_role_lifecycle_with_audit(client: httpx.AsyncClient, session: AsyncSession) -> None:
    h = await auth_headers(session, await make_user(session))
    r = await client.post(
        ROLES,
        headers=h,
        json={
            "code": "shift_lead",
            "name": "Shift lead",
            "permissions": ["order:read", "order:refund", "order:read"],
            "refund_limit_fen": 5000,
        },
    )
    assert r.status_code == 201, r.text
    role = r.json()
    assert role["permissions"] == ["order:read", "order:refund"]
    assert (role["is_builtin"], role["all_stores"], role["user_count"]) == (False, False, 0)
    assert role["description"] == ""
    assert role["refund_limit_fen"] == 5000
    url = f"{ROLES}/{role['id']}"

    r = await client.patch(
        url,
        headers=h,
        json={"permissions": ["order:read", "payment:read"], "refund_limit_fen": None},
    )
    assert r.status_code == 200, r.text
    assert r.json()["permissions"] == ["order:read", "payment:read"]
    assert r.json()["refund_limit_fen"] is None
    assert r.json()["name"] == "Shift lead"
    entry = await session.scalar(select(AuditLog).where(AuditLog.action == "role.update"))
    assert entry is not None
    assert entry.changes["permissions"] == {
        "before": ["order:read", "order:refund"],
        "after": ["order:read", "payment:read"],
    }

    store = await make_store(session)
    user = await make_user(session, role=await session.get_one(Role, role["id"]), stores=[store])
    r = await client.get(url, headers=h)
    assert r.json()["user_count"] == 1
    r = await client.delete(url, headers=h)
    assert r.status_code == 409
    assert r.json()["error"] == "role_in_use"

    r = await client.patch(f"/api/v1/users/{user.id}", headers=h, json={"role_ids": []})
    assert r.status_code == 200
    r = await client.delete(url, headers=h)
    assert r.status_code == 204
    assert (await client.get(url, headers=h)).status_code == 404
    actions = (
        await session.scalars(
            select(AuditLog.action)
            .where(AuditLog.entity_type == "role", AuditLog.entity_id == str(role["id"]))
            .order_by(AuditLog.id)
        )
    ).all()
    assert actions == ["role.create", "role.update", "role.delete"]


async def test_list_roles_shows_builtins_with_user_counts(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    admin = await make_user(session)
    h = await auth_headers(session, admin)
    r = await client.get(ROLES, headers=h, params={"size": 200})
    assert r.status_code == 200
    by_code = {x["code"]: x for x in r.json()["items"]}
    assert {"super_admin", "admin", "cashier"} <= set(by_code)
    sa = by_code["super_admin"]
    assert sa["is_builtin"] is True
    assert sa["all_stores"] is True
    assert sa["user_count"] >= 1
    assert set(sa["permissions"]) == {p.value for p in Perm}
    assert by_code["cashier"]["refund_limit_fen"] == 20_000
    r = await client.get(ROLES, headers=h, params={"q": "cashier"})
    assert [x["code"] for x in r.json()["items"]] == ["cashier"]


async def test_unknown_permission_codes_are_named(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await auth_headers(session, await make_user(session))
    count, audits = await _role_count(session), await audit_count(session)
    r = await client.post(
        ROLES,
        headers=h,
        json={"code": "odd", "name": "Odd", "permissions": ["order:read", "order:fly", "x"]},
    )
    assert r.status_code == 422
    details = r.json()["details"]
    assert {d["field"] for d in details} == {"permissions"}
    assert {d["reason"] for d in details} == {"unknown_permission"}
    messages = " ".join(d["message"] for d in details)
    assert "order:fly" in messages
    assert "'x'" in messages or " x" in messages
    assert (await _role_count(session), await audit_count(session)) == (count, audits)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "Bad Code", "name": "n", "permissions": []}, "body.code"),
        ({"code": "x" * 65, "name": "n", "permissions": []}, "body.code"),
        ({"code": "okay", "name": "n" * 101, "permissions": []}, "body.name"),
        ({"code": "okay", "name": "n", "permissions": "order:read"}, "body.permissions"),
        (
            {"code": "okay", "name": "n", "permissions": [], "refund_limit_fen": -1},
            "body.refund_limit_fen",
        ),
        (
            {"code": "okay", "name": "n", "permissions": [], "refund_limit_fen": 1.5},
            "body.refund_limit_fen",
        ),
        ({"code": "okay", "name": "n", "permissions": [], "all_stores": True}, "body.all_stores"),
        ({"code": "okay", "permissions": []}, "body.name"),
    ],
)
async def test_bad_role_input_is_422_naming_the_field(
    client: httpx.AsyncClient, session: AsyncSession, body: dict[str, Any], field: str
) -> None:
    h = await auth_headers(session, await make_user(session))
    count = await _role_count(session)
    r = await client.post(ROLES, headers=h, json=body)
    assert r.status_code == 422, r.text
    assert field in {d["field"] for d in r.json()["details"]}
    assert await _role_count(session) == count


async def test_role_code_clash_is_409_naming_code(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await auth_headers(session, await make_user(session))
    r = await client.post(
        ROLES, headers=h, json={"code": "cashier", "name": "x", "permissions": []}
    )
    assert r.status_code == 409
    assert fields(r) == {"code": "already_exists"}


async def test_builtin_roles_keep_their_permissions_and_cannot_be_deleted(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await auth_headers(session, await make_user(session))
    cashier = await builtin_role(session, "cashier")
    url = f"{ROLES}/{cashier.id}"
    before = (await client.get(url, headers=h)).json()
    r = await client.patch(url, headers=h, json={"permissions": ["order:read"]})
    assert r.status_code == 409
    assert fields(r) == {"permissions": "builtin_role_fixed"}
    # Naming and the refund limit are the operator's to adjust; the same permissions pass.
    r = await client.patch(
        url,
        headers=h,
        json={"name": "收银员", "refund_limit_fen": 30_000, "permissions": before["permissions"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "收银员"
    assert r.json()["permissions"] == before["permissions"]
    r = await client.delete(url, headers=h)
    assert r.status_code == 409
    assert r.json()["error"] == "builtin_role_fixed"
    r = await client.patch(url, headers=h, json={"name": None})
    assert r.status_code == 422
    r = await client.patch(url, headers=h, json={"code": "renamed"})
    assert r.status_code == 422


async def test_role_editor_cannot_hand_out_what_they_do_not_hold(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    editor_role = await make_role(
        session, [Perm.ROLE_READ, Perm.ROLE_WRITE, Perm.ORDER_READ, Perm.ORDER_REFUND]
    )
    editor_role.refund_limit_fen = 10_000
    await session.flush()
    h = await auth_headers(session, await make_user(session, role=editor_role, stores=[store]))
    r = await client.post(
        ROLES, headers=h, json={"code": "sneaky", "name": "s", "permissions": ["user:write"]}
    )
    assert r.status_code == 403
    assert fields(r) == {"permissions": "beyond_your_reach"}
    r = await client.post(
        ROLES,
        headers=h,
        json={"code": "big_refunds", "name": "b", "permissions": ["order:refund"]},
    )
    assert r.status_code == 403
    assert fields(r) == {"refund_limit_fen": "beyond_your_reach"}
    # Not even to their own role.
    r = await client.patch(
        f"{ROLES}/{editor_role.id}",
        headers=h,
        json={
            "permissions": ["role:read", "role:write", "order:read", "order:refund", "user:read"]
        },
    )
    assert r.status_code == 403
    ok = await client.post(
        ROLES,
        headers=h,
        json={
            "code": "small_refunds",
            "name": "s",
            "permissions": ["order:refund"],
            "refund_limit_fen": 10_000,
        },
    )
    assert ok.status_code == 201, ok.text


async def test_permission_catalog_lists_every_code_with_its_group(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await auth_headers(session, await make_user(session))
    r = await client.get("/api/v1/auth/permissions", headers=h)
    assert r.status_code == 200
    catalog = {x["code"]: x["group"] for x in r.json()}
    assert set(catalog) == {p.value for p in Perm}
    for group, perms in GROUPS.items():
        for p in perms:
            assert catalog[p.value] == group


async def test_sync_sets_builtin_roles_to_exactly_their_definition(session: AsyncSession) -> None:
    """A database made while the finance role still read stores, orders and payments keeps
    those codes unless the sync takes them away; custom roles are left as they are."""
    finance = await builtin_role(session, "finance")
    cashier = await builtin_role(session, "cashier")
    custom = await make_role(session, [Perm.STORE_READ, Perm.ORDER_READ])
    old_extra = {Perm.STORE_READ, Perm.ORDER_READ, Perm.PAYMENT_READ, Perm.ANALYTICS_READ}
    session.add_all([RolePermission(role_id=finance.id, permission=p) for p in old_extra])
    await session.execute(
        delete(RolePermission).where(
            RolePermission.role_id == cashier.id, RolePermission.permission == Perm.ORDER_REFUND
        )
    )
    await session.flush()

    async def codes(role: Role) -> set[str]:
        rows = await session.scalars(
            select(RolePermission.permission).where(RolePermission.role_id == role.id)
        )
        return set(rows.all())

    roles = await sync_builtin_roles(session)
    assert roles["finance"].id == finance.id
    for code, spec in BUILTIN_ROLES.items():
        assert await codes(roles[code]) == {str(p) for p in spec["perms"]}  # type: ignore[attr-defined]
    assert await codes(custom) == {Perm.STORE_READ, Perm.ORDER_READ}

    entries = {
        e.entity_id: e.changes
        for e in await session.scalars(
            select(AuditLog).where(
                AuditLog.action == "role.update", AuditLog.actor_type == "system"
            )
        )
    }
    assert set(entries) == {str(finance.id), str(cashier.id)}
    finance_perms = entries[str(finance.id)]["permissions"]
    assert set(finance_perms["before"]) - set(finance_perms["after"]) == old_extra
    cashier_perms = entries[str(cashier.id)]["permissions"]
    assert set(cashier_perms["after"]) - set(cashier_perms["before"]) == {Perm.ORDER_REFUND}

    # A second sync finds nothing to change and records nothing.
    before = await audit_count(session)
    await sync_builtin_roles(session)
    assert await audit_count(session) == before


async def test_the_active_holders_of_a_permission_with_their_stores(
    session: AsyncSession,
) -> None:
    """Whoever a role grants the permission (built-in or custom), active, with the stores the
    console gives them: every store when any of their roles is all-stores."""
    north, south = await make_store(session), await make_store(session)
    boss = await make_user(session, role="super_admin", email="boss@example.cn")
    manager = await make_user(session, role="admin", stores=[north, south], locale="en")
    analyst = await make_user(
        session, role=await make_role(session, [Perm.ANALYTICS_READ]), stores=[south]
    )
    # Admin of one store and finance (all stores, no analytics): the console shows them all.
    both = await make_user(session, role="admin", stores=[north], email=" ")
    await _grant(session, both, "finance")
    await make_user(session, role="admin", stores=[north], is_active=False)
    await make_user(session, role="cashier", stores=[north], email="till@example.cn")
    await make_user(session, role="finance", email="money@example.cn")
    holders = await iam.active_holders(session, Perm.ANALYTICS_READ)
    assert [(h.user_id, h.email, h.locale, h.store_ids) for h in holders] == [
        (boss.id, "boss@example.cn", "zh-CN", None),
        (manager.id, None, "en", frozenset({north.id, south.id})),
        (analyst.id, None, "zh-CN", frozenset({south.id})),
        (both.id, None, "zh-CN", None),
    ]


async def _grant(session: AsyncSession, user: User, code: str) -> None:
    session.add(UserRole(user_id=user.id, role_id=(await builtin_role(session, code)).id))
    await session.flush()

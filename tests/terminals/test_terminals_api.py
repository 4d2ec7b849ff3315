"""Terminals in the console: CRUD, store scoping, bad input, disable/enable, keys, audit."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.config import get_settings
from selfmart.kit.time import utcnow
from selfmart.models import AuditLog, Store, Terminal, TerminalKey
from selfmart.terminals.crypto import decrypt_secret

from ..builders import auth_headers, make_role, make_store, make_user
from .builders import make_active_terminal, make_terminal


async def _count(session: AsyncSession, model: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _super(session: AsyncSession) -> dict[str, str]:
    return await auth_headers(session, await make_user(session, role="super_admin"))


async def _scoped_writer(session: AsyncSession, store: Store) -> dict[str, str]:
    role = await make_role(session, ["terminal:read", "terminal:write"])
    return await auth_headers(session, await make_user(session, role=role, stores=[store]))


async def test_create_get_list_update(client: httpx.AsyncClient, session: AsyncSession) -> None:
    headers = await _super(session)
    store = await make_store(session, name="静安寺自助店")
    r = await client.post(
        "/api/v1/terminals",
        json={"code": "T-NEW-01", "store_id": store.id, "name": "收银一号机", "model": "SM-K2"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["store_name"] == "静安寺自助店"
    assert t["status"] == "pending"
    assert t["online"] is False
    assert t["key_id"] is None
    assert t["last_seen_at"] is None

    r = await client.get(f"/api/v1/terminals/{t['id']}", headers=headers)
    assert r.status_code == 200
    assert r.json()["code"] == "T-NEW-01"

    r = await client.get("/api/v1/terminals", params={"store_id": store.id}, headers=headers)
    assert [x["id"] for x in r.json()["items"]] == [t["id"]]
    r = await client.get("/api/v1/terminals", params={"q": "new-01"}, headers=headers)
    assert r.json()["total"] == 1
    r = await client.get(
        "/api/v1/terminals", params={"store_id": store.id, "status": "active"}, headers=headers
    )
    assert r.json()["total"] == 0

    r = await client.patch(
        f"/api/v1/terminals/{t['id']}", json={"name": "收银二号机"}, headers=headers
    )
    assert r.status_code == 200
    assert (r.json()["name"], r.json()["model"]) == ("收银二号机", "SM-K2")

    actions = (
        await session.scalars(
            select(AuditLog.action)
            .where(AuditLog.entity_type == "terminal", AuditLog.entity_id == str(t["id"]))
            .order_by(AuditLog.id)
        )
    ).all()
    assert actions == ["terminal.create", "terminal.update"]


async def test_online_means_seen_within_five_minutes(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await _super(session)
    store = await make_store(session)
    now = utcnow()
    fresh = await make_terminal(session, store, last_seen_at=now - timedelta(minutes=4))
    stale = await make_terminal(session, store, last_seen_at=now - timedelta(minutes=6))
    r = await client.get("/api/v1/terminals", params={"store_id": store.id}, headers=headers)
    online = {x["id"]: x["online"] for x in r.json()["items"]}
    assert online == {fresh.id: True, stale.id: False}


async def test_create_in_unknown_or_foreign_store_is_404(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    mine = await make_store(session)
    theirs = await make_store(session)
    headers = await _scoped_writer(session, mine)
    before = (await _count(session, Terminal), await _count(session, AuditLog))
    for store_id in (theirs.id, 2_000_000_000):
        r = await client.post(
            "/api/v1/terminals", json={"code": "T-X", "store_id": store_id}, headers=headers
        )
        assert r.status_code == 404
        assert r.json()["details"][0]["field"] == "store_id"
    assert (await _count(session, Terminal), await _count(session, AuditLog)) == before


async def test_duplicate_code_is_409(client: httpx.AsyncClient, session: AsyncSession) -> None:
    headers = await _super(session)
    store = await make_store(session)
    await make_terminal(session, store, code="T-DUP")
    other = await make_terminal(session, store, code="T-OTHER")
    r = await client.post(
        "/api/v1/terminals", json={"code": "T-DUP", "store_id": store.id}, headers=headers
    )
    assert r.status_code == 409
    assert r.json()["details"][0]["field"] == "code"
    r = await client.patch(f"/api/v1/terminals/{other.id}", json={"code": "T-DUP"}, headers=headers)
    assert r.status_code == 409


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"code": "T 1", "store_id": 1}, "body.code"),
        ({"code": "", "store_id": 1}, "body.code"),
        ({"code": "T1", "store_id": 0}, "body.store_id"),
        ({"code": "T1", "store_id": "one"}, "body.store_id"),
        ({"code": "T1"}, "body.store_id"),
        ({"code": "T1", "store_id": 1, "name": "n" * 101}, "body.name"),
        ({"code": "T1", "store_id": 1, "secret": "x"}, "body.secret"),
    ],
)
async def test_bad_create_is_422_and_writes_nothing(
    client: httpx.AsyncClient, session: AsyncSession, payload: dict[str, Any], field: str
) -> None:
    headers = await _super(session)
    before = (await _count(session, Terminal), await _count(session, AuditLog))
    r = await client.post("/api/v1/terminals", json=payload, headers=headers)
    assert r.status_code == 422
    assert field in [d["field"] for d in r.json()["details"]]
    assert (await _count(session, Terminal), await _count(session, AuditLog)) == before


async def test_null_in_patch_is_422(client: httpx.AsyncClient, session: AsyncSession) -> None:
    headers = await _super(session)
    terminal = await make_terminal(session, await make_store(session), name="keep")
    r = await client.patch(f"/api/v1/terminals/{terminal.id}", json={"name": None}, headers=headers)
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "body.name"
    await session.refresh(terminal)
    assert terminal.name == "keep"


async def test_another_stores_terminal_is_404_everywhere(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    mine = await make_store(session)
    theirs = await make_store(session)
    own = await make_terminal(session, mine)
    foreign = await make_active_terminal(session, theirs)
    headers = await _scoped_writer(session, mine)

    r = await client.get("/api/v1/terminals", params={"size": 200}, headers=headers)
    assert [x["id"] for x in r.json()["items"]] == [own.id]
    r = await client.get("/api/v1/terminals", params={"store_id": theirs.id}, headers=headers)
    assert r.json()["total"] == 0

    tid = foreign.terminal.id
    calls = [
        ("GET", f"/api/v1/terminals/{tid}", None),
        ("PATCH", f"/api/v1/terminals/{tid}", {"name": "x"}),
        ("POST", f"/api/v1/terminals/{tid}/activation-code", None),
        ("POST", f"/api/v1/terminals/{tid}/rotate-key", None),
        ("POST", f"/api/v1/terminals/{tid}/disable", None),
        ("POST", f"/api/v1/terminals/{tid}/enable", None),
    ]
    for method, url, body in calls:
        r = await client.request(method, url, json=body, headers=headers)
        assert r.status_code == 404, (method, url, r.text)
        assert r.json()["error"] == "terminal_not_found"
    # Nor can a terminal be moved into a store out of scope.
    r = await client.patch(
        f"/api/v1/terminals/{own.id}", json={"store_id": theirs.id}, headers=headers
    )
    assert r.status_code == 404
    assert r.json()["details"][0]["field"] == "store_id"
    await session.refresh(own)
    assert own.store_id == mine.id


async def test_read_only_role_cannot_write(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    terminal = await make_terminal(session, store)
    admin = await make_user(session, role="admin", stores=[store])
    headers = await auth_headers(session, admin)
    assert (
        await client.get(f"/api/v1/terminals/{terminal.id}", headers=headers)
    ).status_code == 200
    r = await client.post(f"/api/v1/terminals/{terminal.id}/rotate-key", headers=headers)
    assert r.status_code == 403
    r = await client.post(
        "/api/v1/terminals", json={"code": "T-9", "store_id": store.id}, headers=headers
    )
    assert r.status_code == 403
    assert (await client.get("/api/v1/terminals")).status_code == 401


async def test_disable_enable(client: httpx.AsyncClient, session: AsyncSession) -> None:
    headers = await _super(session)
    store = await make_store(session)
    active = await make_active_terminal(session, store)
    pending = await make_terminal(session, store)
    tid = active.terminal.id

    r = await client.post(f"/api/v1/terminals/{tid}/disable", headers=headers)
    assert r.status_code == 200
    assert r.json()["status"] == "disabled"
    r = await client.post(f"/api/v1/terminals/{tid}/disable", headers=headers)
    assert r.status_code == 409
    assert r.json()["error"] == "illegal_transition"
    r = await client.post(f"/api/v1/terminals/{tid}/activation-code", headers=headers)
    assert r.status_code == 409
    assert r.json()["error"] == "terminal_disabled"
    r = await client.post(f"/api/v1/terminals/{tid}/enable", headers=headers)
    assert r.json()["status"] == "active"  # it still holds a key
    r = await client.post(f"/api/v1/terminals/{tid}/enable", headers=headers)
    assert r.status_code == 409

    await client.post(f"/api/v1/terminals/{pending.id}/disable", headers=headers)
    r = await client.post(f"/api/v1/terminals/{pending.id}/enable", headers=headers)
    assert r.json()["status"] == "pending"  # never activated

    changes = (
        await session.scalars(
            select(AuditLog.changes).where(
                AuditLog.entity_id == str(tid), AuditLog.action == "terminal.disable"
            )
        )
    ).one()
    assert changes == {"status": {"before": "active", "after": "disabled"}}


async def test_rotate_key_over_http(client: httpx.AsyncClient, session: AsyncSession) -> None:
    headers = await _super(session)
    store = await make_store(session)
    creds = await make_active_terminal(session, store)
    tid = creds.terminal.id
    r = await client.get(f"/api/v1/terminals/{tid}", headers=headers)
    assert r.json()["key_id"] == creds.key_id

    t0 = utcnow()
    r = await client.post(f"/api/v1/terminals/{tid}/rotate-key", headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["key_id"] != creds.key_id
    assert len(body["secret"]) >= 32
    grace = timedelta(seconds=get_settings().terminal_key_grace_seconds)
    old_expiry = datetime.fromisoformat(body["old_key_expires_at"])
    assert t0 + grace - timedelta(seconds=5) <= old_expiry <= utcnow() + grace

    r = await client.get(f"/api/v1/terminals/{tid}", headers=headers)
    assert r.json()["key_id"] == body["key_id"]

    # Stored encrypted, never in plain text; the audit trail names key ids only.
    key = (
        await session.scalars(select(TerminalKey).where(TerminalKey.key_id == body["key_id"]))
    ).one()
    assert body["secret"] not in key.secret_encrypted
    assert decrypt_secret(key.secret_encrypted, key_id=key.key_id) == body["secret"]
    entry = (
        await session.scalars(
            select(AuditLog).where(
                AuditLog.action == "terminal.rotate_key", AuditLog.entity_id == str(tid)
            )
        )
    ).one()
    assert entry.changes == {"key_id": {"before": creds.key_id, "after": body["key_id"]}}
    assert body["secret"] not in str(entry.changes) + str(entry.note)


async def test_rotate_before_activation_is_409(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await _super(session)
    terminal = await make_terminal(session, await make_store(session))
    r = await client.post(f"/api/v1/terminals/{terminal.id}/rotate-key", headers=headers)
    assert r.status_code == 409
    assert r.json()["error"] == "terminal_not_activated"
    assert (
        await session.scalar(select(func.count()).where(TerminalKey.terminal_id == terminal.id))
        == 0
    )

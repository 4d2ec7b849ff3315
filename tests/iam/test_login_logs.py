"""The login log: filters, and what a store-scoped reader may see."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.permissions import Perm
from selfmart.kit.time import utcnow
from selfmart.models import LoginLog

from ..builders import auth_headers, make_role, make_store, make_user
from .helpers import login

LOGS = "/api/v1/login-logs"


async def test_filters(client: httpx.AsyncClient, session: AsyncSession) -> None:
    user = await make_user(session, username="logme")
    await login(client, "logme")
    await login(client, "logme", "Wrong-pass-1")
    await login(client, "ghost-user", "Wrong-pass-1")
    old = LoginLog(
        created_at=utcnow() - timedelta(days=10),
        username="logme",
        user_id=user.id,
        success=True,
        reason="ok",
        ip="198.51.100.1",
        user_agent="old-browser",
    )
    session.add(old)
    await session.flush()
    h = await auth_headers(session, await make_user(session))

    r = await client.get(LOGS, headers=h, params={"username": "logme"})
    assert r.status_code == 200
    items = r.json()["items"]
    assert [(x["success"], x["reason"]) for x in items] == [
        (False, "bad_password"),
        (True, "ok"),
        (True, "ok"),
    ]
    assert items[0]["ip"] == "203.0.113.7"
    assert items[0]["user_agent"] == "selfmart-tests"
    assert items[0]["user_id"] == user.id
    assert items[-1]["id"] == old.id

    r = await client.get(LOGS, headers=h, params={"username": "logme", "success": False})
    assert [x["reason"] for x in r.json()["items"]] == ["bad_password"]
    r = await client.get(LOGS, headers=h, params={"ip": "198.51.100.1"})
    assert [x["id"] for x in r.json()["items"]] == [old.id]
    since = (utcnow() - timedelta(days=1)).isoformat()
    r = await client.get(LOGS, headers=h, params={"username": "logme", "since": since})
    assert r.json()["total"] == 2
    r = await client.get(LOGS, headers=h, params={"username": "logme", "until": since})
    assert [x["id"] for x in r.json()["items"]] == [old.id]
    r = await client.get(LOGS, headers=h, params={"username": "ghost"})
    assert [x["reason"] for x in r.json()["items"]] == ["unknown_user"]

    for params in (
        {"since": "2026-01-01T00:00:00"},  # no zone: ambiguous, refused
        {"since": "yesterday"},
        {"success": "perhaps"},
        {"username": "x" * 65},
    ):
        r = await client.get(LOGS, headers=h, params=params)
        assert r.status_code == 422, params


async def test_store_scoped_reader_sees_only_their_stores_people(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    a, b = await make_store(session), await make_store(session)
    await make_user(session, role="cashier", stores=[a], username="cash-a")
    await make_user(session, role="cashier", stores=[b], username="cash-b")
    for name in ("cash-a", "cash-b", "stranger"):
        await login(client, name)
    reader_role = await make_role(session, [Perm.LOGIN_LOG_READ])
    reader = await make_user(session, role=reader_role, stores=[a])
    r = await client.get(LOGS, headers=await auth_headers(session, reader), params={"size": 200})
    assert r.status_code == 200
    assert {x["username"] for x in r.json()["items"]} == {"cash-a"}
    boss_h = await auth_headers(session, await make_user(session))
    r = await client.get(LOGS, headers=boss_h, params={"size": 200})
    assert {"cash-a", "cash-b", "stranger"} <= {x["username"] for x in r.json()["items"]}

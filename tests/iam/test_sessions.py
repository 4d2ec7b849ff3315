"""Sessions: refresh rotation, reuse detection, logout, revocation on password change/disable."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.tokens import decode_access_token
from selfmart.kit.time import utcnow
from selfmart.models import AuditLog, AuthSession, User

from ..builders import DEFAULT_PASSWORD, auth_headers, make_store, make_user
from .helpers import REFRESH, audit_count, bearer, login, login_logs, reasons, tokens

ME = "/api/v1/auth/me"
PASSWORD = "/api/v1/auth/password"


def _sid(pair: dict[str, object]) -> str:
    claims = decode_access_token(str(pair["access_token"]))
    assert claims is not None
    return str(claims["sid"])


async def test_refresh_rotates_and_old_token_reuse_ends_the_session(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="ruth")
    first = await tokens(client, "ruth")
    r = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert _sid(second) == _sid(first)  # the same session, a new token
    assert (await client.get(ME, headers=bearer(second))).status_code == 200

    # The first token again: someone holds a copy. The session ends for everybody.
    r = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 401
    assert r.json()["error"] == "refresh_token_reused"
    auth = await session.get(AuthSession, _sid(first), populate_existing=True)
    assert auth is not None
    assert auth.revoked_at is not None
    assert auth.revoked_reason == "refresh_reuse"
    assert (await client.get(ME, headers=bearer(second))).status_code == 401
    r = await client.post(REFRESH, json={"refresh_token": second["refresh_token"]})
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_refresh_token"
    assert [e.reason for e in await login_logs(session, "ruth")] == [
        "ok",
        "refresh_reuse",
        "session_revoked",
    ]


async def test_a_refresh_is_not_a_login(client: httpx.AsyncClient, session: AsyncSession) -> None:
    """The console refreshes its token on every page load: the login log keeps the login,
    not a row per page; the session records when it was last used."""
    await make_user(session, username="rhea")
    pair = await tokens(client, "rhea")
    auth = await session.get(AuthSession, _sid(pair))
    assert auth is not None
    before = auth.last_used_at
    for _ in range(3):
        r = await client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
        assert r.status_code == 200, r.text
        pair = r.json()
    assert [e.reason for e in await login_logs(session, "rhea")] == ["ok"]
    auth = await session.get(AuthSession, _sid(pair), populate_existing=True)
    assert auth is not None
    assert auth.last_used_at >= before


async def test_unknown_refresh_token_is_refused_without_a_trace(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    r = await client.post(REFRESH, json={"refresh_token": "not-a-token"})
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_refresh_token"
    r = await client.post(REFRESH, json={"refresh_token": ""})
    assert r.status_code == 422
    r = await client.post(REFRESH, json={"refresh_token": 12})
    assert r.status_code == 422


async def test_expired_session_cannot_refresh(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="sam")
    pair = await tokens(client, "sam")
    auth = await session.get(AuthSession, _sid(pair))
    assert auth is not None
    auth.expires_at = utcnow() - timedelta(seconds=1)
    await session.flush()
    r = await client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 401
    assert [e.reason for e in await login_logs(session, "sam")][-1] == "session_expired"
    assert (await client.get(ME, headers=bearer(pair))).status_code == 401


async def test_logout_ends_the_session_only(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="tina")
    one = await tokens(client, "tina")
    two = await tokens(client, "tina")
    r = await client.post("/api/v1/auth/logout", headers=bearer(one))
    assert r.status_code == 204
    assert (await client.get(ME, headers=bearer(one))).status_code == 401
    r = await client.post(REFRESH, json={"refresh_token": one["refresh_token"]})
    assert r.status_code == 401
    assert (await client.get(ME, headers=bearer(two))).status_code == 200
    assert (await client.post("/api/v1/auth/logout")).status_code == 401


async def test_password_change_ends_other_sessions_and_is_audited(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, username="ursula")
    mine = await tokens(client, "ursula")
    other = await tokens(client, "ursula")
    r = await client.post(
        PASSWORD,
        headers=bearer(mine),
        json={"current_password": DEFAULT_PASSWORD, "new_password": "Brand-New-2026"},
    )
    assert r.status_code == 204, r.text
    assert (await client.get(ME, headers=bearer(mine))).status_code == 200
    assert (await client.get(ME, headers=bearer(other))).status_code == 401
    r = await client.post(REFRESH, json={"refresh_token": other["refresh_token"]})
    assert r.status_code == 401
    assert (await login(client, "ursula")).status_code == 401
    assert (await login(client, "ursula", "Brand-New-2026")).status_code == 200
    entry = await session.scalar(
        select(AuditLog).where(
            AuditLog.action == "user.change_password", AuditLog.entity_id == str(user.id)
        )
    )
    assert entry is not None
    assert entry.changes["password_hash"] == {"before": "***", "after": "***"}


async def test_password_change_refusals_name_each_reason_and_change_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, username="victor")
    pair = await tokens(client, "victor")
    old_hash = user.password_hash
    before = await audit_count(session)

    r = await client.post(
        PASSWORD, headers=bearer(pair), json={"current_password": "Wrong-1234", "new_password": "x"}
    )
    assert r.status_code == 422
    assert reasons(r, "current_password") == {"password_incorrect"}
    assert reasons(r, "new_password") == {"password_too_short", "password_too_simple"}

    r = await client.post(
        PASSWORD,
        headers=bearer(pair),
        json={"current_password": DEFAULT_PASSWORD, "new_password": "Victor-2026-xyz"},
    )
    assert r.status_code == 422
    assert reasons(r, "new_password") == {"password_contains_username"}

    r = await client.post(
        PASSWORD,
        headers=bearer(pair),
        json={"current_password": DEFAULT_PASSWORD, "new_password": DEFAULT_PASSWORD},
    )
    assert r.status_code == 422
    assert reasons(r, "new_password") == {"password_unchanged"}

    r = await client.post(
        PASSWORD,
        headers=bearer(pair),
        json={"current_password": DEFAULT_PASSWORD, "new_password": "A1!" + "a" * 130},
    )
    assert r.status_code == 422
    assert {d["field"] for d in r.json()["details"]} == {"body.new_password"}

    r = await client.post(PASSWORD, headers=bearer(pair), json={"new_password": "Good-Pass-2026"})
    assert r.status_code == 422
    assert {d["field"] for d in r.json()["details"]} == {"body.current_password"}

    await session.refresh(user)
    assert user.password_hash == old_hash
    assert await audit_count(session) == before


async def test_disable_ends_every_session_and_refresh(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    user = await make_user(session, username="wendy", role="cashier", stores=[store])
    pair = await tokens(client, "wendy")
    admin = await make_user(session)
    r = await client.post(
        f"/api/v1/users/{user.id}/disable", headers=await auth_headers(session, admin)
    )
    assert r.status_code == 200, r.text
    assert r.json()["is_active"] is False
    assert (await client.get(ME, headers=bearer(pair))).status_code == 401
    r = await client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 401
    open_sessions = await session.scalars(
        select(AuthSession).where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None))
    )
    assert open_sessions.all() == []
    # Enabled again, the old tokens stay dead; a new login works.
    r = await client.post(
        f"/api/v1/users/{user.id}/enable", headers=await auth_headers(session, admin)
    )
    assert r.json()["is_active"] is True
    assert (await client.get(ME, headers=bearer(pair))).status_code == 401
    assert (await login(client, "wendy")).status_code == 200


async def test_admin_reset_forces_a_change_and_ends_sessions(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    user = await make_user(session, username="xena", role="cashier", stores=[store])
    pair = await tokens(client, "xena")
    admin_h = await auth_headers(session, await make_user(session))
    url = f"/api/v1/users/{user.id}/reset-password"
    r = await client.post(url, headers=admin_h, json={"new_password": "short"})
    assert r.status_code == 422
    assert "password_too_short" in reasons(r, "new_password")
    r = await client.post(url, headers=admin_h, json={"new_password": "Temp-Pass-2026"})
    assert r.status_code == 200, r.text
    assert r.json()["must_change_password"] is True
    assert (await client.get(ME, headers=bearer(pair))).status_code == 401
    assert (await login(client, "xena")).status_code == 401
    fresh = await tokens(client, "xena", "Temp-Pass-2026")
    assert fresh["must_change_password"] is True
    r = await client.get("/api/v1/auth/permissions", headers=bearer(fresh))
    assert r.json()["error"] == "password_change_required"
    stored = await session.get(User, user.id, populate_existing=True)
    assert stored is not None
    assert stored.must_change_password is True

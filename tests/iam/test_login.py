"""Logging in: argon2id, the login log, lockout and unlock, disabled accounts, rehashing."""

from __future__ import annotations

from datetime import timedelta

import httpx
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.config import get_settings
from selfmart.iam.passwords import needs_rehash
from selfmart.iam.tokens import decode_access_token
from selfmart.kit.time import utcnow
from selfmart.models import AuthSession, LoginThrottle, User

from ..builders import DEFAULT_PASSWORD, auth_headers, make_store, make_user
from .helpers import bearer, login, login_logs, tokens


async def test_login_opens_a_session_and_logs_the_attempt(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, username="alice")
    r = await login(client, "alice")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == get_settings().access_token_ttl_seconds
    assert body["must_change_password"] is False
    claims = decode_access_token(body["access_token"])
    assert claims is not None
    assert claims["sub"] == str(user.id)
    auth = await session.get(AuthSession, claims["sid"])
    assert auth is not None
    assert auth.user_id == user.id
    assert auth.revoked_at is None
    assert auth.ip == "203.0.113.7"
    (entry,) = await login_logs(session, "alice")
    assert (entry.success, entry.reason, entry.user_id) == (True, "ok", user.id)
    assert entry.ip == "203.0.113.7"
    assert entry.user_agent == "selfmart-tests"
    await session.refresh(user)
    assert user.last_login_at is not None
    me = await client.get("/api/v1/auth/me", headers=bearer(body))
    assert me.status_code == 200
    assert me.json()["username"] == "alice"


async def test_username_is_case_insensitive(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="bob")
    assert (await login(client, "  BoB ")).status_code == 200


async def test_wrong_password_and_unknown_user_look_alike_and_are_logged(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, username="carol")
    wrong = await login(client, "carol", "Nope-1234")
    unknown = await login(client, "nobody-here", "Nope-1234")
    for r in (wrong, unknown):
        assert r.status_code == 401
        assert r.json()["error"] == "invalid_credentials"
        assert r.headers["www-authenticate"] == "Bearer"
    # The refusal did not roll the record back.
    (entry,) = await login_logs(session, "carol")
    assert (entry.success, entry.reason, entry.user_id) == (False, "bad_password", user.id)
    (entry,) = await login_logs(session, "nobody-here")
    assert (entry.success, entry.reason, entry.user_id) == (False, "unknown_user", None)
    assert entry.ip == "203.0.113.7"
    await session.refresh(user)
    assert user.failed_logins == 1
    assert (
        await session.scalars(select(AuthSession).where(AuthSession.user_id == user.id))
    ).all() == []


async def test_lockout_after_max_failures_then_expiry(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, username="dave")
    max_failures = get_settings().login_max_failures
    for _ in range(max_failures - 1):
        r = await login(client, "dave", "Wrong-pass1")
        assert r.json()["error"] == "invalid_credentials"
    r = await login(client, "dave", "Wrong-pass1")
    assert r.status_code == 401
    assert r.json()["error"] == "account_locked"
    await session.refresh(user)
    assert user.locked_until is not None
    expected = utcnow() + timedelta(minutes=get_settings().login_lockout_minutes)
    assert abs((user.locked_until - expected).total_seconds()) < 60
    # Locked: even the right password is refused, and the attempt is logged as such.
    r = await login(client, "dave")
    assert r.status_code == 401
    assert r.json()["error"] == "account_locked"
    reasons = [e.reason for e in await login_logs(session, "dave")]
    assert reasons == ["bad_password"] * max_failures + ["locked"]
    # Once the lock has run out, the right password works and the counters start over.
    user.locked_until = utcnow() - timedelta(seconds=1)
    await session.flush()
    assert (await login(client, "dave")).status_code == 200
    stored = await session.get(User, user.id, populate_existing=True)
    assert stored is not None
    assert stored.failed_logins == 0
    assert stored.locked_until is None


def _shape(r: httpx.Response) -> tuple[int, str, str | None, list[str]]:
    body = r.json()
    return r.status_code, body["error"], r.headers.get("www-authenticate"), sorted(body)


async def test_the_lockout_answers_a_missing_username_as_it_answers_a_real_one(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """A brute force used to learn which usernames exist: only real ones ever answered
    account_locked. A missing one is now counted and locked the same way."""
    await make_user(session, username="gina")
    max_failures = get_settings().login_max_failures
    real = [await login(client, "gina", "Wrong-pass1") for _ in range(max_failures + 1)]
    missing = [await login(client, "ghost", "Wrong-pass1") for _ in range(max_failures + 1)]
    assert [_shape(r) for r in real] == [_shape(r) for r in missing]
    assert [r.json()["error"] for r in missing] == ["invalid_credentials"] * (max_failures - 1) + [
        "account_locked"
    ] * 2
    assert real[-1].json()["message"] == missing[-1].json()["message"]
    reasons = [e.reason for e in await login_logs(session, "ghost")]
    assert reasons == ["unknown_user"] * max_failures + ["locked"]
    # The lock runs out for both alike: the count starts over.
    throttle = await session.get(LoginThrottle, "ghost")
    assert throttle is not None
    throttle.locked_until = utcnow() - timedelta(seconds=1)
    await session.flush()
    assert (await login(client, "ghost", "Wrong-pass1")).json()["error"] == "invalid_credentials"


async def test_unlock_lets_a_locked_user_in_again(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    user = await make_user(session, username="erin", role="cashier", stores=[store])
    admin = await make_user(session)
    for _ in range(get_settings().login_max_failures):
        await login(client, "erin", "Wrong-pass1")
    assert (await login(client, "erin")).json()["error"] == "account_locked"
    listed = await client.get(
        f"/api/v1/users/{user.id}", headers=await auth_headers(session, admin)
    )
    assert listed.json()["locked"] is True
    assert listed.json()["locked_until"] is not None
    r = await client.post(
        f"/api/v1/users/{user.id}/unlock", headers=await auth_headers(session, admin)
    )
    assert r.status_code == 200, r.text
    assert r.json()["locked"] is False
    assert r.json()["locked_until"] is None
    assert (await login(client, "erin")).status_code == 200


async def test_disabled_user_is_refused_and_told_only_with_the_right_password(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="frank", is_active=False)
    assert (await login(client, "frank", "Wrong-pass1")).json()["error"] == "invalid_credentials"
    r = await login(client, "frank")
    assert r.status_code == 401
    assert r.json()["error"] == "account_disabled"
    assert [e.reason for e in await login_logs(session, "frank")] == ["bad_password", "disabled"]


async def test_old_hash_parameters_are_upgraded_at_login(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(DEFAULT_PASSWORD)
    user = await make_user(session, username="gina")
    user.password_hash = weak
    await session.flush()
    assert needs_rehash(weak)
    assert (await login(client, "gina")).status_code == 200
    await session.refresh(user)
    assert user.password_hash != weak
    assert not needs_rehash(user.password_hash)
    assert (await login(client, "gina")).status_code == 200


async def test_bad_login_input_is_422_naming_the_field(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    r = await client.post("/api/v1/auth/login", json={"username": "x"})
    assert r.status_code == 422
    assert "body.password" in {d["field"] for d in r.json()["details"]}
    r = await client.post(
        "/api/v1/auth/login", json={"username": "x", "password": "y", "remember": True}
    )
    assert r.status_code == 422
    assert "body.remember" in {d["field"] for d in r.json()["details"]}
    r = await client.post("/api/v1/auth/login", json={"username": "x" * 65, "password": "y"})
    assert r.status_code == 422
    assert {d["field"] for d in r.json()["details"]} == {"body.username"}
    r = await client.post(
        "/api/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert await login_logs(session, "x") == []


async def test_forced_password_change_blocks_everything_but_self_service(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="hank", must_change_password=True)
    pair = await tokens(client, "hank")
    assert pair["must_change_password"] is True
    h = bearer(pair)
    r = await client.get("/api/v1/users", headers=h)
    assert r.status_code == 403
    assert r.json()["error"] == "password_change_required"
    assert (await client.get("/api/v1/auth/me", headers=h)).json()["must_change_password"] is True
    r = await client.patch("/api/v1/auth/me", headers=h, json={"locale": "en"})
    assert r.status_code == 200
    r = await client.post(
        "/api/v1/auth/password",
        headers=h,
        json={"current_password": DEFAULT_PASSWORD, "new_password": "Fresh-Pass-2026"},
    )
    assert r.status_code == 204, r.text
    assert (await client.get("/api/v1/users", headers=h)).status_code == 200
    assert (await client.get("/api/v1/auth/me", headers=h)).json()["must_change_password"] is False
    assert (await client.post("/api/v1/auth/logout", headers=h)).status_code == 204


async def test_must_change_password_user_may_log_out(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, username="ivy", must_change_password=True)
    h = bearer(await tokens(client, "ivy"))
    assert (await client.post("/api/v1/auth/logout", headers=h)).status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=h)).status_code == 401
    assert [e.reason for e in await login_logs(session, user.username)] == ["ok", "logout"]

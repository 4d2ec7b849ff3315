"""Races on real concurrent connections: one refresh token used twice at once, and failed
logins arriving together (the failure count must not lose increments)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from selfmart.app import create_app
from selfmart.config import get_settings
from selfmart.db import make_sessionmaker
from selfmart.iam.passwords import hash_password
from selfmart.models import AuthSession, LoginLog, User

from ..builders import DEFAULT_PASSWORD
from ..support import settings_for

pytestmark = pytest.mark.postgres_only


@pytest.fixture
async def committed_user(engine: AsyncEngine, backend: str) -> AsyncIterator[User]:
    if backend != "postgresql":
        pytest.skip("needs real concurrent connections (PostgreSQL); SQLite serialises writers")
    factory = make_sessionmaker(engine)
    async with factory() as s:
        user = User(
            username=f"race-{uuid.uuid4().hex[:8]}",
            display_name="race",
            password_hash=hash_password(DEFAULT_PASSWORD),
        )
        s.add(user)
        await s.commit()
    try:
        yield user
    finally:
        async with factory() as s:
            await s.execute(delete(LoginLog).where(LoginLog.username == user.username))
            await s.execute(delete(User).where(User.id == user.id))
            await s.commit()


@pytest.fixture
async def real_client(db_url: str, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests commit for real, each on its own connection."""
    app = create_app(settings_for(db_url), engine=engine)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def test_one_refresh_token_used_twice_at_once_ends_the_session(
    real_client: httpx.AsyncClient, committed_user: User, engine: AsyncEngine
) -> None:
    r = await real_client.post(
        "/api/v1/auth/login",
        json={"username": committed_user.username, "password": DEFAULT_PASSWORD},
    )
    assert r.status_code == 200, r.text
    token = r.json()["refresh_token"]
    results = await asyncio.gather(
        *[real_client.post("/api/v1/auth/refresh", json={"refresh_token": token}) for _ in range(2)]
    )
    assert sorted(x.status_code for x in results) == [200, 401]
    loser = next(x for x in results if x.status_code == 401)
    assert loser.json()["error"] == "refresh_token_reused"
    async with make_sessionmaker(engine)() as s:
        auth = await s.scalar(select(AuthSession).where(AuthSession.user_id == committed_user.id))
    assert auth is not None
    assert auth.revoked_reason == "refresh_reuse"


async def test_simultaneous_failed_logins_all_count(
    real_client: httpx.AsyncClient, committed_user: User, engine: AsyncEngine
) -> None:
    attempts = get_settings().login_max_failures
    results = await asyncio.gather(
        *[
            real_client.post(
                "/api/v1/auth/login",
                json={"username": committed_user.username, "password": "Wrong-pass-1"},
            )
            for _ in range(attempts)
        ]
    )
    assert all(x.status_code == 401 for x in results)
    assert [x.json()["error"] for x in results].count("account_locked") == 1
    async with make_sessionmaker(engine)() as s:
        user = await s.get(User, committed_user.id)
        logs = (
            await s.scalars(select(LoginLog).where(LoginLog.username == committed_user.username))
        ).all()
    assert user is not None
    assert user.locked_until is not None
    assert len(logs) == attempts

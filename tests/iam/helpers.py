"""Helpers for the iam tests: logging in through the API, counting rows."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import AuditLog, LoginLog

from ..builders import DEFAULT_PASSWORD

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"


async def login(
    client: httpx.AsyncClient, username: str, password: str = DEFAULT_PASSWORD
) -> httpx.Response:
    return await client.post(LOGIN, json={"username": username, "password": password})


async def tokens(
    client: httpx.AsyncClient, username: str, password: str = DEFAULT_PASSWORD
) -> dict[str, Any]:
    r = await login(client, username, password)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def bearer(pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


async def login_logs(session: AsyncSession, username: str) -> list[LoginLog]:
    rows = await session.scalars(
        select(LoginLog).where(LoginLog.username == username).order_by(LoginLog.id)
    )
    return list(rows.all())


async def audit_count(session: AsyncSession) -> int:
    """Entries recording changes: a refused request's own record (security.denied, written
    for every 403: tests/audit/test_security_events.py) is not a change."""
    stmt = select(func.count()).select_from(AuditLog).where(AuditLog.action != "security.denied")
    return int(await session.scalar(stmt) or 0)


def fields(response: httpx.Response) -> dict[str, str]:
    """{field: reason} of an error body (the last reason when a field has several)."""
    return {d["field"]: d["reason"] for d in response.json()["details"]}


def reasons(response: httpx.Response, field: str) -> set[str]:
    return {d["reason"] for d in response.json()["details"] if d["field"] == field}

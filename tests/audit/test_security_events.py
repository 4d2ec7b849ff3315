"""Security events in the operation log: permission denials, lockouts, key rotations and
PII reveals are entries of `kind=security`, searchable and exported like the rest."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import security
from selfmart.config import get_settings
from selfmart.iam.permissions import Perm
from selfmart.models import AuditLog
from tests.builders import auth_headers, make_role, make_user

from .helpers import add_entry

URL = "/api/v1/audit-logs"
T0 = datetime(2026, 2, 1, 8, 0, tzinfo=UTC)


async def _entries(session: AsyncSession, action: str) -> list[AuditLog]:
    return list(
        (
            await session.scalars(
                select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)
            )
        ).all()
    )


async def test_a_permission_denial_is_written_though_the_request_rolls_back(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    clerk = await make_user(session, role=await make_role(session, [Perm.PRODUCT_READ.value]))
    headers = await auth_headers(session, clerk)
    r = await client.get(URL, headers=headers)
    assert r.status_code == 403
    assert r.json()["error"] == "forbidden"  # the answer is the one it always was

    [entry] = await _entries(session, security.DENIED)
    assert entry.actor_type == "user"
    assert entry.actor_id == str(clerk.id)
    assert entry.entity_type == "permission"
    assert entry.entity_id == Perm.AUDIT_READ.value
    assert entry.request_id == r.headers["x-request-id"]
    assert entry.changes["route"]["after"] == "/api/v1/audit-logs"
    assert entry.changes["method"]["after"] == "GET"


async def test_a_lockout_is_written_for_a_real_and_an_unknown_name(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    user = await make_user(session)
    tries = get_settings().login_max_failures
    for name in (user.username, "nobody-such"):
        for _ in range(tries):
            r = await client.post(
                "/api/v1/auth/login", json={"username": name, "password": "wrong-password-1"}
            )
        assert r.status_code in (401, 423), r.text
    real, unknown = await _entries(session, security.LOCKOUT)
    assert (real.entity_type, real.entity_id, real.entity_label) == (
        "user",
        str(user.id),
        user.username,
    )
    assert real.changes["failures"]["after"] == tries
    assert real.ip == "203.0.113.7"
    assert (unknown.entity_type, unknown.entity_id, unknown.entity_label) == (
        "username",
        None,
        "nobody-such",
    )


async def test_kind_separates_security_events_from_changes_in_search_and_export(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    admin = await make_user(session)
    headers = await auth_headers(session, admin)
    secure = {
        a: await add_entry(session, T0 + timedelta(minutes=i), action=a)
        for i, a in enumerate(
            [
                "security.denied",
                "security.lockout",
                "terminal.rotate_key",
                "payment_account.rotate_keys",
                "member.reveal",
            ]
        )
    }
    plain = await add_entry(session, T0 + timedelta(hours=1), action="product.update")
    window = {"since": T0.isoformat(), "until": (T0 + timedelta(days=1)).isoformat()}

    r = await client.get(URL, headers=headers, params={**window, "kind": "security", "size": 50})
    assert r.status_code == 200, r.text
    assert {i["id"] for i in r.json()["items"]} == {e.id for e in secure.values()}
    r = await client.get(URL, headers=headers, params={**window, "kind": "change"})
    assert [i["id"] for i in r.json()["items"]] == [plain.id]
    r = await client.get(URL, headers=headers, params={"kind": "everything"})
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "query.kind"

    r = await client.get(
        f"{URL}/export",
        headers={**headers, "accept-language": "en"},
        params={**window, "kind": "security", "format": "csv"},
    )
    assert r.status_code == 200, r.text
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    # the action in words, its code in the last column
    assert sorted(row[-1] for row in rows[1:]) == sorted(secure)
    assert all(row[4] and row[4] != row[-1] for row in rows[1:] if row[-1] in ("member.reveal",))


async def test_terminal_key_rotation_and_pii_reveal_are_security_actions() -> None:
    for action in ("terminal.rotate_key", "payment_account.rotate_keys", "member.reveal"):
        assert security.is_security(action)
    assert not security.is_security("product.update")


async def test_a_denial_that_cannot_be_written_is_still_a_403(
    session: AsyncSession, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from selfmart.audit import service as audit

    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the log is unwritable")

    clerk = await make_user(session, role=await make_role(session, [Perm.PRODUCT_READ.value]))
    headers = await auth_headers(session, clerk)
    monkeypatch.setattr(audit, "record", broken)
    r = await client.get(URL, headers=headers)
    assert r.status_code == 403
    assert r.json()["error"] == "forbidden"
    assert await _entries(session, security.DENIED) == []

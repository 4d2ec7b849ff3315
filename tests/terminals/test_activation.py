"""Activation: a one-time code from the console, exchanged once for a key; brute force locked."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.config import get_settings
from selfmart.iam.actor import SYSTEM
from selfmart.kit.time import utcnow
from selfmart.models import AuditLog, Terminal, TerminalKey
from selfmart.terminals import service as terminals
from selfmart.terminals import signing
from selfmart.terminals.exceptions import ActivationCodeExpired

from ..builders import auth_headers, make_store, make_user
from .builders import make_active_terminal, make_terminal

ACTIVATE = "/api/terminal/v1/activate"
HEARTBEAT = "/api/terminal/v1/heartbeat"


async def _issue(client: httpx.AsyncClient, session: AsyncSession, terminal_id: int) -> str:
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.post(f"/api/v1/terminals/{terminal_id}/activation-code", headers=headers)
    assert r.status_code == 200, r.text
    code: str = r.json()["activation_code"]
    return code


async def _reload(session: AsyncSession, terminal: Terminal) -> Terminal:
    fresh = await session.scalar(
        select(Terminal).where(Terminal.id == terminal.id).execution_options(populate_existing=True)
    )
    assert fresh is not None
    return fresh


async def test_activate_then_sign_a_heartbeat(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    terminal = await make_terminal(session, await make_store(session), code="T-ACT-1")
    t0 = utcnow()
    code = await _issue(client, session, terminal.id)
    assert len(code) == 14
    assert code.count("-") == 2
    terminal = await _reload(session, terminal)
    assert terminal.activation_code_hash is not None
    assert code.replace("-", "") not in terminal.activation_code_hash
    ttl = timedelta(seconds=get_settings().terminal_activation_ttl_seconds)
    assert terminal.activation_expires_at is not None
    assert t0 + ttl - timedelta(seconds=5) <= terminal.activation_expires_at <= utcnow() + ttl

    r = await client.post(ACTIVATE, json={"terminal_code": "T-ACT-1", "activation_code": code})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["terminal_id"] == terminal.id
    assert (await _reload(session, terminal)).status == "active"

    body = json.dumps({"app_version": "2.0.0"}).encode()
    headers = signing.sign(
        key_id=got["key_id"], secret=got["secret"], method="POST", target=HEARTBEAT, body=body
    )
    r = await client.post(
        HEARTBEAT, content=body, headers={**headers, "content-type": "application/json"}
    )
    assert r.status_code == 200, r.text

    entry = (
        await session.scalars(select(AuditLog).where(AuditLog.action == "terminal.activate"))
    ).one()
    assert (entry.actor_type, entry.actor_id) == ("terminal", str(terminal.id))
    assert got["secret"] not in json.dumps(entry.changes)


async def test_code_is_single_use(client: httpx.AsyncClient, session: AsyncSession) -> None:
    terminal = await make_terminal(session, await make_store(session), code="T-ACT-2")
    code = await _issue(client, session, terminal.id)
    payload = {"terminal_code": "T-ACT-2", "activation_code": code}
    assert (await client.post(ACTIVATE, json=payload)).status_code == 200
    keys_before = await session.scalar(
        select(func.count()).where(TerminalKey.terminal_id == terminal.id)
    )
    r = await client.post(ACTIVATE, json=payload)
    assert r.status_code == 409
    assert r.json()["error"] == "activation_code_used"
    keys_after = await session.scalar(
        select(func.count()).where(TerminalKey.terminal_id == terminal.id)
    )
    assert keys_before == keys_after == 1


async def test_code_is_typed_loosely(client: httpx.AsyncClient, session: AsyncSession) -> None:
    terminal = await make_terminal(session, await make_store(session), code="T-ACT-3")
    code = await _issue(client, session, terminal.id)
    typed = code.replace("-", " ").lower()
    r = await client.post(ACTIVATE, json={"terminal_code": "T-ACT-3", "activation_code": typed})
    assert r.status_code == 200


async def test_wrong_code_counts_and_locks_after_ten(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    terminal = await make_terminal(session, await make_store(session), code="T-ACT-4")
    code = await _issue(client, session, terminal.id)
    for i in range(10):
        r = await client.post(
            ACTIVATE, json={"terminal_code": "T-ACT-4", "activation_code": "WRONG-CODE-0000"}
        )
        assert r.status_code == 401
        assert r.json()["error"] == "invalid_activation_code"
        assert f"{9 - i} attempts left" in r.json()["message"]
    # The count survived although every one of those requests failed.
    assert (await _reload(session, terminal)).activation_failed_attempts == 10
    failed = await session.scalar(
        select(func.count()).where(AuditLog.action == "terminal.activation_failed")
    )
    assert failed == 10

    # Now even the right code is refused...
    r = await client.post(ACTIVATE, json={"terminal_code": "T-ACT-4", "activation_code": code})
    assert r.status_code == 429
    assert r.json()["error"] == "activation_locked"
    assert (await _reload(session, terminal)).status == "pending"
    # ...until the console issues a new code.
    code = await _issue(client, session, terminal.id)
    r = await client.post(ACTIVATE, json={"terminal_code": "T-ACT-4", "activation_code": code})
    assert r.status_code == 200


async def test_unknown_terminal_code(client: httpx.AsyncClient, session: AsyncSession) -> None:
    r = await client.post(
        ACTIVATE, json={"terminal_code": "NO-SUCH", "activation_code": "AAAA-BBBB-CCCC"}
    )
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_activation_code"


async def test_no_code_issued_is_wrong_code(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_terminal(session, await make_store(session), code="T-ACT-5")
    r = await client.post(
        ACTIVATE, json={"terminal_code": "T-ACT-5", "activation_code": "AAAA-BBBB-CCCC"}
    )
    assert r.status_code == 401


async def test_expired_code(client: httpx.AsyncClient, session: AsyncSession) -> None:
    terminal = await make_terminal(session, await make_store(session), code="T-ACT-6")
    code = await _issue(client, session, terminal.id)
    terminal = await _reload(session, terminal)
    terminal.activation_expires_at = utcnow() - timedelta(seconds=1)
    await session.flush()
    r = await client.post(ACTIVATE, json={"terminal_code": "T-ACT-6", "activation_code": code})
    assert r.status_code == 401
    assert r.json()["error"] == "activation_code_expired"
    assert (
        await session.scalar(select(func.count()).where(TerminalKey.terminal_id == terminal.id))
        == 0
    )


async def test_expiry_follows_the_ttl_setting(session: AsyncSession) -> None:
    terminal = await make_terminal(session, await make_store(session))
    t0 = utcnow()
    issued = await terminals.issue_activation_code(session, terminal, actor=SYSTEM, now=t0)
    ttl = get_settings().terminal_activation_ttl_seconds
    assert issued.expires_at == t0 + timedelta(seconds=ttl)
    with pytest.raises(ActivationCodeExpired):
        await terminals.activate(
            session, terminal.code, issued.activation_code, now=t0 + timedelta(seconds=ttl)
        )
    done = await terminals.activate(
        session, terminal.code, issued.activation_code, now=t0 + timedelta(seconds=ttl - 1)
    )
    assert done.terminal_id == terminal.id


async def test_reactivation_revokes_the_old_key(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    old = await make_active_terminal(session, store, code="T-ACT-7")
    code = await _issue(client, session, old.terminal.id)
    r = await client.post(ACTIVATE, json={"terminal_code": "T-ACT-7", "activation_code": code})
    assert r.status_code == 200
    body = json.dumps({"app_version": "1"}).encode()
    headers = old.sign("POST", HEARTBEAT, body)
    r = await client.post(
        HEARTBEAT, content=body, headers={**headers, "content-type": "application/json"}
    )
    assert r.status_code == 401
    assert r.json()["error"] == "key_revoked"


async def test_disabled_terminal_cannot_activate(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    terminal = await make_terminal(session, await make_store(session), code="T-ACT-8")
    code = await _issue(client, session, terminal.id)
    terminal = await _reload(session, terminal)
    terminal.status = "disabled"
    await session.flush()
    r = await client.post(ACTIVATE, json={"terminal_code": "T-ACT-8", "activation_code": code})
    assert r.status_code == 409
    assert r.json()["error"] == "terminal_disabled"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"terminal_code": "T-1"}, "body.activation_code"),
        ({"activation_code": "X"}, "body.terminal_code"),
        ({"terminal_code": "T 1", "activation_code": "X"}, "body.terminal_code"),
        ({"terminal_code": "T-1", "activation_code": "X" * 33}, "body.activation_code"),
        ({"terminal_code": "T-1", "activation_code": "X", "key": 1}, "body.key"),
    ],
)
async def test_bad_activation_input_is_422(
    client: httpx.AsyncClient, session: AsyncSession, payload: dict[str, object], field: str
) -> None:
    r = await client.post(ACTIVATE, json=payload)
    assert r.status_code == 422
    assert field in [d["field"] for d in r.json()["details"]]

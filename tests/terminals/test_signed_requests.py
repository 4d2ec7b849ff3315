"""Every way a signed terminal request is refused, over HTTP, and that a refusal writes nothing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.config import get_settings
from selfmart.kit.time import utcnow
from selfmart.models import AuditLog, Terminal, TerminalKey, TerminalNonce
from selfmart.terminals import signing

from ..builders import make_store
from .builders import Credentials, make_active_terminal

HEARTBEAT = "/api/terminal/v1/heartbeat"
BODY = json.dumps({"app_version": "3.1.0"}).encode()


async def _creds(session: AsyncSession) -> Credentials:
    return await make_active_terminal(session, await make_store(session))


async def _post(
    client: httpx.AsyncClient, headers: dict[str, str], body: bytes = BODY, target: str = HEARTBEAT
) -> httpx.Response:
    return await client.post(
        target, content=body, headers={**headers, "content-type": "application/json"}
    )


async def _untouched(session: AsyncSession, creds: Credentials) -> None:
    """A refused request left no trace: no last-seen, no nonce, no audit entry."""
    terminal = await session.scalar(
        select(Terminal)
        .where(Terminal.id == creds.terminal.id)
        .execution_options(populate_existing=True)
    )
    assert terminal is not None
    assert terminal.last_seen_at is None
    assert terminal.app_version is None
    assert (
        await session.scalar(
            select(func.count()).where(TerminalNonce.terminal_id == creds.terminal.id)
        )
        == 0
    )
    assert await session.scalar(select(func.count()).where(AuditLog.actor_type == "terminal")) == 0


async def test_heartbeat_records_and_audits_only_real_changes(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    creds = await _creds(session)
    r = await _post(client, creds.sign("POST", HEARTBEAT, BODY))
    assert r.status_code == 200, r.text
    server_time = datetime.fromisoformat(r.json()["server_time"])
    assert abs((utcnow() - server_time).total_seconds()) < 5
    terminal = await session.scalar(
        select(Terminal)
        .where(Terminal.id == creds.terminal.id)
        .execution_options(populate_existing=True)
    )
    assert terminal is not None
    assert terminal.app_version == "3.1.0"
    assert terminal.last_ip == "203.0.113.7"
    assert terminal.last_seen_at is not None
    entries = (
        await session.scalars(select(AuditLog).where(AuditLog.action == "terminal.heartbeat"))
    ).all()
    assert len(entries) == 1
    assert (entries[0].actor_type, entries[0].actor_id) == ("terminal", str(terminal.id))
    assert entries[0].changes["app_version"] == {"before": None, "after": "3.1.0"}

    # Same version, same address: telemetry only, no new audit entry.
    r = await _post(client, creds.sign("POST", HEARTBEAT, BODY))
    assert r.status_code == 200
    assert (
        await session.scalar(select(func.count()).where(AuditLog.action == "terminal.heartbeat"))
        == 1
    )


async def test_the_raw_bytes_are_signed_not_a_reserialisation(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    creds = await _creds(session)
    body = b'{ "app_version" :   "3.1.0" }\n'
    r = await _post(client, creds.sign("POST", HEARTBEAT, body), body)
    assert r.status_code == 200, r.text


async def test_uppercase_hex_signature_is_accepted(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    creds = await _creds(session)
    headers = creds.sign("POST", HEARTBEAT, BODY)
    headers[signing.HEADER_SIGNATURE] = headers[signing.HEADER_SIGNATURE].upper()
    assert (await _post(client, headers)).status_code == 200


@pytest.mark.parametrize("missing", signing.HEADERS)
async def test_missing_header_is_named(
    client: httpx.AsyncClient, session: AsyncSession, missing: str
) -> None:
    creds = await _creds(session)
    headers = creds.sign("POST", HEARTBEAT, BODY)
    del headers[missing]
    r = await _post(client, headers)
    assert r.status_code == 401
    assert r.json()["error"] == "missing_header"
    assert r.json()["details"][0]["field"] == missing
    await _untouched(session, creds)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (signing.HEADER_KEY_ID, "key id with spaces"),
        (signing.HEADER_TIMESTAMP, "17e8"),
        (signing.HEADER_TIMESTAMP, "-1767225600"),
        (signing.HEADER_NONCE, "short"),
        (signing.HEADER_NONCE, "has/slash/and/more/than/sixteen"),
        (signing.HEADER_NONCE, "n" * 65),
        (signing.HEADER_SIGNATURE, "not-hex" * 9),
        (signing.HEADER_SIGNATURE, "ab" * 31),
    ],
)
async def test_malformed_header_is_named(
    client: httpx.AsyncClient, session: AsyncSession, header: str, value: str
) -> None:
    creds = await _creds(session)
    headers = creds.sign("POST", HEARTBEAT, BODY)
    headers[header] = value
    r = await _post(client, headers)
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_header"
    assert r.json()["details"][0]["field"] == header
    await _untouched(session, creds)


@pytest.mark.parametrize("direction", [-1, 1])
async def test_stale_timestamp(
    client: httpx.AsyncClient, session: AsyncSession, direction: int
) -> None:
    creds = await _creds(session)
    skew = get_settings().terminal_clock_skew_seconds
    ts = int(utcnow().timestamp()) + direction * (skew + 5)
    r = await _post(client, creds.sign("POST", HEARTBEAT, BODY, timestamp=ts))
    assert r.status_code == 401
    assert r.json()["error"] == "stale_timestamp"
    await _untouched(session, creds)


async def test_timestamp_inside_the_skew_is_fine(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    creds = await _creds(session)
    skew = get_settings().terminal_clock_skew_seconds
    ts = int(utcnow().timestamp()) - skew + 10
    assert (
        await _post(client, creds.sign("POST", HEARTBEAT, BODY, timestamp=ts))
    ).status_code == 200


async def test_unknown_key(client: httpx.AsyncClient, session: AsyncSession) -> None:
    creds = await _creds(session)
    headers = creds.sign("POST", HEARTBEAT, BODY)
    headers[signing.HEADER_KEY_ID] = "tk_doesnotexist"
    r = await _post(client, headers)
    assert r.status_code == 401
    assert r.json()["error"] == "unknown_key"
    await _untouched(session, creds)


@pytest.mark.parametrize("tamper", ["secret", "body", "path", "query", "nonce", "timestamp"])
async def test_bad_signature(client: httpx.AsyncClient, session: AsyncSession, tamper: str) -> None:
    creds = await _creds(session)
    now = int(utcnow().timestamp())
    target, body = HEARTBEAT, BODY
    if tamper == "secret":
        headers = Credentials(creds.terminal, creds.key_id, "not-the-secret").sign(
            "POST", target, body
        )
    else:
        headers = creds.sign("POST", target, body, timestamp=now)
        if tamper == "body":
            body = json.dumps({"app_version": "9.9.9"}).encode()
        elif tamper == "path":  # signed for another endpoint, sent to this one
            headers = creds.sign("POST", "/api/terminal/v1/orders", body, timestamp=now)
        elif tamper == "query":
            target = HEARTBEAT + "?debug=1"
        elif tamper == "nonce":
            headers[signing.HEADER_NONCE] = signing.new_nonce()
        elif tamper == "timestamp":
            headers[signing.HEADER_TIMESTAMP] = str(now - 1)
    r = await _post(client, headers, body, target)
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "bad_signature"
    await _untouched(session, creds)


async def test_query_order_does_not_matter(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    creds = await _creds(session)
    headers = creds.sign("POST", HEARTBEAT + "?b=2&a=1&c=x+y", BODY)
    r = await _post(client, headers, BODY, HEARTBEAT + "?a=1&c=x%20y&b=2")
    assert r.status_code == 200, r.text


async def test_revoked_key(client: httpx.AsyncClient, session: AsyncSession) -> None:
    creds = await _creds(session)
    key = (
        await session.scalars(select(TerminalKey).where(TerminalKey.key_id == creds.key_id))
    ).one()
    key.revoked_at = utcnow()
    await session.flush()
    r = await _post(client, creds.sign("POST", HEARTBEAT, BODY))
    assert r.status_code == 401
    assert r.json()["error"] == "key_revoked"
    await _untouched(session, creds)


async def test_expired_key(client: httpx.AsyncClient, session: AsyncSession) -> None:
    creds = await _creds(session)
    key = (
        await session.scalars(select(TerminalKey).where(TerminalKey.key_id == creds.key_id))
    ).one()
    key.expires_at = utcnow() - timedelta(seconds=1)
    await session.flush()
    r = await _post(client, creds.sign("POST", HEARTBEAT, BODY))
    assert r.status_code == 401
    assert r.json()["error"] == "key_expired"
    await _untouched(session, creds)


async def test_key_state_is_not_told_without_a_valid_signature(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    creds = await _creds(session)
    key = (
        await session.scalars(select(TerminalKey).where(TerminalKey.key_id == creds.key_id))
    ).one()
    key.revoked_at = utcnow()
    await session.flush()
    forged = Credentials(creds.terminal, creds.key_id, "guess").sign("POST", HEARTBEAT, BODY)
    r = await _post(client, forged)
    assert r.json()["error"] == "bad_signature"


async def test_disabled_terminal(client: httpx.AsyncClient, session: AsyncSession) -> None:
    creds = await _creds(session)
    creds.terminal.status = "disabled"
    await session.flush()
    r = await _post(client, creds.sign("POST", HEARTBEAT, BODY))
    assert r.status_code == 403
    assert r.json()["error"] == "terminal_disabled"
    assert (
        await session.scalar(
            select(func.count()).where(TerminalNonce.terminal_id == creds.terminal.id)
        )
        == 0
    )


async def test_replayed_nonce(client: httpx.AsyncClient, session: AsyncSession) -> None:
    creds = await _creds(session)
    headers = creds.sign("POST", HEARTBEAT, BODY)
    assert (await _post(client, headers)).status_code == 200
    r = await _post(client, headers)
    assert r.status_code == 401
    assert r.json()["error"] == "replayed_nonce"
    assert r.json()["details"][0]["field"] == signing.HEADER_NONCE
    # The same nonce with a fresh timestamp and a valid signature is still a replay.
    again = creds.sign(
        "POST",
        HEARTBEAT,
        BODY,
        nonce=headers[signing.HEADER_NONCE],
        timestamp=int(headers[signing.HEADER_TIMESTAMP]) + 1,
    )
    r = await _post(client, again)
    assert r.json()["error"] == "replayed_nonce"


async def test_nonces_are_per_terminal(client: httpx.AsyncClient, session: AsyncSession) -> None:
    a = await _creds(session)
    b = await _creds(session)
    nonce = signing.new_nonce()
    assert (await _post(client, a.sign("POST", HEARTBEAT, BODY, nonce=nonce))).status_code == 200
    assert (await _post(client, b.sign("POST", HEARTBEAT, BODY, nonce=nonce))).status_code == 200


async def test_auth_is_checked_before_the_body(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    r = await _post(client, {}, json.dumps({"unexpected": True}).encode())
    assert r.status_code == 401
    creds = await _creds(session)
    bad = json.dumps({"app_version": ""}).encode()
    r = await _post(client, creds.sign("POST", HEARTBEAT, bad), bad)
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "body.app_version"

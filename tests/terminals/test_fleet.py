"""The terminal fleet: what a heartbeat reports (status, unsent orders, printer, scanner), what
is audited of it, the flood limit, and the console's fleet list and summary."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.config import get_settings
from selfmart.kit.time import utcnow
from selfmart.models import AuditLog, Terminal
from selfmart.terminals import service as terminals

from ..builders import auth_headers, make_role, make_store, make_user
from .builders import Credentials, make_active_terminal, make_terminal

HEARTBEAT = "/api/terminal/v1/heartbeat"


async def _beat(client: httpx.AsyncClient, creds: Credentials, **payload: Any) -> httpx.Response:
    body, headers = creds.signed_json("POST", HEARTBEAT, {"app_version": "3.1.0", **payload})
    return await client.post(HEARTBEAT, content=body, headers=headers)


async def _terminal(session: AsyncSession, terminal_id: int) -> Terminal:
    found = await session.scalar(
        select(Terminal).where(Terminal.id == terminal_id).execution_options(populate_existing=True)
    )
    assert found is not None
    return found


async def _audited(session: AsyncSession, terminal_id: int) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(AuditLog)
        .where(AuditLog.action == "terminal.heartbeat", AuditLog.entity_id == str(terminal_id))
        .order_by(AuditLog.id)
    )
    return [dict(r.changes or {}) for r in rows]


async def test_heartbeat_reports_state_and_audits_changes_only(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    creds = await make_active_terminal(session, await make_store(session))
    r = await _beat(client, creds, status="selling", unsent_orders=3, printer="ok", scanner="ok")
    assert r.status_code == 200, r.text
    t = await _terminal(session, creds.terminal.id)
    assert (t.reported_status, t.unsent_orders, t.printer_state, t.scanner_state) == (
        "selling",
        3,
        "ok",
        "ok",
    )
    assert len(await _audited(session, t.id)) == 1

    # Only the queue changed: telemetry, not audited.
    r = await _beat(client, creds, status="selling", unsent_orders=0, printer="ok", scanner="ok")
    assert r.status_code == 200, r.text
    assert (await _terminal(session, t.id)).unsent_orders == 0
    assert len(await _audited(session, t.id)) == 1

    # The printer runs out of paper: a state change, audited with before and after.
    r = await _beat(client, creds, printer="paper_out")
    assert r.status_code == 200, r.text
    t = await _terminal(session, t.id)
    # Fields left out keep what the terminal said last.
    assert (t.reported_status, t.unsent_orders, t.scanner_state) == ("selling", 0, "ok")
    changes = await _audited(session, t.id)
    assert len(changes) == 2
    assert changes[1]["printer_state"] == {"before": "ok", "after": "paper_out"}


async def test_bad_heartbeat_is_422_naming_the_field_and_writes_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    creds = await make_active_terminal(session, await make_store(session))
    for payload, field in (
        ({"status": "exploded"}, "status"),
        ({"unsent_orders": -1}, "unsent_orders"),
        ({"printer": "on_fire"}, "printer"),
        ({"unsent_orders": "many"}, "unsent_orders"),
    ):
        r = await _beat(client, creds, **payload)
        assert r.status_code == 422, r.text
        assert field in json.dumps(r.json()), r.text
    t = await _terminal(session, creds.terminal.id)
    assert (t.last_seen_at, t.reported_status, t.unsent_orders) == (None, None, None)
    assert await _audited(session, t.id) == []


async def test_a_heartbeat_flood_from_one_terminal_is_refused_and_others_go_on(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    noisy = await make_active_terminal(session, store)
    quiet = await make_active_terminal(session, store)
    answers = [(await _beat(client, noisy)).status_code for _ in range(25)]
    assert answers[:20] == [200] * 20
    assert set(answers[20:]) == {429}
    refused = await _beat(client, noisy, status="fault")
    assert refused.status_code == 429
    assert refused.headers.get("retry-after")
    # The refused heartbeat changed nothing; another terminal of the same store is not limited.
    assert (await _terminal(session, noisy.terminal.id)).reported_status is None
    assert (await _beat(client, quiet)).status_code == 200


async def test_fleet_list_and_summary(client: httpx.AsyncClient, session: AsyncSession) -> None:
    store = await make_store(session)
    other = await make_store(session)
    now = utcnow()
    fine = await make_terminal(
        session,
        store,
        status="active",
        last_seen_at=now - timedelta(minutes=1),
        app_version="3.1.0",
        reported_status="ready",
        unsent_orders=0,
        printer_state="paper_low",
    )
    offline = await make_terminal(
        session,
        store,
        status="active",
        last_seen_at=now - timedelta(hours=2),
        app_version="3.0.9",
    )
    never = await make_terminal(session, store, status="active")
    queueing = await make_terminal(
        session,
        store,
        status="active",
        last_seen_at=now - timedelta(seconds=30),
        app_version="3.1.0",
        unsent_orders=7,
    )
    jammed = await make_terminal(
        session,
        store,
        status="active",
        last_seen_at=now - timedelta(seconds=10),
        app_version="3.1.0",
        scanner_state="error",
    )
    await make_terminal(session, store, status="disabled", last_seen_at=now - timedelta(days=3))
    foreign = await make_terminal(session, other, status="active")

    role = await make_role(session, ["terminal:read"])
    headers = await auth_headers(session, await make_user(session, role=role, stores=[store]))

    r = await client.get("/api/v1/terminals/fleet-summary", headers=headers)
    assert r.status_code == 200, r.text
    summary = r.json()
    assert {k: summary[k] for k in summary if k != "versions"} == {
        "active": 5,
        "online": 3,
        "offline": 2,
        "never_seen": 1,
        "needs_attention": 4,  # offline, never seen, unsent orders, scanner error
        "unsent_orders": 7,
    }
    assert summary["versions"] == [
        {"app_version": "3.1.0", "terminals": 3},
        {"app_version": "3.0.9", "terminals": 1},
        {"app_version": None, "terminals": 1},  # never seen: no version yet
    ]

    r = await client.get(
        "/api/v1/terminals", params={"attention": "true", "order": "silent"}, headers=headers
    )
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    # Never seen first, then the longest silent.
    assert [x["id"] for x in items] == [never.id, offline.id, queueing.id, jammed.id]
    by_id = {x["id"]: x for x in items}
    assert by_id[never.id]["silent_seconds"] is None
    assert 7190 <= by_id[offline.id]["silent_seconds"] <= 7300
    assert by_id[queueing.id]["unsent_orders"] == 7
    assert by_id[jammed.id]["scanner_state"] == "error"
    assert all(x["needs_attention"] for x in items)
    assert foreign.id not in by_id

    r = await client.get("/api/v1/terminals", params={"online": "true"}, headers=headers)
    online = {x["id"]: x for x in r.json()["items"]}
    assert set(online) == {fine.id, queueing.id, jammed.id}
    assert online[fine.id]["needs_attention"] is False  # paper low is a warning, not a problem

    r = await client.get(
        "/api/v1/terminals/fleet-summary", params={"store_id": other.id}, headers=headers
    )
    assert r.status_code == 200
    assert r.json()["active"] == 0  # a store out of scope counts nothing


async def test_online_window_is_the_setting(
    client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await make_store(session)
    await make_terminal(
        session, store, status="active", last_seen_at=utcnow() - timedelta(minutes=3)
    )
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.get("/api/v1/terminals", params={"store_id": store.id}, headers=headers)
    assert r.json()["items"][0]["online"] is True  # the default: five minutes
    shorter = get_settings().model_copy(update={"terminal_online_seconds": 120})
    monkeypatch.setattr(terminals, "get_settings", lambda: shorter)
    r = await client.get("/api/v1/terminals", params={"store_id": store.id}, headers=headers)
    assert r.json()["items"][0]["online"] is False
    r = await client.get(
        "/api/v1/terminals/fleet-summary", params={"store_id": store.id}, headers=headers
    )
    assert (r.json()["online"], r.json()["offline"]) == (0, 1)

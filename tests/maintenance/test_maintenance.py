"""Maintenance mode: writes refused with 503 `maintenance` (reads, sign-in, payment callbacks
and heartbeats still work), every API answer flagged for the console's banner, terminals told
to queue, audited, seen by another process, and the About page's migration state."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from selfmart.cli import main
from selfmart.config import get_settings
from selfmart.iam.actor import SYSTEM
from selfmart.kit.time import utcnow
from selfmart.maintenance import service as maintenance
from selfmart.migrate import upgrade
from selfmart.models import AuditLog, Order, Product, Terminal
from tests.builders import DEFAULT_PASSWORD, auth_headers, make_store, make_user
from tests.orders.builders import make_product
from tests.terminals.builders import make_active_terminal

PRODUCT = {"name": "维护期间的新品", "price_fen": 500}


async def _admin(session: AsyncSession) -> dict[str, str]:
    return await auth_headers(session, await make_user(session, role="super_admin"))


async def _switch(
    client: httpx.AsyncClient, headers: dict[str, str], **body: Any
) -> httpx.Response:
    r = await client.put("/api/v1/system/maintenance", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r


async def test_writes_are_refused_reads_and_sign_in_go_on(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await _admin(session)
    r = await client.post("/api/v1/products", json=PRODUCT, headers=headers)
    assert r.status_code == 201, r.text  # before: a write works
    products = await session.scalar(select(func.count()).select_from(Product))

    r = await _switch(client, headers, on=True, message="升级中，约 10 分钟")
    assert r.json()["on"] is True
    assert r.json()["message"] == "升级中，约 10 分钟"

    r = await client.post("/api/v1/products", json={**PRODUCT, "name": "新品 20"}, headers=headers)
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "maintenance"
    assert r.json()["message"] == "升级中，约 10 分钟"
    assert r.headers["retry-after"] == "60"
    assert await session.scalar(select(func.count()).select_from(Product)) == products

    r = await client.get("/api/v1/products", headers=headers)
    assert r.status_code == 200
    assert r.headers["x-selfmart-maintenance"] == "on"

    # Any signed-in user reads the state (the banner); only system:settings changes it.
    cashier = await auth_headers(session, await make_user(session, role="cashier"))
    r = await client.get("/api/v1/system/maintenance", headers=cashier)
    assert (r.status_code, r.json()["on"]) == (200, True)
    r = await client.put("/api/v1/system/maintenance", json={"on": False}, headers=cashier)
    assert r.status_code == 403

    await _switch(client, headers, on=False)
    r = await client.post("/api/v1/products", json={**PRODUCT, "name": "新品 37"}, headers=headers)
    assert r.status_code == 201, r.text
    assert "x-selfmart-maintenance" not in r.headers

    actions = (
        await session.scalars(
            select(AuditLog.action).where(AuditLog.entity_type == "system").order_by(AuditLog.id)
        )
    ).all()
    assert actions == ["system.maintenance_on", "system.maintenance_off"]


async def test_terminals_queue_orders_but_still_report_in(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    await make_product(session, stores=[store], price_fen=350)
    creds = await make_active_terminal(session, store)
    await _switch(client, await _admin(session), on=True)

    target = "/api/terminal/v1/orders"
    order = {
        "client_order_id": "T1-MAINT-1",
        "purchased_at": (utcnow() - timedelta(minutes=1)).isoformat(),
        "lines": [],
    }
    body, headers = creds.signed_json("POST", target, order)
    r = await client.post(target, content=body, headers=headers)
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "maintenance"
    assert await session.scalar(select(func.count()).select_from(Order)) == 0

    target = "/api/terminal/v1/heartbeat"
    body, headers = creds.signed_json("POST", target, {"app_version": "3.2.0"})
    r = await client.post(target, content=body, headers=headers)
    assert r.status_code == 200, r.text
    terminal = await session.scalar(
        select(Terminal)
        .where(Terminal.id == creds.terminal.id)
        .execution_options(populate_existing=True)
    )
    assert terminal is not None
    assert terminal.app_version == "3.2.0"


async def test_sign_in_works_during_maintenance(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await _switch(client, await _admin(session), on=True)
    user = await make_user(session, role="admin", username="maint-admin")
    r = await client.post(
        "/api/v1/auth/login", json={"username": user.username, "password": DEFAULT_PASSWORD}
    )
    assert r.status_code == 200, r.text


async def test_bad_change_is_422_and_changes_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await _admin(session)
    for body, field in (({"on": "maybe"}, "on"), ({"on": True, "message": "x" * 201}, "message")):
        r = await client.put("/api/v1/system/maintenance", json=body, headers=headers)
        assert r.status_code == 422, r.text
        assert field in json.dumps(r.json())
    assert (await maintenance.get(session)).on is False


async def test_another_process_sees_it_within_the_cache_window(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = maintenance.Cache()  # another API process's view
    assert (await other.current(sessionmaker)).on is False
    await maintenance.change(session, on=True, message="", actor=SYSTEM)
    await session.flush()
    # Within the window it still says what it read; after it, it reads again.
    assert (await other.current(sessionmaker)).on is False
    monkeypatch.setattr(maintenance, "CACHE_SECONDS", 0.0)
    assert (await other.current(sessionmaker)).on is True


async def test_requests_that_come_while_the_flag_is_read_take_the_last_state(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    connection: AsyncConnection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the window ends on a busy server, one request reads the flag again; those that
    come while it reads take the last state seen, rather than each reading it."""
    cache = maintenance.Cache()
    assert (await cache.current(sessionmaker)).on is False
    await maintenance.change(session, on=True, message="", actor=SYSTEM)
    await session.flush()
    monkeypatch.setattr(maintenance, "CACHE_SECONDS", 0.0)
    reads: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if "system_flags" in statement:
            reads.append(statement)

    event.listen(connection.sync_connection, "before_cursor_execute", count)
    try:
        states = await asyncio.gather(*(cache.current(sessionmaker) for _ in range(5)))
    finally:
        event.remove(connection.sync_connection, "before_cursor_execute", count)
    assert len(reads) == 1
    assert [s.on for s in states] == [True, False, False, False, False]
    assert (await cache.current(sessionmaker)).on is True


async def test_about_says_the_version_and_that_migrations_are_current(
    client: httpx.AsyncClient, session: AsyncSession, backend: str
) -> None:
    r = await client.get("/api/v1/system/about", headers=await _admin(session))
    assert r.status_code == 200, r.text
    about = r.json()
    assert about["database"] == backend
    assert about["migrations_up_to_date"] is True
    assert about["migration_current"] == about["migration_head"]
    assert len(about["migration_head"]) == 1
    cashier = await auth_headers(session, await make_user(session, role="cashier"))
    assert (await client.get("/api/v1/system/about", headers=cashier)).status_code == 403


def test_cli_turns_it_on_and_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'maintenance.db'}"
    monkeypatch.setenv("SELFMART_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        upgrade(url)
        runner = CliRunner()
        result = runner.invoke(main, ["maintenance", "on", "--message", "backup restore"])
        assert result.exit_code == 0, result.output
        assert "maintenance mode on" in result.output
        result = runner.invoke(main, ["maintenance", "status"])
        assert "maintenance mode on" in result.output
        assert "backup restore" in result.output
        result = runner.invoke(main, ["maintenance", "off"])
        assert "maintenance mode off" in result.output
        result = runner.invoke(main, ["maintenance", "sideways"])
        assert result.exit_code == 2
    finally:
        get_settings.cache_clear()

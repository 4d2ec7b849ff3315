"""Real concurrent requests on PostgreSQL: a signed request, or an activation code, counts once."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from selfmart.app import create_app
from selfmart.iam.actor import SYSTEM
from selfmart.models import AuditLog, Store, Terminal, TerminalKey, TerminalNonce
from selfmart.terminals import service as terminals

from ..builders import make_store
from ..support import settings_for
from .builders import Credentials, make_active_terminal, make_terminal

pytestmark = pytest.mark.postgres_only
COPIES = 20


@dataclass
class World:
    client: httpx.AsyncClient
    factory: async_sessionmaker  # type: ignore[type-arg]
    store_id: int


@pytest.fixture
async def world(db_url: str, engine: AsyncEngine, backend: str) -> AsyncIterator[World]:
    """An app on real pooled connections (each request its own transaction), with a committed
    store that is deleted, with everything under it, afterwards."""
    if backend != "postgresql":
        pytest.skip("needs real concurrent connections; SQLite serialises writers")
    factory = async_sessionmaker(engine, expire_on_commit=False)
    async with factory() as s:
        store = await make_store(s)
        await s.commit()
        store_id = store.id
    app = create_app(settings_for(db_url), engine=engine)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 40000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield World(client, factory, store_id)
    finally:
        async with factory() as s:
            ids = select(Terminal.id).where(Terminal.store_id == store_id)
            await s.execute(delete(TerminalNonce).where(TerminalNonce.terminal_id.in_(ids)))
            await s.execute(delete(TerminalKey).where(TerminalKey.terminal_id.in_(ids)))
            await s.execute(delete(AuditLog).where(AuditLog.store_id == store_id))
            await s.execute(delete(Terminal).where(Terminal.store_id == store_id))
            await s.execute(delete(Store).where(Store.id == store_id))
            await s.commit()


async def test_same_signed_request_twenty_times_at_once_is_accepted_once(world: World) -> None:
    async with world.factory() as s:
        store = await s.get(Store, world.store_id)
        assert store is not None
        creds: Credentials = await make_active_terminal(s, store)
        await s.commit()
    body = json.dumps({"app_version": "4.0.0"}).encode()
    headers = creds.sign("POST", "/api/terminal/v1/heartbeat", body)
    headers["content-type"] = "application/json"

    responses = await asyncio.gather(
        *(
            world.client.post("/api/terminal/v1/heartbeat", content=body, headers=headers)
            for _ in range(COPIES)
        )
    )
    outcomes = Counter(
        r.status_code if r.status_code == 200 else r.json()["error"] for r in responses
    )
    assert outcomes == {200: 1, "replayed_nonce": COPIES - 1}
    async with world.factory() as s:
        nonces = await s.scalar(
            select(func.count()).where(TerminalNonce.terminal_id == creds.terminal.id)
        )
        heartbeats = await s.scalar(
            select(func.count()).where(
                AuditLog.action == "terminal.heartbeat",
                AuditLog.entity_id == str(creds.terminal.id),
            )
        )
    assert nonces == 1
    assert heartbeats == 1


async def test_one_activation_code_used_twenty_times_at_once_gives_one_key(world: World) -> None:
    async with world.factory() as s:
        store = await s.get(Store, world.store_id)
        assert store is not None
        terminal = await make_terminal(s, store)
        issued = await terminals.issue_activation_code(s, terminal, actor=SYSTEM)
        await s.commit()
    payload = {"terminal_code": terminal.code, "activation_code": issued.activation_code}

    responses = await asyncio.gather(
        *(world.client.post("/api/terminal/v1/activate", json=payload) for _ in range(COPIES))
    )
    outcomes = Counter(
        r.status_code if r.status_code == 200 else r.json()["error"] for r in responses
    )
    assert outcomes == {200: 1, "activation_code_used": COPIES - 1}
    async with world.factory() as s:
        keys = await s.scalar(select(func.count()).where(TerminalKey.terminal_id == terminal.id))
    assert keys == 1

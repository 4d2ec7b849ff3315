"""The app's skeleton: health, request ids, security headers, error bodies, migrations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi import routing as fastapi_routing
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from selfmart.app import create_app
from selfmart.db import Base
from selfmart.migrate import alembic_config
from selfmart.models import PaymentCallback
from tests.support import settings_for


async def test_health_has_request_id_and_security_headers(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert len(r.headers["x-request-id"]) >= 16
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


async def test_request_id_is_echoed_when_sane(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/health", headers={"x-request-id": "terminal-abc.123"})
    assert r.headers["x-request-id"] == "terminal-abc.123"
    r = await client.get("/api/health", headers={"x-request-id": "bad id\nwith newline"})
    assert r.headers["x-request-id"] != "bad id\nwith newline"


async def test_unknown_api_path_is_404_in_error_shape(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/does-not-exist")
    assert r.status_code == 404
    body = r.json()
    assert body["error"] == "not_found"
    assert body["request_id"] == r.headers["x-request-id"]


async def test_cors_closed_by_default(client: httpx.AsyncClient) -> None:
    r = await client.options(
        "/api/health",
        headers={"origin": "https://evil.example", "access-control-request-method": "GET"},
    )
    assert "access-control-allow-origin" not in r.headers


async def test_migrations_match_models(engine: AsyncEngine) -> None:
    """Autogenerate finds no drift between the migrated schema and the ORM models."""

    def diff(sync_conn: object) -> list[object]:
        ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})  # type: ignore[arg-type]
        return list(compare_metadata(ctx, Base.metadata))

    async with engine.connect() as conn:
        changes = await conn.run_sync(diff)
    assert changes == [], f"models and migrations differ: {changes}"


def test_migrations_have_one_head() -> None:
    """Two migrations written in parallel both revising the same parent make two heads: the
    second to land adds a merge revision (as 20261205_merge_0001 did)."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"several migration heads {heads}: add a merge revision"


async def test_route_state_is_built_at_startup_not_on_the_first_request(
    engine: AsyncEngine, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastAPI builds its routes' dependency and validation state lazily, on the first request
    that looks the routes up (~1 s of CPU): the app builds it while starting, so the first
    requests after a start (a platform callback among them) do not wait for it."""
    built: list[str] = []
    real = fastapi_routing._populate_api_route_state

    def counting(route: Any, path: str, *args: Any, **kwargs: Any) -> Any:
        built.append(path)
        return real(route, path, *args, **kwargs)

    monkeypatch.setattr(fastapi_routing, "_populate_api_route_state", counting)
    app = create_app(settings_for(db_url), engine=engine)
    async with engine.connect() as conn:
        before = await conn.scalar(select(func.coalesce(func.max(PaymentCallback.id), 0)))
    try:
        async with app.router.lifespan_context(app):
            assert "/api/payments/notify/{channel}/{account_id}" in built
            at_startup = len(built)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                assert (await client.get("/api/health")).status_code == 200
                r = await client.post("/api/payments/notify/wechat/1", content=b"{}")
                assert r.status_code == 404  # no such account: the route answered it
        assert len(built) == at_startup
    finally:
        # The refused callback is recorded, committed on this real engine: left there, it was
        # the extra row the callback tests later in the same worker found ahead of theirs.
        async with engine.begin() as conn:
            await conn.execute(delete(PaymentCallback).where(PaymentCallback.id > before))


#: Run in a fresh interpreter: whether the ORM's mappers are configured before the app starts,
#: once it has started, and after its first requests (a fresh process has configured nothing).
_MAPPERS_SCRIPT = """
import asyncio, sys
import httpx
from selfmart.app import create_app
from selfmart.models import Order
from tests.support import settings_for

async def main() -> None:
    app = create_app(settings_for(sys.argv[1]))
    seen = [Order.__mapper__.configured]
    async with app.router.lifespan_context(app):
        seen.append(Order.__mapper__.configured)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.get("/api/health")).status_code == 200
    print(*seen)

asyncio.run(main())
"""


def test_orm_mappers_are_configured_at_startup_not_on_the_first_request(
    tmp_path: Path,
) -> None:
    """SQLAlchemy configures the mappers (~70 ms of CPU for our models) on the first ORM query
    of the process — in a server, on its first request (the maintenance check's): the app
    configures them while it starts, so the first requests (a platform callback among them)
    do not wait for it."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
    url = f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    done = subprocess.run(
        [sys.executable, "-c", _MAPPERS_SCRIPT, url],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]

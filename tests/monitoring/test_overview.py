"""The console's monitoring overview: host figures from psutil, the database, the slowest
routes, the job queue and the latest failures; for holders of system:settings only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import utcnow
from selfmart.models import JobRun, OutboxEvent
from selfmart.monitoring import overview

from ..builders import auth_headers, make_user


async def test_overview_reports_host_database_routes_queue_and_errors(
    client: httpx.AsyncClient, session: AsyncSession, backend: str
) -> None:
    now = utcnow()
    session.add(
        JobRun(
            kind="catalog.import_products",
            status="failed",
            error="row 3: no barcode",
            created_at=now - timedelta(minutes=3),
            finished_at=now - timedelta(minutes=2),
        )
    )
    session.add(
        OutboxEvent(
            topic="notify.deliver",
            payload={},
            status="failed",
            attempts=8,
            last_error="SMTP refused",
            created_at=now - timedelta(hours=1),
            available_at=now - timedelta(minutes=1),
        )
    )
    headers = await auth_headers(session, await make_user(session))
    await client.get("/api/v1/jobs/987654", headers=headers)  # a timed route (404)

    r = await client.get("/api/v1/monitoring/overview", headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    host = body["host"]
    assert host["cpu_count"] >= 1
    assert 0 <= host["memory_percent"] <= 100
    assert host["memory_total_bytes"] > host["memory_used_bytes"] > 0
    assert host["disk_total_bytes"] > 0
    assert host["network_received_bytes"] >= 0
    assert body["database"]["dialect"] == backend
    assert body["database"]["size_bytes"] > 0
    if backend == "postgresql":
        assert body["database"]["connections"] >= 1
    # The registry is the process's, shared with every test before this one: the timed route
    # is listed, or else every listed route is slower than it.
    listed = [((t["method"], t["route"]), t["mean_ms"]) for t in body["slowest_routes"]]
    assert 0 < len(listed) <= overview.SLOWEST
    assert [m for _, m in listed] == sorted((m for _, m in listed), reverse=True)
    everything = {(t.method, t.route): t.mean_ms for t in overview.slowest_routes(limit=None)}
    timed = ("GET", "/api/v1/jobs/{job_id}")
    assert timed in everything
    assert timed in dict(listed) or all(m >= everything[timed] for _, m in listed)
    errors = body["recent_errors"]
    assert [(e["source"], e["kind"], e["message"]) for e in errors[:2]] == [
        ("outbox", "notify.deliver", "SMTP refused"),
        ("job", "catalog.import_products", "row 3: no barcode"),
    ]
    assert body["jobs"]["failed_events"] >= 1


async def test_overview_needs_system_settings(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    admin = await make_user(session, role="admin")
    r = await client.get("/api/v1/monitoring/overview", headers=await auth_headers(session, admin))
    assert r.status_code == 403

"""The audit log is append-only: no route edits or deletes an entry."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.app import create_app
from selfmart.models import AuditLog
from tests.builders import auth_headers, make_user
from tests.support import settings_for

from .helpers import add_entry


def test_no_route_under_audit_logs_changes_anything() -> None:
    app = create_app(settings_for("sqlite+aiosqlite:///:memory:"))
    # iter_route_contexts sees into included routers (app.routes holds them unexpanded)
    audit_routes = {
        (rc.path, frozenset(rc.methods or ()))
        for rc in iter_route_contexts(app.routes)
        if (rc.path or "").startswith("/api/v1/audit")
    }
    assert {path for path, _ in audit_routes} == {
        "/api/v1/audit-logs",
        "/api/v1/audit-logs/export",
        "/api/v1/audit-logs/actions",
    }
    for path, methods in audit_routes:
        assert methods <= {"GET", "HEAD"}, f"{path} accepts {set(methods)}"
    spec = app.openapi()["paths"]
    audit_paths = {p: set(ops) for p, ops in spec.items() if p.startswith("/api/v1/audit")}
    assert audit_paths == {
        "/api/v1/audit-logs": {"get"},
        "/api/v1/audit-logs/export": {"get"},
        "/api/v1/audit-logs/actions": {"get"},
    }


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "POST"])
async def test_entries_cannot_be_changed_through_the_api(
    method: str, session: AsyncSession, client: httpx.AsyncClient
) -> None:
    headers = await auth_headers(session, await make_user(session))  # super admin: every code
    entry = await add_entry(session, datetime(2026, 3, 1, tzinfo=UTC), note="original")
    before = await session.scalar(select(func.count()).select_from(AuditLog))
    body = {"note": "tampered", "action": "nothing.happened"}
    for path in (f"/api/v1/audit-logs/{entry.id}", "/api/v1/audit-logs"):
        r = await client.request(method, path, headers=headers, json=body)
        assert r.status_code in {404, 405}, (method, path, r.status_code)
    await session.refresh(entry)
    assert (entry.note, entry.action) == ("original", "product.update")
    assert await session.scalar(select(func.count()).select_from(AuditLog)) == before

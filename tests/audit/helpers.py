"""Audit entries with chosen times and fields, for search and export tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import AuditLog


async def add_entry(
    session: AsyncSession,
    occurred_at: datetime,
    *,
    action: str = "product.update",
    entity_type: str = "product",
    entity_id: str | None = "1",
    entity_label: str | None = None,
    store_id: int | None = None,
    actor_type: str = "user",
    actor_id: str | None = "7",
    actor_name: str = "alice",
    changes: dict[str, Any] | None = None,
    note: str | None = None,
    request_id: str | None = None,
) -> AuditLog:
    entry = AuditLog(
        occurred_at=occurred_at,
        actor_type=actor_type,
        actor_id=actor_id,
        actor_name=actor_name,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        entity_label=entity_label,
        store_id=store_id,
        changes=changes or {},
        note=note,
        ip="203.0.113.9",
        request_id=request_id,
    )
    session.add(entry)
    await session.flush()
    return entry

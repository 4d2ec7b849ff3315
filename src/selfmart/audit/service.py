"""Writing audit entries: called by every service that changes state, in the same transaction."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import Actor
from selfmart.kit.context import current_ip, current_request_id
from selfmart.kit.time import utcnow
from selfmart.models import AuditLog

#: Fields whose values never reach the audit log (they are shown as "***").
SECRET_FIELDS = frozenset(
    {
        "password",
        "password_hash",
        "secret",
        "secret_encrypted",
        "refresh_hash",
        "activation_code_hash",
        "activation_code",
    }
)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def snapshot(obj: object, fields: Iterable[str]) -> dict[str, Any]:
    """The named attributes of `obj`, as JSON-ready values."""
    return {f: _plain(getattr(obj, f)) for f in fields}


def diff(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, Any]:
    """{"field": {"before": x, "after": y}} for every field that differs."""
    before = before or {}
    after = after or {}
    out: dict[str, Any] = {}
    for key in sorted(set(before) | set(after)):
        b, a = _plain(before.get(key)), _plain(after.get(key))
        if b != a:
            if key in SECRET_FIELDS:
                b, a = ("***" if b is not None else None), ("***" if a is not None else None)
            out[key] = {"before": b, "after": a}
    return out


async def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: object | None,
    *,
    store_id: int | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    note: str | None = None,
) -> AuditLog:
    """Add one audit entry to the current transaction (flushed with the change it records)."""
    entry = AuditLog(
        occurred_at=utcnow(),
        actor_type=actor.kind,
        actor_id=actor.audit_id,
        actor_name=actor.name,
        action=action,
        entity_type=entity_type,
        entity_id=None if entity_id is None else str(entity_id),
        store_id=store_id,
        changes=diff(before, after),
        note=note,
        ip=current_ip(),
        request_id=current_request_id(),
    )
    session.add(entry)
    return entry

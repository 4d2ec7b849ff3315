"""Audit entries as the console reads them, and the search filter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from selfmart.kit.schema import Schema

ExportFormat = Literal["xlsx", "csv"]


class AuditLogRead(Schema):
    id: int
    occurred_at: datetime
    actor_type: str
    actor_id: str | None
    actor_name: str
    action: str
    entity_type: str
    entity_id: str | None
    #: the entity's name or document number ("可口可乐 330ml", "SO202612060001")
    entity_label: str | None
    store_id: int | None
    changes: dict[str, Any]
    note: str | None
    ip: str | None
    request_id: str | None


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor_type: str | None = None
    actor_id: str | None = None
    #: part of the actor's name
    actor: str | None = None
    #: exact action, or a prefix when it ends with "*" ("product.*")
    action: str | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    #: part of the entity's name or document number
    entity: str | None = None
    store_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    #: free text: actor name, action, entity (type, id, name), note, request id
    q: str | None = None
    #: "security" (denials, lockouts, key rotations, PII reveals: audit.security) or "change"
    kind: Literal["security", "change"] | None = None

"""The append-only audit log: who changed what, from where, before and after."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from selfmart.db import Base, BigIntId, JSONDoc


class AuditLog(Base):
    __tablename__ = "audit_logs"
    __table_args__ = (
        Index("ix_audit_logs_entity", "entity_type", "entity_id"),
        Index("ix_audit_logs_actor", "actor_type", "actor_id"),
        Index("ix_audit_logs_occurred_at", "occurred_at"),
        # one store's or one action's newest entries: an index range (bench/bench_logs.py)
        Index("ix_audit_logs_store_occurred", "store_id", "occurred_at"),
        Index("ix_audit_logs_action_occurred", "action", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    occurred_at: Mapped[datetime]
    #: user | terminal | system | job | payment_callback
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(100), default="")
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    #: the entity's name or document number when the entry was written
    entity_label: Mapped[str | None] = mapped_column(String(200))
    store_id: Mapped[int | None]
    #: {"field": {"before": x, "after": y}, ...}
    changes: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    note: Mapped[str | None] = mapped_column(String(500))
    ip: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64), index=True)

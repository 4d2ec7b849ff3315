"""Audit entries carry actor, change set, request id; secrets never appear in them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.iam.actor import Actor
from selfmart.models import AuditLog


async def test_record_keeps_only_changed_fields_and_masks_secrets(session: AsyncSession) -> None:
    actor = Actor(kind="user", id=7, name="alice")
    await audit.record(
        session,
        actor,
        "user.update",
        "user",
        42,
        store_id=3,
        before={"display_name": "A", "email": "a@x.cn", "password_hash": "old"},
        after={"display_name": "B", "email": "a@x.cn", "password_hash": "new"},
    )
    await session.flush()
    entry = (await session.scalars(select(AuditLog).where(AuditLog.entity_id == "42"))).one()
    assert entry.actor_type == "user"
    assert entry.actor_id == "7"
    assert entry.store_id == 3
    assert entry.changes == {
        "display_name": {"before": "A", "after": "B"},
        "password_hash": {"before": "***", "after": "***"},
    }
    assert entry.occurred_at.tzinfo is not None


def test_created_is_a_diff_from_nothing_of_json_ready_values() -> None:
    """`created` (bulk creations) writes what `diff(None, ...)` writes, secrets masked too."""
    after = {"name": "可乐", "price_fen": 350, "member_price_fen": None, "track_batches": False}
    after |= {"barcodes": ["6901234567892"], "tags": [], "password": "x", "zero": 0}
    assert audit.created(after) == audit.diff(None, after)
    assert audit.created(after)["password"] == {"before": None, "after": "***"}
    assert "member_price_fen" not in audit.created(after)

"""Pruning every log by its retention setting (docs/operations.md, "Log retention")."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.audit import service as audit
from selfmart.behaviour import service as behaviour
from selfmart.config import Settings
from selfmart.iam import sessions
from selfmart.iam.actor import job_actor
from selfmart.kit.time import utcnow

log = logging.getLogger(__name__)

ACTION = "log.prune"


async def prune_logs(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    now: datetime | None = None,
) -> dict[str, int]:
    """Delete what each log keeps no longer, in short batches; returns the rows deleted per
    log, and writes them to the audit log (one entry, when anything was deleted)."""
    now = now or utcnow()
    batch = settings.retention_batch_rows

    def before(days: int) -> datetime:
        return now - timedelta(days=days)

    counts = await audit.prune(
        sessionmaker,
        changes_before=before(settings.retention_audit_days),
        security_before=before(settings.retention_security_days),
        batch=batch,
    )
    counts["business"] = await behaviour.prune(
        sessionmaker, before=before(settings.retention_business_days), batch=batch
    )
    counts["login"] = await sessions.prune_login_log(
        sessionmaker, before=before(settings.retention_login_days), batch=batch
    )
    if any(counts.values()):
        async with sessionmaker() as session:
            await audit.record(
                session,
                job_actor(ACTION),
                ACTION,
                "log",
                None,
                after={
                    **counts,
                    "days": {
                        "audit": settings.retention_audit_days,
                        "security": settings.retention_security_days,
                        "business": settings.retention_business_days,
                        "login": settings.retention_login_days,
                    },
                },
                label="logs",
            )
            await session.commit()
    log.info("logs pruned: %s", counts)
    return counts

"""Background work of the members domain: the nightly run that expires points whose time has
come, re-evaluates every member's tier (downgrades when the programme turns them on) and gives
the tiers' birthday points in the birthday month."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import job_actor
from selfmart.jobs import outbox, runtime
from selfmart.jobs import service as jobs
from selfmart.jobs.registry import Cron, task
from selfmart.kit.time import utcnow
from selfmart.members import coupons, import_jobs, points, tiers
from selfmart.models import CouponIssue

NIGHTLY = "members.nightly"
#: registered by importing its module: large imports run as this job
IMPORT_JOB = import_jobs.IMPORT_JOB
ISSUE_JOB = "members.issue_coupons"


@outbox.handler(tiers.TIER_SMS_TOPIC)
async def text_tier_changes(session: AsyncSession, payload: dict[str, Any]) -> None:
    """The SMS of a chunk of the nightly's tier changes."""
    await tiers.text_changes(session, [int(i) for i in payload["change_ids"]])


@task(NIGHTLY, schedule=[Cron("15 2 * * *")])
async def nightly() -> dict[str, int]:
    """Each batch in its own transaction, so a long run holds no lock for long."""
    actor = job_actor(NIGHTLY)
    expired = 0
    while True:
        async with runtime.transaction() as session:
            due = await points.members_with_due_lots(session)
            for member_id in due:
                expired += len(await points.expire_due(session, member_id))
        if not due:
            break
    changed = 0
    after_id = 0
    while True:
        async with runtime.transaction() as session:
            after_id, n = await tiers.reevaluate_all(session, actor=actor, after_id=after_id)
        changed += n
        if after_id == 0:
            break
    async with runtime.transaction() as session:
        birthdays = await tiers.grant_birthday_points(
            session, actor=actor, zone=runtime.settings().default_timezone
        )
    async with runtime.transaction() as session:
        birthday_coupons = await coupons.issue_birthday(
            session, zone=runtime.settings().default_timezone, actor=actor
        )
    return {
        "expired_lots": expired,
        "tier_changes": changed,
        "birthday_grants": birthdays,
        "birthday_coupons": birthday_coupons,
    }


@jobs.job(ISSUE_JOB)
async def issue_coupons(run: jobs.RunningJob) -> Mapping[str, Any]:
    """A template's coupons to a segment or a tier, a chunk per transaction, with progress.
    A run delivered twice issues nothing twice (each coupon carries the run's issue key)."""
    issue_id = int(run.params["issue_id"])
    async with runtime.transaction() as session:
        issue = await session.get(CouponIssue, issue_id)
        assert issue is not None
        issue.status = "running"
    issued = 0
    done = 0
    after_id = 0
    try:
        while True:
            async with runtime.transaction() as session:
                issue = await session.get(CouponIssue, issue_id)
                assert issue is not None
                ids = await coupons.target_ids(session, issue, after_id=after_id, limit=500)
                if ids:
                    issued += await coupons.issue_chunk(session, issue, ids)
            if not ids:
                break
            after_id = ids[-1]
            done += len(ids)
            await run.progress(done)
    except Exception:
        async with runtime.transaction() as session:
            await session.execute(
                update(CouponIssue)
                .where(CouponIssue.id == issue_id)
                .values(status="failed", finished_at=utcnow())
            )
        raise
    async with runtime.transaction() as session:
        await session.execute(
            update(CouponIssue)
            .where(CouponIssue.id == issue_id)
            .values(status="done", finished_at=utcnow())
        )
    return {"issue_id": issue_id, "members": done, "issued": issued}

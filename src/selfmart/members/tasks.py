"""Background work of the members domain: the nightly run that expires points whose time has
come, re-evaluates every member's tier (downgrades when the programme turns them on) and gives
the tiers' birthday points in the birthday month."""

from __future__ import annotations

from selfmart.iam.actor import job_actor
from selfmart.jobs import runtime
from selfmart.jobs.registry import Cron, task
from selfmart.members import points, tiers

NIGHTLY = "members.nightly"


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
    return {"expired_lots": expired, "tier_changes": changed, "birthday_grants": birthdays}

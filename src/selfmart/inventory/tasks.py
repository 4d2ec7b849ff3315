"""Background work of the inventory domain: alert notifications (outbox), the daily digest,
and the daily near-expiry scan."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.inventory import batches, notifications
from selfmart.inventory import robots as _robots  # noqa: F401  (registers the robot channels)
from selfmart.jobs import outbox, runtime
from selfmart.jobs.registry import Cron, task
from selfmart.kit.time import utcnow

#: A batch is near expiry this many days ahead.
NEAR_EXPIRY_DAYS = 3


@outbox.handler(notifications.ALERTS_OPENED)
async def alerts_opened(session: AsyncSession, payload: dict[str, Any]) -> None:
    await notifications.deliver_opened(session, [int(i) for i in payload.get("alert_ids", [])])


@task("inventory.alert_digest", schedule=[Cron("0 9 * * *")])
async def alert_digest() -> int:
    today = utcnow().astimezone(ZoneInfo(runtime.settings().default_timezone)).date()
    async with runtime.transaction() as session:
        return await notifications.send_digests(session, today=today)


@task("inventory.scan_near_expiry", schedule=[Cron("30 7 * * *")])
async def scan_near_expiry() -> int:
    async with runtime.transaction() as session:
        opened = await batches.scan_near_expiry(session, within_days=NEAR_EXPIRY_DAYS)
    return len(opened)

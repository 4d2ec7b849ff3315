"""Alert rules (create, change, disable, delete) and the people's side of alerts: the list,
acknowledging and resolving by hand. Every change is audited. A deleted rule is archived, not
removed, so the history of its alerts stays. The evaluation job is in alerts/evaluate.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.alerts.exceptions import (
    AlertAlreadyAcknowledged,
    AlertAlreadyResolved,
    AlertNotFound,
    RuleNotFound,
)
from selfmart.alerts.metrics import METRICS
from selfmart.alerts.schemas import AlertRuleCreate, AlertRuleRead, AlertRuleUpdate, SystemAlertRead
from selfmart.audit import service as audit
from selfmart.errors import ValidationFailed
from selfmart.iam import service as iam
from selfmart.iam.actor import Actor
from selfmart.kit.pagination import PageParams
from selfmart.kit.time import utcnow
from selfmart.models import Alert, AlertRule
from selfmart.models.alert import LIVE_STATUSES
from selfmart.notify import channels as notify_channels
from selfmart.notify.channels import IN_APP
from selfmart.stores import service as stores

AUDITED = (
    "name",
    "metric",
    "comparison",
    "threshold",
    "duration_seconds",
    "window_minutes",
    "severity",
    "store_id",
    "channels",
    "user_ids",
    "role_ids",
    "renotify_minutes",
    "enabled",
    "archived_at",
)
ALERT_AUDITED = ("status", "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by")


async def _check(session: AsyncSession, rule: AlertRule) -> None:
    """A rule that can be evaluated and reaches someone; otherwise a 422 naming the field."""
    if METRICS[rule.metric].per in ("chain", "machine") and rule.store_id is not None:
        raise ValidationFailed(
            f"{rule.metric} is a figure of the deployment or its machines, not of one store",
            field="store_id",
        )
    if rule.store_id is not None and not await stores.list_by_ids(session, [rule.store_id]):
        raise ValidationFailed("No such store", field="store_id")
    known = {IN_APP, *notify_channels.names()}
    unknown = [c for c in rule.channels if c not in known]
    if unknown:
        raise ValidationFailed(
            f"Unknown notification channel(s): {', '.join(unknown)}", field="channels"
        )
    if not rule.user_ids and not rule.role_ids:
        raise ValidationFailed("Name at least one user or role to tell", field="user_ids")
    missing_users = set(rule.user_ids) - await iam.existing_user_ids(session, rule.user_ids)
    if missing_users:
        raise ValidationFailed(f"No such user(s): {sorted(missing_users)}", field="user_ids")
    missing_roles = set(rule.role_ids) - await iam.existing_role_ids(session, rule.role_ids)
    if missing_roles:
        raise ValidationFailed(f"No such role(s): {sorted(missing_roles)}", field="role_ids")


def _dedup(values: Sequence[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


async def _live_counts(session: AsyncSession, rule_ids: Sequence[int]) -> dict[int, int]:
    if not rule_ids:
        return {}
    rows = await session.execute(
        select(Alert.rule_id, func.count())
        .where(Alert.rule_id.in_(list(rule_ids)), Alert.status.in_(("open", "acknowledged")))
        .group_by(Alert.rule_id)
    )
    return {int(r): int(n) for r, n in rows}


def read_rule(rule: AlertRule, live: int = 0) -> AlertRuleRead:
    return AlertRuleRead.model_validate(
        {**{k: getattr(rule, k) for k in AlertRuleRead.model_fields if k != "live_alerts"}}
        | {"live_alerts": live}
    )


async def list_rules(session: AsyncSession) -> list[AlertRuleRead]:
    rules = list(
        (
            await session.scalars(
                select(AlertRule).where(AlertRule.archived_at.is_(None)).order_by(AlertRule.id)
            )
        ).all()
    )
    live = await _live_counts(session, [r.id for r in rules])
    return [read_rule(r, live.get(r.id, 0)) for r in rules]


async def get_rule(session: AsyncSession, rule_id: int) -> AlertRule:
    rule = await session.get(AlertRule, rule_id)
    if rule is None or rule.archived_at is not None:
        raise RuleNotFound(field="rule_id")
    return rule


async def create_rule(
    session: AsyncSession, data: AlertRuleCreate, *, actor: Actor
) -> AlertRuleRead:
    values = data.model_dump()
    for key in ("channels", "user_ids", "role_ids"):
        values[key] = _dedup(values[key])
    rule = AlertRule(**values)
    await _check(session, rule)
    session.add(rule)
    await session.flush()
    await audit.record(
        session,
        actor,
        "alert_rule.create",
        "alert_rule",
        rule.id,
        store_id=rule.store_id,
        after=audit.snapshot(rule, AUDITED),
        label=rule.name,
    )
    return read_rule(rule)


async def update_rule(
    session: AsyncSession, rule_id: int, data: AlertRuleUpdate, *, actor: Actor
) -> AlertRuleRead:
    rule = await get_rule(session, rule_id)
    before = audit.snapshot(rule, AUDITED)
    changes = data.model_dump(exclude_unset=True)
    for key in ("name", "metric", "comparison", "threshold", "duration_seconds", "severity"):
        if key in changes and changes[key] is None:
            raise ValidationFailed("May not be empty", field=key)
    for key, value in changes.items():
        if key in ("channels", "user_ids", "role_ids"):
            value = _dedup(value or [])
        if key in ("window_minutes", "enabled") and value is None:
            continue
        setattr(rule, key, value)
    await _check(session, rule)
    if rule.enabled is False and before["enabled"]:
        await _resolve_live(session, rule, by=actor.name, note="rule disabled")
    await session.flush()
    await audit.record(
        session,
        actor,
        "alert_rule.update",
        "alert_rule",
        rule.id,
        store_id=rule.store_id,
        before=before,
        after=audit.snapshot(rule, AUDITED),
        label=rule.name,
    )
    live = await _live_counts(session, [rule.id])
    return read_rule(rule, live.get(rule.id, 0))


async def delete_rule(session: AsyncSession, rule_id: int, *, actor: Actor) -> None:
    """Delete a rule: it stops and leaves the list of rules, its live alerts are resolved, and
    it is kept archived so that its alerts' history still names it and its condition."""
    rule = await get_rule(session, rule_id)
    before = audit.snapshot(rule, AUDITED)
    await _resolve_live(session, rule, by=actor.name, note="rule deleted")
    rule.enabled = False
    rule.archived_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        actor,
        "alert_rule.delete",
        "alert_rule",
        rule.id,
        store_id=rule.store_id,
        before=before,
        after=audit.snapshot(rule, AUDITED),
        label=rule.name,
    )


async def _resolve_live(session: AsyncSession, rule: AlertRule, *, by: str, note: str) -> None:
    now = utcnow()
    for alert in (
        await session.scalars(
            select(Alert).where(Alert.rule_id == rule.id, Alert.status.in_(LIVE_STATUSES))
        )
    ).all():
        if alert.status == "pending":
            await session.delete(alert)
        else:
            alert.status, alert.resolved_at, alert.resolved_by = "resolved", now, by
            alert.note = alert.note or note


# --- alerts ---------------------------------------------------------------------------------


def _alerts_query(
    actor: Actor,
    *,
    status: str | None,
    severity: str | None,
    store_id: int | None,
    rule_id: int | None,
    metric: str | None,
) -> Select[Alert, AlertRule]:
    stmt = (
        select(Alert, AlertRule)
        .join(AlertRule, AlertRule.id == Alert.rule_id)
        .where(Alert.status != "pending")
    )
    if actor.store_ids is not None:
        stmt = stmt.where(Alert.store_id.in_(list(actor.store_ids)))
    if status is not None:
        stmt = stmt.where(Alert.status == status)
    if severity is not None:
        stmt = stmt.where(Alert.severity == severity)
    if store_id is not None:
        stmt = stmt.where(Alert.store_id == store_id)
    if rule_id is not None:
        stmt = stmt.where(Alert.rule_id == rule_id)
    if metric is not None:
        stmt = stmt.where(AlertRule.metric == metric)
    return stmt.order_by(Alert.fired_at.desc(), Alert.id.desc())


def read_alert(alert: Alert, rule: AlertRule) -> SystemAlertRead:
    own = {k: getattr(alert, k) for k in SystemAlertRead.model_fields if hasattr(Alert, k)}
    return SystemAlertRead.model_validate(
        own
        | {
            "rule_name": rule.name,
            "metric": rule.metric,
            "comparison": rule.comparison,
            "threshold": rule.threshold,
            "rule_archived": rule.archived_at is not None,
        }
    )


async def list_alerts(
    session: AsyncSession,
    actor: Actor,
    params: PageParams,
    *,
    status: str | None = None,
    severity: str | None = None,
    store_id: int | None = None,
    rule_id: int | None = None,
    metric: str | None = None,
) -> tuple[list[SystemAlertRead], int]:
    stmt = _alerts_query(
        actor, status=status, severity=severity, store_id=store_id, rule_id=rule_id, metric=metric
    )
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = (await session.execute(stmt.limit(params.size).offset(params.offset))).all()
    return [read_alert(a, r) for a, r in rows], int(total or 0)


async def _alert(session: AsyncSession, actor: Actor, alert_id: int) -> tuple[Alert, AlertRule]:
    row = (
        await session.execute(
            _alerts_query(
                actor, status=None, severity=None, store_id=None, rule_id=None, metric=None
            ).where(Alert.id == alert_id)
        )
    ).one_or_none()
    if row is None:
        raise AlertNotFound(field="system_alert_id")
    return row[0], row[1]


async def acknowledge(
    session: AsyncSession, alert_id: int, *, actor: Actor, note: str | None = None
) -> SystemAlertRead:
    """Someone is on it: no more reminders; the alert still resolves when the condition
    clears. Acknowledging again is a 409 naming who did (and changes nothing)."""
    alert, rule = await _alert(session, actor, alert_id)
    if alert.status == "resolved":
        raise AlertAlreadyResolved(field="system_alert_id")
    if alert.status == "acknowledged":
        raise AlertAlreadyAcknowledged(
            f"{alert.acknowledged_by or 'Someone'} acknowledged the alert already",
            field="system_alert_id",
        )
    if alert.status == "open":
        before = audit.snapshot(alert, ALERT_AUDITED)
        alert.status, alert.acknowledged_at, alert.acknowledged_by = (
            "acknowledged",
            utcnow(),
            actor.name,
        )
        if note:
            alert.note = note
        await session.flush()
        await audit.record(
            session,
            actor,
            "alert.acknowledge",
            "alert",
            alert.id,
            store_id=alert.store_id,
            before=before,
            after=audit.snapshot(alert, ALERT_AUDITED),
            note=note,
            label=f"{rule.name} {alert.subject_label}".strip(),
        )
    return read_alert(alert, rule)


async def resolve(
    session: AsyncSession, alert_id: int, *, actor: Actor, note: str | None = None
) -> SystemAlertRead:
    """Close the alert by hand. If the condition still holds, the next evaluation starts a
    new episode (which fires again after the rule's duration)."""
    alert, rule = await _alert(session, actor, alert_id)
    if alert.status == "resolved":
        raise AlertAlreadyResolved(field="system_alert_id")
    before = audit.snapshot(alert, ALERT_AUDITED)
    alert.status, alert.resolved_at, alert.resolved_by = "resolved", utcnow(), actor.name
    if note:
        alert.note = note
    await session.flush()
    await audit.record(
        session,
        actor,
        "alert.resolve",
        "alert",
        alert.id,
        store_id=alert.store_id,
        before=before,
        after=audit.snapshot(alert, ALERT_AUDITED),
        note=note,
        label=f"{rule.name} {alert.subject_label}".strip(),
    )
    return read_alert(alert, rule)

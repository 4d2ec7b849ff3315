"""Evaluating the rules (every minute, alerts/tasks.py): a condition that holds for the rule's
duration opens ONE alert per rule and subject and tells the recipients once (again every
`renotify_minutes` while nobody acknowledged it, when the rule asks); when it clears, the alert
resolves and they are told so.

Deduplication holds across processes: rules are locked while evaluated (PostgreSQL; SKIP LOCKED,
so an overlapping run leaves them to the first), and a partial unique index allows one live
alert per rule and subject.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.alerts.metrics import (
    CHAIN,
    METRICS,
    Context,
    HostSample,
    MachineFigures,
    Reading,
)
from selfmart.config import Settings
from selfmart.iam import service as iam
from selfmart.kit.time import utcnow
from selfmart.models import Alert, AlertRule
from selfmart.models.alert import LIVE_STATUSES
from selfmart.monitoring import overview
from selfmart.notify.texts import MessageText, Phrase

log = logging.getLogger(__name__)

FIRED = "alert.fired"
RESOLVED = "alert.resolved"
OPS = {"gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}
SEVERITY_ZH = {"info": "提示", "warning": "警告", "critical": "严重"}
METRIC_ZH = {
    "cpu_percent": "CPU 使用率",
    "memory_percent": "内存使用率",
    "disk_percent": "磁盘使用率",
    "error_rate": "错误率（5xx 占比）",
    "p95_ms": "P95 响应时间",
    "job_backlog": "任务积压",
    "job_lag_seconds": "任务延迟",
    "terminal_offline_minutes": "终端离线分钟数",
    "store_no_orders_minutes": "营业中无订单分钟数",
    "payment_failure_rate": "支付失败率",
    "reconciliation_open": "未处理对账差异",
}

#: the HTTP totals this process saw at its previous evaluation (the window starts there)
_last_http: overview.HttpTotals | None = None


def http_window() -> overview.HttpTotals | None:
    """Requests answered since this process's previous evaluation (None on its first: no
    window yet). The figures are this machine's processes' (docs/operations.md)."""
    global _last_http
    current = overview.http_totals()
    previous, _last_http = _last_http, current
    return None if previous is None else current.since(previous)


def holds(comparison: str, value: float, threshold: float) -> bool:
    if comparison == "gt":
        return value > threshold
    if comparison == "gte":
        return value >= threshold
    if comparison == "lt":
        return value < threshold
    return value <= threshold


@dataclass
class Report:
    rules: int = 0
    fired: int = 0
    renotified: int = 0
    resolved: int = 0
    pending: int = 0


def _num(value: float) -> str:
    return f"{round(value, 2):g}"


def _text(rule: AlertRule, alert: Alert, *, resolved: bool) -> tuple[str, str, MessageText]:
    unit = METRICS[rule.metric].unit
    subject = alert.subject_label or ("全链" if alert.subject == CHAIN else alert.subject)
    value, threshold = _num(alert.last_value), _num(rule.threshold)
    op = OPS[rule.comparison]
    tag = "已恢复" if resolved else SEVERITY_ZH[rule.severity]
    title = f"【{tag}】{rule.name}：{subject}"
    body = f"{METRIC_ZH[rule.metric]} {value}{unit}，规则 {op} {threshold}{unit}。" + (
        "条件已解除。" if resolved else f"自 {alert.since.isoformat()} 起持续。"
    )
    params = {
        "rule": rule.name,
        "subject": subject,
        "metric": rule.metric,
        "value": value,
        "threshold": threshold,
        "op": op,
        "unit": unit,
        "severity": rule.severity,
    }
    key = "alerts.resolved" if resolved else "alerts.fired"
    return title, body, MessageText(Phrase(key, params), [Phrase("alerts.line", params)])


async def _tell(session: AsyncSession, rule: AlertRule, alert: Alert, *, resolved: bool) -> None:
    from selfmart.notify import service as notify

    users = sorted(
        {int(u) for u in rule.user_ids}
        | set(await iam.active_users_in_roles(session, [int(r) for r in rule.role_ids]))
    )
    title, body, text = _text(rule, alert, resolved=resolved)
    await notify.send(
        session,
        kind=RESOLVED if resolved else FIRED,
        title=title,
        body=body,
        user_ids=users,
        channels=list(rule.channels),
        store_id=alert.store_id,
        link=f"/alerts?alert={alert.id}",
        data={"alert_id": alert.id, "rule_id": rule.id},
        text=text,
    )
    alert.notifications += 1
    alert.last_notified_at = utcnow()


async def _evaluate_rule(
    session: AsyncSession, ctx: Context, rule: AlertRule, report: Report
) -> None:
    now = ctx.now
    readings: list[Reading] = await METRICS[rule.metric].read(ctx, rule)
    live = {
        a.subject: a
        for a in (
            await session.scalars(
                select(Alert).where(Alert.rule_id == rule.id, Alert.status.in_(LIVE_STATUSES))
            )
        ).all()
    }
    holding: set[str] = set()
    for reading in readings:
        if not holds(rule.comparison, reading.value, rule.threshold):
            continue
        holding.add(reading.subject)
        alert = live.get(reading.subject)
        if alert is None:
            alert = Alert(
                rule_id=rule.id,
                subject=reading.subject,
                subject_label=reading.label[:200],
                store_id=reading.store_id,
                status="pending",
                severity=rule.severity,
                since=now,
                last_value=reading.value,
                last_seen_at=now,
                notifications=0,
            )
            session.add(alert)
            live[reading.subject] = alert
        else:
            alert.last_value, alert.last_seen_at = reading.value, now
        if alert.status == "pending":
            if now - alert.since >= timedelta(seconds=rule.duration_seconds):
                alert.status, alert.fired_at, alert.fired_value = "open", now, reading.value
                alert.severity = rule.severity
                await session.flush()  # its id, for the link
                await _tell(session, rule, alert, resolved=False)
                report.fired += 1
            else:
                report.pending += 1
        elif (
            alert.status == "open"
            and rule.renotify_minutes
            and alert.last_notified_at is not None
            and now - alert.last_notified_at >= timedelta(minutes=rule.renotify_minutes)
        ):
            await _tell(session, rule, alert, resolved=False)
            report.renotified += 1
    for subject, alert in live.items():
        if subject in holding:
            continue
        if alert.status == "pending":
            await session.delete(alert)
            continue
        alert.status, alert.resolved_at = "resolved", now
        await session.flush()
        await _tell(session, rule, alert, resolved=True)
        report.resolved += 1
    await session.flush()


async def evaluate(
    session: AsyncSession,
    settings: Settings,
    *,
    now: datetime | None = None,
    host: HostSample | None = None,
    http: overview.HttpTotals | None = None,
    machines: list[MachineFigures] | None = None,
) -> Report:
    """Evaluate every enabled rule once, in the caller's transaction. `machines` are every
    machine's figures (read here when not given: with Redis, the samples the machines
    published; without, this machine's, where `host` and `http` stand for its host figures and
    the requests of the window)."""
    ctx = Context(
        session=session,
        settings=settings,
        now=now or utcnow(),
        host=host,
        http=http if http is not None else http_window(),
        machines=machines,
    )
    rules = (
        await session.scalars(
            select(AlertRule)
            .where(AlertRule.enabled.is_(True))
            .order_by(AlertRule.id)
            .with_for_update(skip_locked=True)
        )
    ).all()
    report = Report(rules=len(rules))
    for rule in rules:
        await _evaluate_rule(session, ctx, rule, report)
    return report

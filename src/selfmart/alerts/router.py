"""HTTP routes of alerting: rules (system:settings) and the alerts they raised."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from selfmart.alerts import service as alerts
from selfmart.alerts.metrics import METRICS
from selfmart.alerts.schemas import (
    AlertMetricInfo,
    AlertNote,
    AlertRuleCreate,
    AlertRuleRead,
    AlertRuleUpdate,
    AlertStatus,
    MetricName,
    Severity,
    SystemAlertRead,
)
from selfmart.deps import SessionDep
from selfmart.errors import error_responses
from selfmart.iam.actor import Actor
from selfmart.iam.dependencies import require
from selfmart.iam.permissions import Perm
from selfmart.kit.ids import PathId, QueryId
from selfmart.kit.pagination import Page, PageParams, page_params

router = APIRouter(prefix="/alerts", tags=["alerts"])

Operator = Annotated[Actor, require(Perm.SYSTEM_SETTINGS)]
Pages = Annotated[PageParams, Depends(page_params)]
R = error_responses(401, 403, 422)
R_ID = error_responses(401, 403, 404, 409, 422)


@router.get(
    "/metrics", response_model=list[AlertMetricInfo], operation_id="listAlertMetrics", responses=R
)
async def list_metrics(actor: Operator) -> list[AlertMetricInfo]:
    """What a rule may watch, its unit, and what one reading is about."""
    return [AlertMetricInfo(name=m.name, unit=m.unit, per=m.per) for m in METRICS.values()]


@router.get(
    "/rules", response_model=list[AlertRuleRead], operation_id="listAlertRules", responses=R
)
async def list_rules(session: SessionDep, actor: Operator) -> list[AlertRuleRead]:
    return await alerts.list_rules(session)


@router.post(
    "/rules",
    response_model=AlertRuleRead,
    status_code=201,
    operation_id="createAlertRule",
    responses=R,
)
async def create_rule(body: AlertRuleCreate, session: SessionDep, actor: Operator) -> AlertRuleRead:
    return await alerts.create_rule(session, body, actor=actor)


@router.patch(
    "/rules/{rule_id}", response_model=AlertRuleRead, operation_id="updateAlertRule", responses=R_ID
)
async def update_rule(
    rule_id: PathId, body: AlertRuleUpdate, session: SessionDep, actor: Operator
) -> AlertRuleRead:
    """Change a rule; `enabled: false` disables it and resolves its live alerts."""
    return await alerts.update_rule(session, rule_id, body, actor=actor)


@router.delete("/rules/{rule_id}", status_code=204, operation_id="deleteAlertRule", responses=R_ID)
async def delete_rule(rule_id: PathId, session: SessionDep, actor: Operator) -> Response:
    """Delete a rule: it stops and leaves the rules; its alerts' history is kept (the rule is
    archived, its live alerts resolved)."""
    await alerts.delete_rule(session, rule_id, actor=actor)
    return Response(status_code=204)


@router.get("", response_model=Page[SystemAlertRead], operation_id="listAlerts", responses=R)
async def list_alerts(
    params: Pages,
    session: SessionDep,
    actor: Operator,
    status: AlertStatus | None = None,
    severity: Severity | None = None,
    metric: MetricName | None = None,
    store_id: QueryId = None,
    rule_id: QueryId = None,
) -> Page[SystemAlertRead]:
    """Fired alerts, newest first."""
    items, total = await alerts.list_alerts(
        session,
        actor,
        params,
        status=status,
        severity=severity,
        store_id=store_id,
        rule_id=rule_id,
        metric=metric,
    )
    return Page(items=items, total=total, page=params.page, size=params.size)


@router.post(
    "/{system_alert_id}/acknowledge",
    response_model=SystemAlertRead,
    operation_id="acknowledgeAlert",
    responses=R_ID,
)
async def acknowledge(
    system_alert_id: PathId,
    session: SessionDep,
    actor: Operator,
    body: AlertNote | None = None,
) -> SystemAlertRead:
    """Someone is on it: no more reminders; it still resolves when the condition clears."""
    note = body.note if body else None
    return await alerts.acknowledge(session, system_alert_id, actor=actor, note=note)


@router.post(
    "/{system_alert_id}/resolve",
    response_model=SystemAlertRead,
    operation_id="resolveAlert",
    responses=R_ID,
)
async def resolve(
    system_alert_id: PathId,
    session: SessionDep,
    actor: Operator,
    body: AlertNote | None = None,
) -> SystemAlertRead:
    """Close it by hand (a condition that still holds opens a new alert later)."""
    note = body.note if body else None
    return await alerts.resolve(session, system_alert_id, actor=actor, note=note)

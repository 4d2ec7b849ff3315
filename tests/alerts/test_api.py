"""The alerts API: rules are created, listed, changed, disabled and deleted (each audited);
bad rules are refused with a 422 naming the field and change nothing; alerts are listed by
status and acknowledged and resolved by hand (audited)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import utcnow
from selfmart.models import Alert, AlertRule, AuditLog
from tests.builders import auth_headers, make_role, make_store, make_user
from tests.terminals.builders import make_terminal

from .support import alerts_of, run


@pytest.fixture
async def ops(session: AsyncSession) -> tuple[dict[str, str], int]:
    user = await make_user(session, role="super_admin", email="ops@example.cn")
    return await auth_headers(session, user), user.id


def _rule(user_id: int, **fields: Any) -> dict[str, Any]:
    return {
        "name": "磁盘快满了",
        "metric": "disk_percent",
        "comparison": "gte",
        "threshold": 90,
        "duration_seconds": 300,
        "severity": "critical",
        "channels": ["in_app", "email"],
        "user_ids": [user_id],
        **fields,
    }


async def test_rule_crud_is_audited(
    client: httpx.AsyncClient, session: AsyncSession, ops: tuple[dict[str, str], int]
) -> None:
    headers, uid = ops
    r = await client.post("/api/v1/alerts/rules", json=_rule(uid), headers=headers)
    assert r.status_code == 201, r.text
    rule = r.json()
    assert (rule["metric"], rule["threshold"], rule["enabled"]) == ("disk_percent", 90, True)
    r = await client.get("/api/v1/alerts/rules", headers=headers)
    assert [x["id"] for x in r.json()] == [rule["id"]]
    r = await client.patch(
        f"/api/v1/alerts/rules/{rule['id']}",
        json={"threshold": 95, "enabled": False},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["threshold"], r.json()["enabled"]) == (95, False)
    r = await client.delete(f"/api/v1/alerts/rules/{rule['id']}", headers=headers)
    assert r.status_code == 204
    actions = (
        await session.scalars(
            select(AuditLog.action)
            .where(AuditLog.entity_type == "alert_rule", AuditLog.entity_id == str(rule["id"]))
            .order_by(AuditLog.id)
        )
    ).all()
    assert list(actions) == ["alert_rule.create", "alert_rule.update", "alert_rule.delete"]
    r = await client.get("/api/v1/alerts/metrics", headers=headers)
    assert {"name": "terminal_offline_minutes", "unit": "min", "per": "terminal"} in r.json()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"metric": "coffee_level"}, "metric"),
        ({"comparison": "about"}, "comparison"),
        ({"threshold": "high"}, "threshold"),
        ({"threshold": None}, "threshold"),
        ({"duration_seconds": -1}, "duration_seconds"),
        ({"severity": "apocalyptic"}, "severity"),
        ({"channels": ["pigeon"]}, "channels"),
        ({"channels": []}, "channels"),
        ({"user_ids": []}, "user_ids"),
        ({"user_ids": [2_000_000_000]}, "user_ids"),
        ({"role_ids": [2_000_000_000]}, "role_ids"),
        ({"store_id": 1}, "store_id"),  # disk is the deployment's, not a store's
        ({"name": ""}, "name"),
        ({"renotify_minutes": 0}, "renotify_minutes"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_a_bad_rule_is_refused_naming_the_field(
    client: httpx.AsyncClient,
    session: AsyncSession,
    ops: tuple[dict[str, str], int],
    change: dict[str, Any],
    field: str,
) -> None:
    headers, uid = ops
    before = await session.scalar(select(func.count()).select_from(AlertRule))
    r = await client.post("/api/v1/alerts/rules", json=_rule(uid, **change), headers=headers)
    assert r.status_code == 422, r.text
    assert field in [(d.get("field") or "").split(".")[-1] for d in r.json()["details"]] or any(
        field in (d.get("field") or "") for d in r.json()["details"]
    ), r.json()
    assert await session.scalar(select(func.count()).select_from(AlertRule)) == before


async def test_a_store_rule_needs_a_store_that_exists(
    client: httpx.AsyncClient, ops: tuple[dict[str, str], int]
) -> None:
    headers, uid = ops
    body = _rule(uid, metric="terminal_offline_minutes", threshold=10, store_id=2_000_000_000)
    r = await client.post("/api/v1/alerts/rules", json=body, headers=headers)
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "store_id"


async def test_a_bad_change_changes_nothing(
    client: httpx.AsyncClient, session: AsyncSession, ops: tuple[dict[str, str], int]
) -> None:
    headers, uid = ops
    rule = (await client.post("/api/v1/alerts/rules", json=_rule(uid), headers=headers)).json()
    r = await client.patch(
        f"/api/v1/alerts/rules/{rule['id']}", json={"channels": ["pigeon"]}, headers=headers
    )
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "channels"
    r = await client.get("/api/v1/alerts/rules", headers=headers)
    assert r.json()[0]["channels"] == ["in_app", "email"]
    r = await client.patch("/api/v1/alerts/rules/999999", json={"threshold": 1}, headers=headers)
    assert (r.status_code, r.json()["error"]) == (404, "alert_rule_not_found")


async def _offline_terminal_alert(
    client: httpx.AsyncClient,
    session: AsyncSession,
    headers: dict[str, str],
    uid: int,
    **fields: Any,
) -> tuple[dict[str, Any], Alert]:
    """A rule on a store's offline terminals, made through the API, and the alert it fired."""
    store = await make_store(session)
    await make_terminal(
        session, store, status="active", last_seen_at=utcnow() - timedelta(minutes=30)
    )
    body = _rule(
        uid,
        metric="terminal_offline_minutes",
        threshold=10,
        duration_seconds=0,
        store_id=store.id,
        channels=["in_app"],
        **fields,
    )
    rule = (await client.post("/api/v1/alerts/rules", json=body, headers=headers)).json()
    await run(session, utcnow())
    (alert,) = await alerts_of(session, rule["id"])
    return rule, alert


async def test_alerts_are_listed_acknowledged_and_resolved(
    client: httpx.AsyncClient, session: AsyncSession, ops: tuple[dict[str, str], int]
) -> None:
    headers, uid = ops
    rule, alert = await _offline_terminal_alert(client, session, headers, uid)

    r = await client.get("/api/v1/alerts", params={"status": "open"}, headers=headers)
    assert [a["id"] for a in r.json()["items"]] == [alert.id]
    item = r.json()["items"][0]
    assert (item["rule_name"], item["metric"], item["status"]) == (
        "磁盘快满了",
        "terminal_offline_minutes",
        "open",
    )
    r = await client.post(
        f"/api/v1/alerts/{alert.id}/acknowledge", json={"note": "on my way"}, headers=headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "acknowledged"
    assert r.json()["acknowledged_at"] is not None
    r = await client.post(f"/api/v1/alerts/{alert.id}/acknowledge", headers=headers)
    assert (r.status_code, r.json()["error"]) == (409, "alert_acknowledged")
    r = await client.get("/api/v1/alerts", params={"status": "open"}, headers=headers)
    assert r.json()["total"] == 0
    r = await client.post(f"/api/v1/alerts/{alert.id}/resolve", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["resolved_by"] is not None
    r = await client.post(f"/api/v1/alerts/{alert.id}/resolve", headers=headers)
    assert (r.status_code, r.json()["error"]) == (409, "alert_resolved")
    r = await client.post(f"/api/v1/alerts/{alert.id}/acknowledge", headers=headers)
    assert r.status_code == 409
    actions = (
        await session.scalars(
            select(AuditLog.action)
            .where(AuditLog.entity_type == "alert", AuditLog.entity_id == str(alert.id))
            .order_by(AuditLog.id)
        )
    ).all()
    assert list(actions) == ["alert.acknowledge", "alert.resolve"]
    r = await client.get("/api/v1/alerts", params={"status": "resolved"}, headers=headers)
    assert r.json()["items"][0]["note"] == "on my way"


async def test_only_operators_may(client: httpx.AsyncClient, session: AsyncSession) -> None:
    role = await make_role(session, ["order:read"])
    user = await make_user(session, role=role)
    headers = await auth_headers(session, user)
    assert (await client.get("/api/v1/alerts", headers=headers)).status_code == 403
    assert (await client.get("/api/v1/alerts/rules", headers=headers)).status_code == 403


async def test_deleting_a_rule_keeps_its_alerts_history(
    client: httpx.AsyncClient, session: AsyncSession, ops: tuple[dict[str, str], int]
) -> None:
    """A deleted rule stops, leaves the rules and can no longer be changed; its open alert is
    resolved by the person who deleted it; its alerts stay listed under its name, marked as
    of a deleted rule; the deletion is audited with the rule as it was."""
    headers, uid = ops
    rule, alert = await _offline_terminal_alert(client, session, headers, uid, name="收银机离线")
    assert alert.status == "open"

    r = await client.delete(f"/api/v1/alerts/rules/{rule['id']}", headers=headers)
    assert r.status_code == 204, r.text
    assert rule["id"] not in [
        x["id"] for x in (await client.get("/api/v1/alerts/rules", headers=headers)).json()
    ]
    r = await client.patch(
        f"/api/v1/alerts/rules/{rule['id']}", json={"enabled": True}, headers=headers
    )
    assert (r.status_code, r.json()["error"]) == (404, "alert_rule_not_found")
    r = await client.delete(f"/api/v1/alerts/rules/{rule['id']}", headers=headers)
    assert r.status_code == 404

    r = await client.get("/api/v1/alerts", params={"rule_id": rule["id"]}, headers=headers)
    (kept,) = r.json()["items"]
    assert (kept["id"], kept["rule_name"], kept["rule_archived"]) == (
        alert.id,
        "收银机离线",
        True,
    )
    assert (kept["status"], kept["note"]) == ("resolved", "rule deleted")
    assert kept["resolved_by"]
    # the deleted rule does not run again: the terminal is still offline, no new alert
    await run(session, utcnow() + timedelta(minutes=5))
    assert [a.id for a in await alerts_of(session, rule["id"])] == [alert.id]

    entry = (
        await session.scalars(
            select(AuditLog).where(
                AuditLog.action == "alert_rule.delete", AuditLog.entity_id == str(rule["id"])
            )
        )
    ).one()
    assert entry.entity_label == "收银机离线"
    assert entry.changes["enabled"] == {"before": True, "after": False}
    assert entry.changes["archived_at"]["before"] is None
    assert entry.changes["archived_at"]["after"] is not None

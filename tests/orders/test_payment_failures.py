"""A terminal reports a failed payment attempt: the order moves to payment_failed, the terminal
is on its timeline and in the audit log, the order waits in the abnormal-order queue, and a
retried report is answered once."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import AuditLog, OrderEvent, OrderIssue, Store
from tests.builders import auth_headers, make_store, make_user
from tests.orders.builders import make_order, make_product
from tests.support import fingerprint
from tests.terminals.builders import Credentials, make_active_terminal


def _url(order_no: str) -> str:
    return f"/api/terminal/v1/orders/{order_no}/payment-failures"


def _report(attempt_id: str = "PAY-0001", **extra: Any) -> dict[str, Any]:
    return {
        "attempt_id": attempt_id,
        "method": "wechat",
        "amount_fen": 700,
        "reason": "余额不足",
        "error_code": "NOTENOUGH",
        "failed_at": "2026-12-01T08:00:00+08:00",
        **extra,
    }


async def _post(
    client: httpx.AsyncClient, creds: Credentials, order_no: str, payload: Any
) -> httpx.Response:
    body, headers = creds.signed_json("POST", _url(order_no), payload)
    return await client.post(_url(order_no), content=body, headers=headers)


async def _setup(session: AsyncSession, **order: Any) -> tuple[Store, Credentials, str]:
    store = await make_store(session)
    cola = await make_product(session, stores=[store], price_fen=350)
    creds = await make_active_terminal(session, store)
    placed = await make_order(session, store, [(cola, 2)], terminal=creds.terminal, **order)
    return store, creds, placed.order_no


async def test_a_failed_payment_moves_the_order_and_queues_it(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store, creds, order_no = await _setup(session)
    r = await _post(client, creds, order_no, _report())
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "payment_failed"
    assert body["outcome"] == "recorded"
    assert body["order_no"] == order_no
    assert body["attempt_id"] == "PAY-0001"

    issue = await session.get(OrderIssue, body["issue_id"])
    assert issue is not None
    assert (issue.kind, issue.status, issue.stage) == ("payment_failed", "open", "person")

    # The timeline: the move and the attempt, both by the terminal.
    events = (
        await session.scalars(
            select(OrderEvent).where(OrderEvent.order_id == issue.order_id).order_by(OrderEvent.id)
        )
    ).all()
    moves = [(e.from_status, e.to_status) for e in events if e.kind == "transition"]
    assert moves == [("awaiting_payment", "payment_failed")]
    attempt = next(e for e in events if e.reason == "terminal_payment_failed")
    assert attempt.data["attempt_id"] == "PAY-0001"
    assert attempt.data["method"] == "wechat"
    assert attempt.data["amount_fen"] == 700
    assert attempt.data["error_code"] == "NOTENOUGH"
    assert {(e.actor_type, e.actor_name) for e in events} == {("terminal", creds.terminal.code)}

    # The audit trail: the attempt and the state change, by the terminal.
    entries = (
        await session.scalars(
            select(AuditLog)
            .where(AuditLog.entity_type == "order", AuditLog.entity_id == str(issue.order_id))
            .order_by(AuditLog.id)
        )
    ).all()
    actions = {e.action: e for e in entries}
    assert {"order.payment_failed", "order.payment_attempt_failed"} <= set(actions)
    logged = actions["order.payment_attempt_failed"]
    assert logged.actor_type == "terminal"
    assert logged.changes["status"] == {"before": "awaiting_payment", "after": "payment_failed"}
    assert logged.changes["reason"]["after"] == "余额不足"

    # The abnormal-order queue of the console.
    admin = await auth_headers(session, await make_user(session, role="super_admin"))
    queue = await client.get(
        "/api/v1/orders/issues", params={"kind": "payment_failed"}, headers=admin
    )
    assert queue.status_code == 200
    assert issue.id in [item["id"] for item in queue.json()["items"]]
    assert store.id in {item["store_id"] for item in queue.json()["items"]}


async def test_a_retried_report_is_answered_once_and_another_body_is_a_409(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _store, creds, order_no = await _setup(session)
    first = await _post(client, creds, order_no, _report())
    assert first.status_code == 201

    async def business(s: AsyncSession) -> dict[str, Any]:
        snap = await fingerprint(s)
        snap.pop("audit_logs")  # a resend is noted in the audit log, nothing else
        snap.pop("terminal_nonces")  # every request burns its own nonce
        return snap

    before = await business(session)
    again = await _post(client, creds, order_no, _report())
    assert again.status_code == 200, again.text
    assert again.json() == {**first.json(), "outcome": "duplicate"}
    assert await business(session) == before
    resent = await session.scalar(
        select(func.count()).where(AuditLog.action == "order.payment_failure_resent")
    )
    assert resent == 1

    other = await _post(client, creds, order_no, _report(amount_fen=701))
    assert other.status_code == 409
    assert other.json()["error"] == "idempotency_conflict"
    assert other.json()["details"][0]["field"] == "attempt_id"
    assert await business(session) == before


async def test_a_second_attempt_is_recorded_on_the_same_abnormal_order(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _store, creds, order_no = await _setup(session)
    one = await _post(client, creds, order_no, _report("PAY-1"))
    two = await _post(client, creds, order_no, _report("PAY-2", method="alipay", reason="超时"))
    assert (one.status_code, two.status_code) == (201, 201)
    assert two.json()["status"] == "payment_failed"
    assert one.json()["issue_id"] == two.json()["issue_id"]
    attempts = (
        await session.scalars(
            select(OrderEvent.data).where(OrderEvent.reason == "terminal_payment_failed")
        )
    ).all()
    assert sorted(d["attempt_id"] for d in attempts) == ["PAY-1", "PAY-2"]
    open_issues = await session.scalar(
        select(func.count()).where(OrderIssue.kind == "payment_failed", OrderIssue.status == "open")
    )
    assert open_issues == 1


async def test_a_paid_or_cancelled_order_refuses_with_both_states(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    for status, paid in (("paid", True), ("cancelled", False)):
        _store, creds, order_no = await _setup(session, status=status, paid=paid)
        before = await fingerprint(session)
        r = await _post(client, creds, order_no, _report())
        assert r.status_code == 409, r.text
        assert r.json()["error"] == "illegal_transition"
        assert status in r.json()["message"]
        assert "payment_failed" in r.json()["message"]
        after = await fingerprint(session)
        before.pop("terminal_nonces"), after.pop("terminal_nonces")
        assert after == before


async def test_only_signed_reports_for_the_terminals_own_store_with_valid_bodies(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _store, creds, order_no = await _setup(session)
    _other, other_creds, theirs = await _setup(session)
    r = await _post(client, creds, theirs, _report())
    assert r.status_code == 404
    assert r.json()["error"] == "order_not_found"
    assert (await _post(client, creds, "2612010000000000", _report())).status_code == 404

    unsigned = await client.post(_url(order_no), json=_report())
    assert unsigned.status_code == 401

    for bad, field in (
        ({"amount_fen": "700"}, "amount_fen"),
        ({"amount_fen": True}, "amount_fen"),
        ({"amount_fen": -1}, "amount_fen"),
        ({"method": "cash"}, "method"),
        ({"attempt_id": "has space"}, "attempt_id"),
        ({"reason": ""}, "reason"),
        ({"failed_at": "2026-12-01T08:00:00"}, "failed_at"),
        ({"extra": 1}, "extra"),
    ):
        r = await _post(client, creds, order_no, _report(**bad))
        assert r.status_code == 422, (bad, r.text)
        assert any(field in d["field"] for d in r.json()["details"]), (bad, r.json())
    r = await _post(client, creds, "x" * 25, _report())
    assert r.status_code == 422
    assert (await session.scalar(select(func.count()).select_from(OrderIssue))) == 0

"""What the console's reconciliation pages call: a difference resolved by refunding the
customer (through the platform sandbox) or by recording a manual payment on our order, each
audited; the calendar of accounts × days with each day's status; the fee report beside the
configured rate; a day's totals and differences as xlsx."""

from __future__ import annotations

import io
from datetime import timedelta

import httpx
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import AuditLog, Order, Payment, Refund
from tests.builders import auth_headers, make_user
from tests.payments.wechatpay.support import Sandbox
from tests.reconciliation.test_reconcile import open_shop, today

API = "/api/v1/reconciliation"


async def _diff(client: httpx.AsyncClient, headers: dict[str, str], out_trade_no: str) -> int:
    r = await client.get(f"{API}/differences", headers=headers)
    assert r.status_code == 200, r.text
    (hit,) = [x for x in r.json()["items"] if x["out_trade_no"] == out_trade_no]
    return int(hit["id"])


async def test_refund_the_customer_and_record_a_manual_payment(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    shop = await open_shop(session, wechat)
    # Paid at the platform, failed here, order closed: the customer is owed the money.
    to_refund = await shop.paid(client, session, 2)
    to_refund.status = "failed"
    # Paid at the platform, the callback never reached us: the order still owes it.
    to_record = await shop.paid(client, session, 1)
    to_record.status = "failed"
    order = await session.get_one(Order, to_record.order_id)
    order.status, order.paid_fen = "awaiting_payment", 0
    await session.flush()
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    body = {"account_id": shop.account.id, "bill_date": today().isoformat()}
    r = await client.post(f"{API}/runs", json=body, headers=headers)
    assert r.json()["difference_count"] == 2, r.text

    assert to_refund.out_trade_no is not None
    assert to_record.out_trade_no is not None
    refund_id = await _diff(client, headers, to_refund.out_trade_no)
    record_id = await _diff(client, headers, to_record.out_trade_no)

    # Bad input names the field and changes nothing.
    for bad, field in (
        ({"resolution": "refund_customer", "note": "x", "amount_fen": 0}, "amount_fen"),
        ({"resolution": "refund_customer", "note": "x", "amount_fen": 701}, "amount_fen"),
        ({"resolution": "accept", "note": "x", "amount_fen": 5}, "amount_fen"),
        ({"resolution": "refund_customer", "note": ""}, "note"),
    ):
        r = await client.post(f"{API}/differences/{refund_id}/resolve", json=bad, headers=headers)
        assert r.status_code == 422, (bad, r.text)
        assert field in r.text
    assert await session.scalar(select(Refund.id)) is None

    r = await client.post(
        f"{API}/differences/{refund_id}/resolve",
        json={"resolution": "refund_customer", "note": "订单已关闭，退还顾客"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["resolution"]) == ("resolved", "refund_customer")
    refund = await session.scalar(select(Refund).where(Refund.payment_id == to_refund.id))
    assert refund is not None
    # WeChat Pay answers PROCESSING; its callback settles it later
    assert (refund.amount_fen, refund.status) == (700, "pending")
    assert refund.channel_refund_id  # the sandbox took it

    r = await client.post(
        f"{API}/differences/{record_id}/resolve",
        json={"resolution": "manual_payment", "note": "平台已收款，补记"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    manual = await session.scalar(
        select(Payment).where(Payment.order_id == order.id, Payment.channel == "manual")
    )
    assert manual is not None
    assert manual.amount_fen == 350
    await session.refresh(order)
    assert (order.status, order.paid_fen) == ("paid", 350)

    entries = list(
        await session.scalars(
            select(AuditLog)
            .where(AuditLog.action == "reconciliation.resolve")
            .order_by(AuditLog.id)
        )
    )
    assert [e.changes["resolution"]["after"] for e in entries] == [
        "refund_customer",
        "manual_payment",
    ]
    assert entries[0].changes["refund_id"]["after"] == refund.id
    assert entries[1].changes["payment_id"]["after"] == manual.id

    # Nothing left to refund through: a platform-only line has no payment of ours.
    r = await client.post(
        f"{API}/differences/{refund_id}/resolve",
        json={"resolution": "manual_payment", "note": "again"},
        headers=headers,
    )
    assert r.status_code == 409


async def test_calendar_fee_report_and_export(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    shop = await open_shop(session, wechat)
    await shop.paid(client, session, 2)
    off = await shop.paid(client, session, 1)
    off.amount_fen = 400
    await session.flush()
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.put(
        f"{API}/fee-rates/{shop.account.id}", json={"rate_bp": 60}, headers=headers
    )
    assert r.status_code == 200
    day = today()
    r = await client.post(
        f"{API}/runs", json={"account_id": shop.account.id, "bill_date": day.isoformat()},
        headers=headers,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    yesterday = day - timedelta(days=1)

    r = await client.get(
        f"{API}/calendar",
        params={"date_from": yesterday.isoformat(), "date_to": day.isoformat()},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    cal = r.json()
    assert shop.account.id in [a["id"] for a in cal["accounts"]]
    cells = {
        (c["bill_date"], c["status"], c["open"])
        for c in cal["cells"]
        if c["account_id"] == shop.account.id
    }
    assert cells == {(yesterday.isoformat(), "not_run", 0), (day.isoformat(), "open", 1)}

    diff = await _diff(client, headers, off.out_trade_no or "")
    await client.post(
        f"{API}/differences/{diff}/resolve", json={"resolution": "accept", "note": "ok"},
        headers=headers,
    )  # fmt: skip
    r = await client.get(
        f"{API}/calendar", params={"date_from": day.isoformat(), "date_to": day.isoformat()},
        headers=headers,
    )  # fmt: skip
    (mine,) = [c for c in r.json()["cells"] if c["account_id"] == shop.account.id]
    assert (mine["status"], mine["open"], mine["differences"]) == ("matched", 0, 1)

    for params in (
        {"date_from": day.isoformat(), "date_to": yesterday.isoformat()},
        {"date_from": (day - timedelta(days=42)).isoformat(), "date_to": day.isoformat()},
    ):
        r = await client.get(f"{API}/calendar", params=params, headers=headers)
        assert r.status_code == 422
        assert "date_to" in r.text

    r = await client.get(f"{API}/fees", params={"date_from": day.isoformat()}, headers=headers)
    assert r.status_code == 200, r.text
    (row,) = [x for x in r.json() if x["account_id"] == shop.account.id]
    assert (row["store_id"], row["lines"], row["gross_fen"]) == (shop.store.id, 2, 700 + 350)
    # the sandbox charges 0.6%, as configured: 0.6% of 7.00 and of 3.50
    assert (row["rate_bp"], row["fee_fen"], row["expected_fee_fen"]) == (60, 4 + 2, 4 + 2)
    assert (row["fee_gap_fen"], row["fee_differs"]) == (0, 0)
    r = await client.get(f"{API}/fees", params={"store_id": 999999}, headers=headers)
    assert r.json() == []

    r = await client.get(
        f"{API}/export", params={"bill_date": day.isoformat(), "lang": "en"}, headers=headers
    )
    assert r.status_code == 200, r.text
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == ["Totals", "Differences"]
    totals = list(wb["Totals"].iter_rows(values_only=True))
    assert totals[0][:3] == ("Bill day", "Channel", "Account")
    (mine_row,) = [x for x in totals[1:] if x[2] == shop.account.id]
    assert float(mine_row[6]) == 10.5  # bill gross in yuan
    diffs = list(wb["Differences"].iter_rows(values_only=True))
    assert [(x[3], x[8], x[19], x[20]) for x in diffs[1:] if x[8] == off.out_trade_no] == [
        ("amount_differs", off.out_trade_no, "accept", "ok")
    ]

"""Store settlement and the fee report: reconciled bill lines where a day's bill is in, our
own payments and refunds (fees estimated at the configured rate) where it is not, each on the
store's local day; totals, months, store scoping, the xlsx, and fees flagged where the
platform charged other than the rate gives."""

from __future__ import annotations

import io
import uuid
from datetime import date
from typing import Any

import httpx
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import utcnow
from selfmart.models import (
    Payment,
    PaymentAccount,
    ReconciliationFeeRate,
    ReconciliationItem,
    ReconciliationRun,
    Refund,
    Store,
)
from tests.builders import auth_headers, make_store, make_user
from tests.orders.builders import make_order, make_product
from tests.payments.builders import make_payment_account

from .builders import at


async def _pay(
    session: AsyncSession,
    store: Store,
    account: PaymentAccount | None,
    amount: int,
    when: str,
) -> Payment:
    product = await make_product(session, price_fen=amount)
    order = await make_order(session, store, [(product, 1)], status="paid", paid=True)
    payment = Payment(
        order_id=order.id, store_id=store.id,
        channel=account.channel if account else "manual", status="succeeded",
        amount_fen=amount, created_at=at(when), succeeded_at=at(when), actor_type="user",
        account_id=account.id if account else None,
        out_trade_no=uuid.uuid4().hex[:20] if account else None,
    )  # fmt: skip
    session.add(payment)
    await session.flush()
    return payment


async def _refund(session: AsyncSession, payment: Payment, amount: int, when: str) -> Refund:
    refund = Refund(
        order_id=payment.order_id, payment_id=payment.id, store_id=payment.store_id,
        channel=payment.channel, status="succeeded", amount_fen=amount, reason="test",
        created_at=at(when), completed_at=at(when), actor_type="user",
        account_id=payment.account_id,
    )  # fmt: skip
    session.add(refund)
    await session.flush()
    return refund


async def _bill(
    session: AsyncSession, account: PaymentAccount, day: date, lines: list[dict[str, Any]]
) -> None:
    """A reconciled trade bill of `lines` (bill line fields)."""
    run = ReconciliationRun(
        account_id=account.id, channel=account.channel, bill_date=day, kind="trade",
        status="reconciled", started_at=utcnow(),
    )  # fmt: skip
    session.add(run)
    await session.flush()
    for n, line in enumerate(lines, start=1):
        session.add(
            ReconciliationItem(
                run_id=run.id, state="ok", line_no=n, **{"difference": "matched", **line}
            )
        )
    await session.flush()


async def world(session: AsyncSession) -> tuple[Store, Store]:
    """Store S (WeChat account at 60 bp) and store T with known November money."""
    s = await make_store(session, name="南京西路店")
    t = await make_store(session, name="徐家汇店")
    wechat = await make_payment_account(session, s, "wechat")
    session.add(ReconciliationFeeRate(account_id=wechat.id, rate_bp=60, updated_at=utcnow()))
    p1 = await _pay(session, s, wechat, 1000, "2026-11-10T02:00")
    p2 = await _pay(session, s, wechat, 2000, "2026-11-10T03:00")
    r1 = await _refund(session, p1, 500, "2026-11-10T05:00")
    # 10 Nov's bill: p1 (fee 6), p2 charged 13 where the rate gives 12, r1 (fee 3 back), and
    # a payment we have no record of (no store known).
    await _bill(
        session,
        wechat,
        date(2026, 11, 10),
        [
            {"kind": "payment", "payment_id": p1.id, "store_id": s.id, "bill_amount_fen": 1000,
             "bill_fee_fen": 6, "expected_fee_fen": 6},
            {"kind": "payment", "payment_id": p2.id, "store_id": s.id, "bill_amount_fen": 2000,
             "bill_fee_fen": 13, "expected_fee_fen": 12, "difference": "fee_differs"},
            {"kind": "refund", "refund_id": r1.id, "store_id": s.id, "bill_amount_fen": 500,
             "bill_fee_fen": -3, "expected_fee_fen": -3},
            {"kind": "payment", "store_id": None, "bill_amount_fen": 990, "bill_fee_fen": 6,
             "expected_fee_fen": 6, "difference": "platform_only"},
        ],
    )  # fmt: skip
    # Not reconciled (yet): ours, fee estimated at 60 bp.
    await _pay(session, s, wechat, 3000, "2026-11-11T04:00")  # fee 18
    await _pay(session, s, None, 800, "2026-11-11T05:00")  # manual: no fee
    await _pay(session, s, wechat, 1500, "2026-11-11T16:30")  # 12 Nov 00:30 in Shanghai; 9
    await _pay(session, t, None, 700, "2026-11-11T06:00")
    await _pay(session, t, None, 400, "2026-12-01T06:00")  # outside the range
    return s, t


def rows_of(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (r["period"], r["store_name"], r["channel"], r["source"], r["lines"], r["sales_fen"],
         r["refunds_fen"], r["fees_fen"], r["net_fen"], r["fees_estimated"])
        for r in body["rows"]
    ]  # fmt: skip


async def test_store_settlement_by_day_and_month(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    s, t = await world(session)
    h = await auth_headers(session, await make_user(session, role="finance"))
    url = "/api/v1/settlement/stores?date_from=2026-11-01&date_to=2026-11-30"
    r = await client.get(url, headers=h)
    assert r.status_code == 200, r.text
    assert rows_of(r.json()) == [
        ("2026-11-10", "", "wechat", "bill", 1, 990, 0, 6, 984, False),
        ("2026-11-10", "南京西路店", "wechat", "bill", 3, 3000, 500, 16, 2484, False),
        ("2026-11-11", "南京西路店", "manual", "ours", 1, 800, 0, 0, 800, False),
        ("2026-11-11", "南京西路店", "wechat", "ours", 1, 3000, 0, 18, 2982, True),
        ("2026-11-11", "徐家汇店", "manual", "ours", 1, 700, 0, 0, 700, False),
        ("2026-11-12", "南京西路店", "wechat", "ours", 1, 1500, 0, 9, 1491, True),
    ]
    assert r.json()["totals"] == {
        "lines": 8, "sales_fen": 9990, "refunds_fen": 500, "fees_fen": 49, "net_fen": 9441,
    }  # fmt: skip

    r = await client.get(f"{url}&group=month&store_id={s.id}", headers=h)
    assert rows_of(r.json()) == [
        ("2026-11", "南京西路店", "manual", "ours", 1, 800, 0, 0, 800, False),
        ("2026-11", "南京西路店", "wechat", "bill", 3, 3000, 500, 16, 2484, False),
        ("2026-11", "南京西路店", "wechat", "ours", 2, 4500, 0, 27, 4473, True),
    ]

    # A user of store T alone sees T, and no money without a store.
    ht = await auth_headers(session, await make_user(session, role="admin", stores=[t]))
    r = await client.get(url, headers=ht)
    assert rows_of(r.json()) == [
        ("2026-11-11", "徐家汇店", "manual", "ours", 1, 700, 0, 0, 700, False)
    ]
    r = await client.get(f"{url}&store_id={s.id}", headers=ht)
    assert r.json()["rows"] == []

    r = await client.get(url.replace("stores?", "stores/export?"), headers=h)
    assert r.status_code == 200
    ws = load_workbook(io.BytesIO(r.content)).active
    assert ws is not None
    sheet = list(ws.iter_rows(values_only=True))
    assert sheet[0][:5] == ("日期", "门店", "渠道", "来源", "笔数")
    assert len(sheet) == 1 + 6 + 1
    assert sheet[-1][0] == "合计"
    assert sheet[-1][5:9] == (99.9, 5, 0.49, 94.41)
    # in the console's language: English when it asks for it
    r = await client.get(
        url.replace("stores?", "stores/export?"), headers={**h, "Accept-Language": "en"}
    )
    ws = load_workbook(io.BytesIO(r.content)).active
    assert ws is not None
    english = list(ws.iter_rows(values_only=True))
    assert english[0][:5] == ("Date", "Store", "Channel", "Source", "Lines")
    assert english[-1][0] == "Total"
    assert [row[5:9] for row in english[1:]] == [row[5:9] for row in sheet[1:]]
    assert {row[2] for row in english[1:-1]} <= {"WeChat Pay", "Alipay", "UnionPay", "Manual"}


async def test_bad_ranges_are_refused_naming_the_field(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await auth_headers(session, await make_user(session, role="finance"))
    r = await client.get(
        "/api/v1/settlement/stores?date_from=2026-11-30&date_to=2026-11-01", headers=h
    )
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "date_to"
    r = await client.get("/api/v1/settlement/fees?date_from=2026-11-30", headers=h)
    assert r.status_code == 422
    r = await client.get(
        "/api/v1/settlement/stores?date_from=2024-01-01&date_to=2026-11-01&group=week", headers=h
    )
    assert r.status_code == 422


async def test_fee_report_flags_fees_off_the_rate(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    s, _ = await world(session)
    h = await auth_headers(session, await make_user(session, role="finance"))
    url = "/api/v1/settlement/fees?date_from=2026-11-01&date_to=2026-11-30"
    r = await client.get(url, headers=h)
    assert r.status_code == 200, r.text
    got = [
        (x["store_id"], x["lines"], x["sales_fen"], x["refunds_fen"], x["fee_fen"],
         x["expected_fee_fen"], x["difference_fen"], x["rate_bp"], x["fee_differs"], x["flagged"])
        for x in r.json()
    ]  # fmt: skip
    assert sorted(got, key=lambda g: g[0] or 0) == [
        (None, 1, 990, 0, 6, 6, 0, 60, 0, False),
        (s.id, 3, 3000, 500, 16, 15, 1, 60, 1, True),
    ]
    r = await client.get(f"{url}&flagged=true", headers=h)
    assert [x["store_id"] for x in r.json()] == [s.id]
    r = await client.get(f"{url}&channel=alipay", headers=h)
    assert r.json() == []
    r = await client.get(url.replace("fees?", "fees/export?") + "&flagged=true", headers=h)
    ws = load_workbook(io.BytesIO(r.content)).active
    assert ws is not None
    sheet = list(ws.iter_rows(values_only=True))
    assert len(sheet) == 2
    assert sheet[1][-1] == "异常"
    r = await client.get(
        url.replace("fees?", "fees/export?") + "&flagged=true",
        headers={**h, "Accept-Language": "en-US,en;q=0.9"},
    )
    ws = load_workbook(io.BytesIO(r.content)).active
    assert ws is not None
    english = list(ws.iter_rows(values_only=True))
    assert (english[0][0], english[0][-1], english[1][-1]) == ("Bill date", "Flag", "Flagged")
    assert english[1][4:10] == sheet[1][4:10]


async def test_our_money_falls_on_each_stores_local_day_across_midnight_and_dst(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """A month of our own records (no bill reconciled), summed by the database: payments a
    minute either side of local midnight in Shanghai (UTC+8) and New York (where 1 Nov 2026
    is 25 hours long, summer time ending), refunds on other days than their payments, and
    fees rounded half up per line."""
    sh = await make_store(session, name="静安店", timezone="Asia/Shanghai")
    ny = await make_store(session, name="纽约店", timezone="America/New_York")
    wechat = await make_payment_account(session, sh, "wechat")
    session.add(ReconciliationFeeRate(account_id=wechat.id, rate_bp=60, updated_at=utcnow()))
    await _pay(session, sh, wechat, 1250, "2026-10-31T15:59")  # 31 Oct 23:59: before the month
    await _pay(session, sh, wechat, 1250, "2026-10-31T16:01")  # 1 Nov 00:01; fee 7.5 -> 8
    p3 = await _pay(session, sh, wechat, 2000, "2026-11-15T15:59")  # 15 Nov 23:59; fee 12
    await _pay(session, sh, wechat, 3000, "2026-11-15T16:00")  # 16 Nov 00:00; fee 18
    await _refund(session, p3, 500, "2026-11-20T02:00")  # 20 Nov; fee 3 given back
    await _pay(session, sh, wechat, 900, "2026-11-30T16:00")  # 1 Dec 00:00: after the month
    await _pay(session, ny, None, 700, "2026-11-01T03:59")  # 31 Oct 23:59 EDT: before
    b2 = await _pay(session, ny, None, 800, "2026-11-01T04:00")  # 1 Nov 00:00 EDT
    await _pay(session, ny, None, 600, "2026-11-02T04:30")  # 1 Nov 23:30 EST (hour 25)
    await _pay(session, ny, None, 400, "2026-11-02T05:00")  # 2 Nov 00:00 EST
    await _refund(session, b2, 300, "2026-12-01T04:59")  # 30 Nov 23:59 EST
    await _pay(session, ny, None, 100, "2026-12-01T05:00")  # 1 Dec 00:00 EST: after

    h = await auth_headers(session, await make_user(session, role="finance"))

    async def report(query: str) -> dict[str, Any]:
        r = await client.get(f"/api/v1/settlement/stores?{query}", headers=h)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    november = "date_from=2026-11-01&date_to=2026-11-30"
    assert rows_of(await report(november)) == [
        ("2026-11-01", "纽约店", "manual", "ours", 2, 1400, 0, 0, 1400, False),
        ("2026-11-01", "静安店", "wechat", "ours", 1, 1250, 0, 8, 1242, True),
        ("2026-11-02", "纽约店", "manual", "ours", 1, 400, 0, 0, 400, False),
        ("2026-11-15", "静安店", "wechat", "ours", 1, 2000, 0, 12, 1988, True),
        ("2026-11-16", "静安店", "wechat", "ours", 1, 3000, 0, 18, 2982, True),
        ("2026-11-20", "静安店", "wechat", "ours", 1, 0, 500, -3, -497, True),
        ("2026-11-30", "纽约店", "manual", "ours", 1, 0, 300, 0, -300, False),
    ]
    month = await report(f"{november}&group=month")
    assert rows_of(month) == [
        ("2026-11", "纽约店", "manual", "ours", 4, 1800, 300, 0, 1500, False),
        ("2026-11", "静安店", "wechat", "ours", 4, 6250, 500, 35, 5715, True),
    ]
    assert month["totals"] == {
        "lines": 8, "sales_fen": 8050, "refunds_fen": 800, "fees_fen": 35, "net_fen": 7215,
    }  # fmt: skip
    # One store's day (the 25-hour one) alone.
    assert rows_of(await report(f"date_from=2026-11-01&date_to=2026-11-01&store_id={ny.id}")) == [
        ("2026-11-01", "纽约店", "manual", "ours", 2, 1400, 0, 0, 1400, False)
    ]

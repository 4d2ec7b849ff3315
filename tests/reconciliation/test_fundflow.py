"""WeChat Pay's fund-flow bill (资金账单): downloaded from the sandbox in WeChat's format, read
into trade income, refunds and fees, its totals shown beside the trade bill's; a file whose
lines do not add up to its own totals is refused naming the line; other platforms have none.
The fee on a refunded payment comes back: the trade bill's refund line carries it negative, the
fund-flow bill as money in, so both bills give the same fees."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.iam.actor import job_actor
from selfmart.jobs import runtime
from selfmart.payments import tasks
from selfmart.payments.wechatpay import protocol as wx
from selfmart.reconciliation.bills import BillRefused, parse_fundflow
from tests.builders import auth_headers, make_user
from tests.payments.builders import make_payment_account
from tests.payments.wechatpay.support import Sandbox
from tests.reconciliation.test_reconcile import open_shop, today
from tests.support import settings_for

API = "/api/v1/reconciliation"


async def test_fund_flow_totals_beside_the_trade_bill(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_url: str,
    wechat: Sandbox,
) -> None:
    shop = await open_shop(session, wechat)
    await shop.paid(client, session, 2)  # 7.00, fee 0.04
    await shop.paid(client, session, 3)  # 10.50, fee 0.06
    returned = await shop.paid(client, session, 2)  # 7.00, fee 0.04, refunded: fee back
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    await shop.refund_whole(client, headers, returned)
    async with runtime.running(settings_for(db_url), sessionmaker):
        assert await tasks.query_refunds(job_actor(tasks.QUERY_REFUNDS)) == 1
    day = today().isoformat()
    for kind in ("trade", "fundflow"):
        r = await client.post(
            f"{API}/runs",
            json={"account_id": shop.account.id, "bill_date": day, "kind": kind},
            headers=headers,
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "reconciled", r.json()["last_error"]
    flow = r.json()
    assert flow["kind"] == "fundflow"
    # 3 incomes and their 3 fees; the refund and its fee coming back
    assert (flow["line_count"], flow["difference_count"]) == (8, 0)
    assert (flow["bill_gross_fen"], flow["bill_refund_fen"], flow["bill_fee_fen"]) == (
        2450,
        700,
        4 + 6 + 4 - 4,
    )
    assert flow["trailer_gross_fen"] == 2450 + 4  # all money in: the returned fee too
    assert flow["our_gross_fen"] == 2450

    r = await client.get(f"{API}/totals", params={"date_from": day}, headers=headers)
    rows = {(x["channel"], x["kind"]): x for x in r.json()}
    assert set(rows) == {("wechat", "trade"), ("wechat", "fundflow")}
    trade, fund = rows["wechat", "trade"], rows["wechat", "fundflow"]
    assert trade["bill_gross_fen"] == fund["bill_gross_fen"] == 2450
    assert trade["bill_refund_fen"] == fund["bill_refund_fen"] == 700
    assert trade["bill_fee_fen"] == fund["bill_fee_fen"] == 10
    assert trade["bill_net_fen"] == fund["bill_net_fen"] == 2450 - 700 - 10

    # The calendar speaks of the trade bill only.
    r = await client.get(
        f"{API}/calendar", params={"date_from": day, "date_to": day}, headers=headers
    )
    (cell,) = [c for c in r.json()["cells"] if c["account_id"] == shop.account.id]
    assert cell["status"] == "matched"

    alipay = await make_payment_account(session, None, "alipay")
    r = await client.post(
        f"{API}/runs",
        json={"account_id": alipay.id, "bill_date": day, "kind": "fundflow"},
        headers=headers,
    )
    assert r.status_code == 422, r.text
    assert "kind" in r.text


def _bill(rows: list[list[str]], totals: list[str]) -> bytes:
    return wx.format_bill(wx.FUNDFLOW_BILL_HEADER, rows, wx.FUNDFLOW_BILL_TOTALS_HEADER, totals)


def _row(name: str, direction: str, amount: str) -> list[str]:
    return ["2026-12-01 10:00:00", "4200", "1900", name, name, direction, amount, "0", "", "", "X"]


def test_reads_the_documented_layout_and_refuses_what_does_not_add_up() -> None:
    rows = [
        _row("交易", "收入", "10.00"),
        _row("扣除交易手续费", "支出", "0.06"),
        _row("退款", "支出", "3.00"),
        _row("退还交易手续费", "收入", "0.02"),
    ]
    # WeChat's own sample writes the counts as 20.0
    flow = parse_fundflow("wechat", _bill(rows, ["4.0", "2.0", "10.02", "2.0", "3.06"]))
    assert (flow.income_fen, flow.refund_fen, flow.fee_fen, flow.other_fen) == (1000, 300, 4, 0)
    assert (flow.trailer_income_fen, flow.trailer_expense_fen) == (1002, 306)

    with pytest.raises(BillRefused, match="line 7: the lines add up"):
        parse_fundflow("wechat", _bill(rows, ["4", "2", "10.02", "2", "3.00"]))
    with pytest.raises(BillRefused, match="line 7: the totals count 5"):
        parse_fundflow("wechat", _bill(rows, ["5", "2", "10.02", "2", "3.06"]))
    with pytest.raises(BillRefused, match="line 3: 收支类型"):
        parse_fundflow(
            "wechat", _bill([rows[0], _row("交易", "其他", "1.00")], ["2", "1", "10", "0", "0"])
        )
    with pytest.raises(BillRefused, match="columns are not"):
        parse_fundflow(
            "wechat",
            wx.format_bill(wx.TRADE_BILL_HEADER, [], wx.TRADE_BILL_TOTALS_HEADER, ["0"] * 7),
        )
    with pytest.raises(BillRefused, match="no fund-flow bill"):
        parse_fundflow("alipay", b"")

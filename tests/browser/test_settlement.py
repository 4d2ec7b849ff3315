"""The settlement pages in a real browser against the real server: the fee report and the store
settlement over the demo's reconciled month, and a supplier statement of goods received and
returned (built with the settlement test builders) taken from generation through review,
approval and payment. The figures shown are the API's, to the fen; filters change them; the
xlsx exports hold the API's rows; the steps land in the audit log; Chinese and English."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import pytest
from openpyxl import load_workbook
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import select

from selfmart.db import make_engine, make_sessionmaker
from selfmart.models import Product, Store
from tests.settlement.builders import make_supplier, received, returned_to, supplies

from .conftest import LOGINS
from .test_console import login

pytestmark = pytest.mark.browser
T = TypeVar("T")
#: the machines this runs on are shared: a login (password hashing) may take a while
SLOW = 60.0
CHANNELS_ZH = {"wechat": "微信支付", "alipay": "支付宝", "card": "银联", "manual": "人工"}
CHANNELS_EN = {"wechat": "WeChat Pay", "alipay": "Alipay", "card": "UnionPay", "manual": "Manual"}


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}¥{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _fen(cell: Any) -> int:
    """A money cell of an export (exact yuan) in fen."""
    return int(Decimal(str(cell)).scaleb(2))


def _api(server_url: str, path: str, params: dict[str, str] | None = None) -> Any:
    with httpx.Client(base_url=f"{server_url}/api/v1", timeout=SLOW) as client:
        tokens = client.post(
            "/auth/login", json={"username": "superadmin", "password": LOGINS["superadmin"]}
        ).json()
        client.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        r = client.get(path, params=params or {})
        assert r.status_code == 200, r.text
        return r.json()


def _sheet(path: Path) -> list[list[Any]]:
    # Playwright keeps a download under a name without ".xlsx": openpyxl is given the bytes
    book = load_workbook(io.BytesIO(path.read_bytes()), read_only=True)
    return [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """An async builder run beside Playwright's own loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _last_week() -> tuple[str, str]:
    """The seven days before today (Beijing): every one of them reconciled by the demo."""
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    return (today - timedelta(days=7)).isoformat(), (today - timedelta(days=1)).isoformat()


def _set_range(page: Page, start: str, end: str) -> None:
    """The filters' date range typed in (each page has one)."""
    inputs = page.locator(".filters .el-range-input")
    inputs.nth(0).fill(start)
    inputs.nth(1).fill(end)
    inputs.nth(1).press("Enter")
    expect(inputs.nth(0)).to_have_value(start)
    expect(inputs.nth(1)).to_have_value(end)


def _pick(page: Page, select: Locator, label: str) -> None:
    select.click()
    page.locator(".el-select-dropdown__item:visible").get_by_text(label, exact=True).click()


def _english(page: Page) -> None:
    """The page again in English, signed in again: the reload trades the refresh token for a
    new one, and a navigation before that is stored would offer the old one (refused)."""
    page.evaluate("localStorage.setItem('selfmart.locale', 'en')")
    page.reload()
    expect(page.locator("[data-test=side-menu]")).to_be_visible()


def _body_rows(table: Locator) -> Locator:
    return table.locator(".el-table__body-wrapper .el-table__row")


def test_fee_report_is_the_apis_filtered_and_exported(page: Page, server_url: str) -> None:
    start, end = _last_week()
    login(page, "superadmin")
    page.goto("/settlement/fees")
    expect(page.locator(".page-head h1")).to_have_text("平台手续费")
    _set_range(page, start, end)
    page.locator("[data-test=settlement-fees-search]").click()
    table = page.locator("[data-test=settlement-fees-table]")
    rows = _body_rows(table)

    query = {"date_from": start, "date_to": end, "flagged": "false"}
    every = _api(server_url, "/settlement/fees", query)
    assert {r["channel"] for r in every} == {"wechat", "alipay", "card"}
    expect(rows).to_have_count(len(every))
    for row, want in zip(rows.all(), every, strict=True):
        expect(row).to_contain_text(want["bill_date"])
        expect(row).to_contain_text(CHANNELS_ZH[want["channel"]])
        for key in ("sales_fen", "refunds_fen", "fee_fen", "expected_fee_fen", "difference_fen"):
            expect(row).to_contain_text(_yuan(want[key]))

    # one channel: only its rows, the API's
    _pick(page, page.locator("[data-test=settlement-fees-channel]"), "支付宝")
    page.locator("[data-test=settlement-fees-search]").click()
    alipay = _api(server_url, "/settlement/fees", {**query, "channel": "alipay"})
    assert 0 < len(alipay) < len(every)
    expect(rows).to_have_count(len(alipay))
    for row, want in zip(rows.all(), alipay, strict=True):
        expect(row).to_contain_text(want["bill_date"])
        expect(row).to_contain_text("支付宝")
        expect(row).to_contain_text(_yuan(want["fee_fen"]))

    # the export carries the same filters: its rows are the API's
    with page.expect_download() as download:
        page.locator("[data-test=settlement-fees-export]").click()
    sheet = _sheet(download.value.path())
    assert sheet[0][0] == "账单日"
    assert len(sheet) == 1 + len(alipay)
    for got, want in zip(sheet[1:], alipay, strict=True):
        assert str(got[0])[:10] == want["bill_date"]
        assert got[1] == "支付宝"
        assert got[2] == want["account_id"]
        assert got[4] == want["lines"]
        fens = [_fen(got[i]) for i in (5, 6, 7, 8, 9)]
        keys = ("sales_fen", "refunds_fen", "fee_fen", "expected_fee_fen", "difference_fen")
        assert fens == [want[k] for k in keys]

    # only the rows to check: the demo's sandboxes charge the configured rate, so none
    page.locator("[data-test=settlement-fees-flagged]").click()
    page.locator("[data-test=settlement-fees-search]").click()
    flagged = {**query, "channel": "alipay", "flagged": "true"}
    assert _api(server_url, "/settlement/fees", flagged) == []
    expect(rows).to_have_count(0)
    expect(table).to_contain_text("没有符合条件的记录")  # filtered: the offer to reset

    _english(page)
    expect(page.locator(".page-head h1")).to_have_text("Platform fees")
    _set_range(page, start, end)
    page.locator("[data-test=settlement-fees-search]").click()
    expect(rows).to_have_count(len(every))
    expect(table).to_contain_text("At the rate")
    for name in ("WeChat Pay", "Alipay", "UnionPay"):
        expect(rows.filter(has_text=name).first).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("settlement.")


def test_store_settlement_is_the_apis_filtered_and_exported(page: Page, server_url: str) -> None:
    start, end = _last_week()
    login(page, "superadmin")
    page.goto("/settlement/stores")
    expect(page.locator(".page-head h1")).to_have_text("门店结算")
    _set_range(page, start, end)
    page.locator("[data-test=settlement-stores-search]").click()
    table = page.locator("[data-test=settlement-stores-table]")
    rows = _body_rows(table)
    totals = page.locator("[data-test=settlement-stores-totals]")

    query = {"date_from": start, "date_to": end, "group": "day"}
    chain = _api(server_url, "/settlement/stores", query)
    assert chain["totals"]["sales_fen"] > 0
    expect(rows).to_have_count(len(chain["rows"]))
    for key in ("sales_fen", "refunds_fen", "fees_fen", "net_fen"):
        expect(totals).to_contain_text(_yuan(chain["totals"][key]))
    for row, want in zip(rows.all(), chain["rows"], strict=True):
        expect(row).to_contain_text(want["period"])
        expect(row).to_contain_text(_yuan(want["net_fen"]))

    # by month: the week's rows fold into its month(s)
    page.locator("[data-test=settlement-stores-group]").get_by_text("按月").click()
    monthly = _api(server_url, "/settlement/stores", {**query, "group": "month"})
    assert len(monthly["rows"]) < len(chain["rows"])
    expect(rows).to_have_count(len(monthly["rows"]))
    expect(rows.first).to_contain_text(monthly["rows"][0]["period"])
    assert monthly["totals"] == chain["totals"]

    # one store: its figures only
    store = next(r for r in chain["rows"] if r["store_id"] is not None)
    _pick(page, page.locator("[data-test=settlement-stores-store]"), store["store_name"])
    page.locator("[data-test=settlement-stores-search]").click()
    one = _api(
        server_url,
        "/settlement/stores",
        {**query, "group": "month", "store_id": str(store["store_id"])},
    )
    assert 0 < one["totals"]["sales_fen"] < chain["totals"]["sales_fen"]
    expect(totals).to_contain_text(_yuan(one["totals"]["net_fen"]))
    expect(rows).to_have_count(len(one["rows"]))
    others = {None, store["store_id"]}
    other = {r["store_name"] for r in chain["rows"] if r["store_id"] not in others}
    for other_name in other:
        expect(table).not_to_contain_text(other_name)

    with page.expect_download() as download:
        page.locator("[data-test=settlement-stores-export]").click()
    sheet = _sheet(download.value.path())
    assert sheet[0][:2] == ["日期", "门店"]
    assert len(sheet) == 1 + len(one["rows"]) + 1
    for got, want in zip(sheet[1:-1], one["rows"], strict=True):
        assert got[0] == want["period"]
        assert got[1] == want["store_name"]
        assert got[2] == CHANNELS_ZH[want["channel"]]
        assert got[4] == want["lines"]
        keys = ("sales_fen", "refunds_fen", "fees_fen", "net_fen")
        assert [_fen(got[i]) for i in (5, 6, 7, 8)] == [want[k] for k in keys]
    last = sheet[-1]
    assert last[0] == "合计"
    assert [_fen(last[i]) for i in (5, 6, 7, 8)] == [
        one["totals"][k] for k in ("sales_fen", "refunds_fen", "fees_fen", "net_fen")
    ]

    _english(page)
    expect(page.locator(".page-head h1")).to_have_text("Store settlement")
    expect(totals).to_contain_text("Net paid out")
    expect(rows.first).to_be_visible()
    expect(table).to_contain_text("Bill")
    expect(page.locator("body")).not_to_contain_text("settlement.")
    # the export is written in the console's language, not the browser's
    with page.expect_download() as download:
        page.locator("[data-test=settlement-stores-export]").click()
    english = _sheet(download.value.path())
    assert english[0][:5] == ["Date", "Store", "Channel", "Source", "Lines"]
    assert english[-1][0] == "Total"
    assert {row[2] for row in english[1:-1]} <= set(CHANNELS_EN.values())


async def _goods_of_a_new_supplier(db_url: str, month: date) -> tuple[int, str]:
    """A supplier from whom a store received goods on `month`'s 10th and returned some on its
    20th: its id and name."""
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as session:
            store = (await session.scalars(select(Store).order_by(Store.id).limit(1))).one()
            products = list(
                (await session.scalars(select(Product).order_by(Product.id).limit(2))).all()
            )
            supplier = await make_supplier(session)
            for product, cost in zip(products, (250, 1_180), strict=True):
                await supplies(session, supplier, product, cost)
            day = f"{month:%Y-%m}"
            await received(
                session,
                store,
                supplier,
                f"{day}-10T04:00",
                [(products[0], 12, None), (products[1], 5, None)],
            )
            await returned_to(session, supplier, store, products[0], 3, f"{day}-20T04:00")
            await session.commit()
            return supplier.id, supplier.name
    finally:
        await engine.dispose()


def test_supplier_statement_generated_reviewed_approved_paid_and_audited(
    page: Page, server_url: str, server_db_url: str
) -> None:
    today = datetime.now(UTC).astimezone().date()  # the browser's day (the machine's zone)
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    supplier_id, name = _run(_goods_of_a_new_supplier(server_db_url, last_month))

    login(page, "superadmin")
    page.goto("/settlement/statements")
    expect(page.locator(".page-head h1")).to_have_text("供应商结算单")
    page.locator("[data-test=statement-generate]").click()
    dialog = page.locator("[data-test=statement-generate-dialog]")
    _pick(page, dialog.locator("[data-test=statement-generate-supplier]"), name)
    # the period offered for a supplier without statements: the whole previous month
    period = dialog.locator(".el-range-input")
    expect(period.nth(0)).to_have_value(last_month.isoformat())
    expect(period.nth(1)).to_have_value((today.replace(day=1) - timedelta(days=1)).isoformat())
    dialog.locator("[data-test=statement-generate-submit]").click()

    drawer = page.locator("[data-test=statement-drawer]")
    summary = drawer.locator("[data-test=statement-summary]")
    expect(summary).to_contain_text("草稿")
    mine = _api(server_url, "/settlement/statements", {"supplier_id": str(supplier_id)})["items"]
    assert len(mine) == 1
    sid = mine[0]["id"]
    stmt = _api(server_url, f"/settlement/statements/{sid}")
    assert stmt["goods_fen"] == 12 * 250 + 5 * 1_180
    assert stmt["returns_fen"] == -3 * 250  # what goes back is taken off
    assert stmt["total_fen"] == stmt["goods_fen"] + stmt["returns_fen"]
    for key in ("goods_fen", "returns_fen", "total_fen"):
        expect(summary).to_contain_text(_yuan(stmt[key]))
    lines = _body_rows(drawer.locator("[data-test=statement-lines]"))
    expect(lines).to_have_count(len(stmt["lines"]))
    for row, want in zip(lines.all(), stmt["lines"], strict=True):
        expect(row).to_contain_text(want["product_name"])
        expect(row).to_contain_text(_yuan(want["amount_fen"]))

    confirm = page.locator(".el-message-box__btns .el-button--primary")
    drawer.locator("[data-test=statement-review]").click()
    expect(page.locator(".el-message-box")).to_contain_text(stmt["number"])
    confirm.click()
    expect(summary).to_contain_text("已复核")
    drawer.locator("[data-test=statement-approve]").click()
    expect(page.locator(".el-message-box")).to_contain_text(_yuan(stmt["total_fen"]))
    confirm.click()
    expect(summary).to_contain_text("已审批")
    expect(drawer.locator("[data-test=statement-regenerate]")).to_have_count(0)
    drawer.locator("[data-test=statement-pay]").click()
    pay = page.locator("[data-test=statement-pay-dialog]")
    expect(pay.locator("[data-test=statement-pay-submit]")).to_be_disabled()
    pay.locator("[data-test=statement-pay-reference]").fill("BANK-20261206-001")
    pay.locator("[data-test=statement-pay-submit]").click()
    expect(summary).to_contain_text("已付款")
    expect(summary).to_contain_text("BANK-20261206-001")
    assert _api(server_url, f"/settlement/statements/{sid}")["status"] == "paid"

    with page.expect_download() as download:
        drawer.locator("[data-test=statement-export]").click()
    sheet = _sheet(download.value.path())
    facts = {row[0]: row[1] for row in sheet if row and row[0] is not None}
    assert facts["结算单号"] == stmt["number"]
    assert facts["状态"] == "已付款"
    assert _fen(facts["应付合计(元)"]) == stmt["total_fen"]
    assert facts["付款流水号"] == "BANK-20261206-001"
    head = next(i for i, row in enumerate(sheet) if row and row[0] == "类型")
    exported = [(r[1], r[3], _fen(r[5])) for r in sheet[head + 1 :] if r and r[0] is not None]
    assert exported == [(x["product_id"], x["quantity"], x["amount_fen"]) for x in stmt["lines"]]

    # each step in the audit log, the API's and the page's
    logged = _api(
        server_url, "/audit-logs", {"entity_type": "supplier_statement", "entity_id": str(sid)}
    )["items"]
    assert sorted(e["action"] for e in logged) == sorted(
        f"supplier_statement.{a}" for a in ("generate", "reviewed", "approved", "paid")
    )
    page.keyboard.press("Escape")
    page.goto("/audit-logs")
    page.locator("[data-test=audit-entity]").fill(stmt["number"])
    page.locator("[data-test=audit-entity]").press("Enter")
    audit = page.locator("[data-test=audit-table]")
    expect(audit.locator(".el-table__row")).to_have_count(4)
    expect(audit).to_contain_text("供应商结算单")

    # the paid statement in English
    _english(page)
    page.goto("/settlement/statements")
    table = page.locator("[data-test=statements-table]")
    row = _body_rows(table).filter(has_text=stmt["number"])
    expect(row).to_contain_text("Paid")
    expect(row).to_contain_text("Goods received")
    row.locator("[data-test=statement-detail]").click()
    expect(summary).to_contain_text("Supplier bears shrinkage")
    expect(summary).to_contain_text(_yuan(stmt["total_fen"]))
    expect(drawer.locator("[data-test=statement-lines]")).to_contain_text("Returned")
    expect(drawer.locator("[data-test=statement-pay]")).to_have_count(0)
    expect(page.locator("body")).not_to_contain_text("settlement.")

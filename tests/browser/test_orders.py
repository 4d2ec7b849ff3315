"""The orders console in a real browser against the real server: the list finds orders by
number and by filter, the detail shows the timeline, a refund made in the dialog moves the
order, a cashier's refund above their limit goes to a manager who approves it, a cashier sees
phones masked, a part of an order number and a day picked by shortcut find orders, the queue
offers only the actions that can work, an abnormal order worked from the
queue leaves it, an order sent by a terminal appears in the open list without a reload, and a
customer finds an order on the phone page by number and phone digits (and by the receipt link).

Orders are made the way a terminal makes them: a terminal of the demo chain is activated with
a one-time code, and each order is a signed request to the terminal API."""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect

from selfmart.terminals import signing

from .conftest import LOGINS
from .test_console import login

pytestmark = pytest.mark.browser

TERMINAL_CODE = "T-HZ001-02"


@dataclass
class Terminal:
    base: str
    key_id: str
    secret: str
    products: list[dict[str, Any]]

    def request(self, method: str, path: str, payload: Any = None) -> httpx.Response:
        body = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        headers = signing.sign(
            key_id=self.key_id, secret=self.secret, method=method, target=path, body=body
        )
        if payload is not None:
            headers["content-type"] = "application/json"
        return httpx.request(method, f"{self.base}{path}", content=body, headers=headers)

    def order(
        self,
        *,
        quantity: int = 2,
        product: dict[str, Any] | None = None,
        member: dict[str, str] | None = None,
        shown_price_fen: int | None = None,
    ) -> dict[str, Any]:
        """A new order as the terminal sends it; returns the server's answer."""
        item = product or self.products[0]
        line: dict[str, Any] = {"barcode": item["barcodes"][0], "quantity": quantity}
        payload: dict[str, Any] = {
            "client_order_id": f"bt-{uuid.uuid4().hex[:16]}",
            "purchased_at": datetime.now(UTC).isoformat(),
            "lines": [line],
        }
        if shown_price_fen is not None:
            line["unit_price_fen"] = shown_price_fen
            payload["total_fen"] = shown_price_fen * quantity
        if member is not None:
            payload["member"] = member
        answer = self.request("POST", "/api/terminal/v1/orders", payload)
        assert answer.status_code == 201, answer.text
        result: dict[str, Any] = answer.json()
        return result


def _token(base: str, username: str = "superadmin") -> str:
    r = httpx.post(
        f"{base}/api/v1/auth/login", json={"username": username, "password": LOGINS[username]}
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _api(base: str, method: str, path: str, **kw: Any) -> Any:
    r = httpx.request(
        method, f"{base}{path}", headers={"authorization": f"Bearer {_token(base)}"}, **kw
    )
    assert r.status_code < 300, r.text
    return r.json()


@pytest.fixture(scope="module")
def terminal(server_url: str) -> Terminal:
    """A demo terminal activated with a fresh one-time code, as its device would be."""
    found = _api(server_url, "GET", "/api/v1/terminals", params={"q": TERMINAL_CODE})
    terminal_id = next(t["id"] for t in found["items"] if t["code"] == TERMINAL_CODE)
    code = _api(server_url, "POST", f"/api/v1/terminals/{terminal_id}/activation-code")
    activated = httpx.post(
        f"{server_url}/api/terminal/v1/activate",
        json={"terminal_code": TERMINAL_CODE, "activation_code": code["activation_code"]},
    )
    assert activated.status_code == 200, activated.text
    key = activated.json()
    term = Terminal(server_url, key["key_id"], key["secret"], [])
    sync = term.request("GET", "/api/terminal/v1/products")
    assert sync.status_code == 200, sync.text
    term.products = [p for p in sync.json()["items"] if p["barcodes"] and p["price_fen"] >= 300]
    assert term.products
    return term


def _pay(base: str, order_id: int) -> None:
    _api(base, "POST", f"/api/v1/orders/{order_id}/payments", json={"note": "browser test"})


def _search(page: Page, text: str) -> None:
    page.locator("[data-test=orders-q]").fill(text)
    page.locator("[data-test=orders-search]").click()


def _rows(page: Page) -> Any:
    return page.locator("[data-test=orders-table] .el-table__body-wrapper .el-table__row")


def _login_as(page: Page, username: str) -> None:
    """Sign in as someone else in the same browser (the signed-in user is forgotten first)."""
    page.context.clear_cookies()
    page.evaluate("() => { localStorage.clear(); sessionStorage.clear() }")
    login(page, username)


def _confirm(page: Page) -> None:
    box = page.locator(".el-message-box")
    expect(box).to_be_visible()
    box.locator(
        ".el-message-box__btns .el-button--primary, .el-message-box__btns .el-button--danger"
    ).click()
    expect(box).to_be_hidden()


def test_the_list_finds_an_order_by_number_and_by_filters(page: Page, terminal: Terminal) -> None:
    name = f"顾客{uuid.uuid4().hex[:6]}"
    made = terminal.order(quantity=3, member={"member_no": "M-BT-1", "name": name})
    login(page, "superadmin")
    page.goto("/orders")
    expect(_rows(page).first).to_be_visible()

    _search(page, made["order_no"])
    expect(_rows(page)).to_have_count(1)
    expect(_rows(page).first).to_contain_text(made["order_no"])

    # By customer name and an amount range given in yuan (the API gets fen).
    page.get_by_role("button", name="重置").click()
    page.locator("[data-test=orders-more]").click()
    page.locator("[data-test=orders-customer]").fill(name)
    yuan = made["total_fen"] / 100
    page.locator("[data-test=orders-amount-min]").fill(f"{math.floor(yuan)}")
    page.locator("[data-test=orders-amount-max]").fill(f"{math.ceil(yuan) + 1}")
    page.locator("[data-test=orders-search]").click()
    expect(_rows(page)).to_have_count(1)
    expect(_rows(page).first).to_contain_text(made["order_no"])
    expect(_rows(page).first).to_contain_text(name)

    # A range that excludes it leaves the empty state, and "1.234" yuan is refused in place.
    page.locator("[data-test=orders-amount-min]").fill(f"{math.ceil(yuan) + 1}")
    page.locator("[data-test=orders-amount-max]").fill(f"{math.ceil(yuan) + 2}")
    page.locator("[data-test=orders-search]").click()
    expect(page.locator("[data-test=list-empty]")).to_contain_text("没有符合条件")
    page.locator("[data-test=orders-amount-min]").fill("1.234")
    page.locator("[data-test=orders-search]").click()
    expect(page.locator(".el-message--error")).to_contain_text("两位小数")


def test_the_current_search_exports_to_xlsx(page: Page, terminal: Terminal) -> None:
    made = terminal.order(quantity=1)
    login(page, "superadmin")
    page.goto("/orders")
    _search(page, made["order_no"])
    expect(_rows(page)).to_have_count(1)
    with page.expect_download(timeout=30_000) as download:
        page.locator("[data-test=orders-export]").click()
    path = download.value.path()
    assert download.value.suggested_filename.endswith(".xlsx")
    with open(path, "rb") as f:
        assert f.read(2) == b"PK"  # an xlsx is a zip
    expect(page.locator(".el-message--success")).to_contain_text("导出完成")


def test_the_detail_shows_lines_timeline_and_audit(page: Page, terminal: Terminal) -> None:
    made = terminal.order(quantity=2)
    _pay(terminal.base, made["order_id"])
    login(page, "superadmin")
    page.goto("/orders")
    _search(page, made["order_no"])
    _rows(page).first.locator("[data-test=order-link]").click()
    expect(page).to_have_url(re.compile(rf"/orders/{made['order_id']}$"))
    expect(page.locator("[data-test=order-no]")).to_contain_text(made["order_no"])
    expect(page.locator("[data-test=order-status]")).to_have_text("已支付")
    expect(page.locator("[data-test=order-lines]")).to_contain_text(terminal.products[0]["name"])
    timeline = page.locator("[data-test=order-timeline]")
    expect(timeline).to_contain_text("终端下单")
    expect(timeline).to_contain_text("服务端计价并扣减库存")
    expect(timeline).to_contain_text("待支付 → 已支付")
    expect(timeline).to_contain_text(TERMINAL_CODE)
    expect(timeline).to_contain_text("superadmin")
    expect(page.locator("[data-test=order-payments]")).to_contain_text("手工记账")
    expect(page.locator("[data-test=order-audit]")).to_contain_text("order.create")
    expect(page.locator("[data-test=action-complete]")).to_be_visible()


def test_a_refund_made_in_the_dialog_moves_the_order(page: Page, terminal: Terminal) -> None:
    made = terminal.order(quantity=3)
    _pay(terminal.base, made["order_id"])
    login(page, "superadmin")
    page.goto(f"/orders/{made['order_id']}")
    expect(page.locator("[data-test=order-status]")).to_have_text("已支付")
    page.locator("[data-test=action-refund]").click()
    dialog = page.locator(".el-dialog[data-test=refund-dialog]")
    expect(dialog).to_be_visible()
    dialog.locator("[data-test=refund-qty-1] .el-input-number__increase").click()
    dialog.locator("[data-test=refund-writeoff-1]").click()
    expected = made["total_fen"] // 3
    expect(dialog.locator("[data-test=refund-amount]")).to_have_text(
        f"¥{expected // 100}.{expected % 100:02d}"
    )
    dialog.locator("[data-test=refund-submit]").click()
    expect(dialog).to_contain_text("请填写原因")
    dialog.locator("[data-test=refund-reason]").fill("包装破损")
    dialog.locator("[data-test=refund-submit]").click()
    _confirm(page)
    expect(dialog).to_be_hidden()
    expect(page.locator("[data-test=order-status]")).to_have_text("部分退款")
    refunds = page.locator("[data-test=order-refunds]")
    expect(refunds).to_contain_text("包装破损")
    expect(refunds).to_contain_text("报损")
    expect(page.locator("[data-test=order-timeline]")).to_contain_text("申请退款")


def test_a_cashier_refund_above_the_limit_goes_to_a_manager_who_approves_it(
    page: Page, terminal: Terminal
) -> None:
    product = max(terminal.products, key=lambda p: p["price_fen"])
    made = terminal.order(product=product, quantity=math.ceil(25_000 / product["price_fen"]))
    assert made["total_fen"] > 20_000
    total = f"{made['total_fen'] // 100}.{made['total_fen'] % 100:02d}"
    _pay(terminal.base, made["order_id"])
    login(page, "cashier")
    page.goto(f"/orders/{made['order_id']}")
    page.locator("[data-test=action-refund]").click()
    dialog = page.locator(".el-dialog[data-test=refund-dialog]")
    # The cashier's limit is shown up front; past it the refund is sent for approval.
    my_limit = dialog.locator("[data-test=refund-my-limit]")
    expect(my_limit).to_have_text("你的单笔退款上限：200.00 元")
    dialog.locator("[data-test=refund-full]").click()
    expect(my_limit).to_contain_text("提交给上限足够的管理员审批")
    expect(dialog.locator("[data-test=refund-submit]")).to_have_text("提交审批")
    dialog.locator("[data-test=refund-reason]").fill("顾客退货")
    dialog.locator("[data-test=refund-submit]").click()
    expect(page.locator(".el-message-box")).to_contain_text(f"这笔退款 {total} 元超出你的上限")
    _confirm(page)
    expect(dialog).to_be_hidden()
    expect(page.locator(".el-message--success")).to_contain_text("已提交审批")
    expect(page.locator("[data-test=order-status]")).to_have_text("已支付")
    expect(page.locator("[data-test=order-timeline]")).to_contain_text("退款超出上限，已提交审批")
    # The cashier follows it beside the queue, and cannot decide it.
    page.goto("/orders/issues")
    page.get_by_role("tab", name="退款审批").click()
    mine = page.locator(
        "[data-test=refund-requests-table] .el-table__row", has_text=made["order_no"]
    )
    expect(mine).to_contain_text("等待审批")
    expect(mine.locator("[data-test=refund-request-approve]")).to_have_count(0)

    # An admin, whose limit covers it, approves it: the refund is made in their name.
    _login_as(page, "admin")
    page.goto("/orders/issues")
    page.get_by_role("tab", name="退款审批").click()
    row = page.locator(
        "[data-test=refund-requests-table] .el-table__row", has_text=made["order_no"]
    )
    expect(row.locator("[data-test=refund-request-amount]")).to_have_text(f"¥{total}")
    expect(row).to_contain_text("cashier")
    row.locator("[data-test=refund-request-approve]").click()
    expect(page.locator(".el-message-box")).to_contain_text(f"退款 {total} 元")
    _confirm(page)
    expect(page.locator(".el-message--success")).to_contain_text("已批准")
    expect(row).to_have_count(0)
    page.goto(f"/orders/{made['order_id']}")
    expect(page.locator("[data-test=order-status]")).to_have_text("已退款")
    expect(page.locator("[data-test=order-timeline]")).to_contain_text("退款审批通过")
    expect(page.locator("[data-test=order-audit]")).to_contain_text("order.refund_approval.approve")


def test_a_cashier_sees_the_customer_s_phone_masked(page: Page, terminal: Terminal) -> None:
    made = terminal.order(quantity=1, member={"member_no": "M-BT-2", "phone": "13912345678"})
    login(page, "cashier")
    page.goto(f"/orders/{made['order_id']}")
    expect(page.locator("[data-test=order-phone]")).to_have_text("139****5678")
    _login_as(page, "admin")
    page.goto(f"/orders/{made['order_id']}")
    expect(page.locator("[data-test=order-phone]")).to_have_text("13912345678")


def test_the_list_finds_a_part_of_an_order_number_and_a_day_by_shortcut(
    page: Page, terminal: Terminal
) -> None:
    made = terminal.order(quantity=1)
    login(page, "superadmin")
    page.goto("/orders")
    _search(page, made["order_no"][-7:])
    expect(_rows(page)).to_have_count(1)
    expect(_rows(page).first).to_contain_text(made["order_no"])
    # Today, by the picker's shortcut, keeps it; last month does not.
    page.locator("[data-test=time-range] input").first.click()
    page.locator(".el-picker-panel__shortcut", has_text="今天").click()
    page.locator("[data-test=orders-search]").click()
    expect(_rows(page)).to_have_count(1)
    page.locator("[data-test=time-range] input").first.click()
    page.locator(".el-picker-panel__shortcut", has_text="上月").click()
    page.locator("[data-test=orders-search]").click()
    expect(page.locator("[data-test=list-empty]")).to_be_visible()


def test_an_abnormal_order_worked_from_the_queue_leaves_it(page: Page, terminal: Terminal) -> None:
    product = terminal.products[1]
    made = terminal.order(product=product, quantity=1, shown_price_fen=product["price_fen"] - 100)
    assert made["price_mismatch"] is True
    _pay(terminal.base, made["order_id"])
    login(page, "superadmin")
    page.goto("/orders/issues")
    row = page.locator("[data-test=issues-table] .el-table__row", has_text=made["order_no"])
    expect(row).to_be_visible()
    expect(row).to_contain_text("价格不符")
    expect(row.locator("[data-test=issue-waiting]")).to_contain_text(re.compile(r"\d+ (秒|分钟)"))
    row.locator("[data-test=issue-action-refund_difference]").click()
    dialog = page.locator(".el-dialog[data-test=issue-dialog]")
    expect(dialog).to_be_visible()
    expect(dialog.locator("[data-test=issue-refund-amount]")).to_have_text("¥1.00")
    dialog.locator("[data-test=issue-note]").fill("终端价签未更新，退还差价")
    dialog.locator("[data-test=issue-submit]").click()
    expect(page.locator(".el-message-box")).to_contain_text("退还差价 1.00 元")
    _confirm(page)
    expect(dialog).to_be_hidden()
    expect(row).to_have_count(0)

    # The order shows what was done, by whom, and why.
    page.goto(f"/orders/{made['order_id']}")
    expect(page.locator("[data-test=order-timeline]")).to_contain_text("异常已处理：价格不符")
    expect(page.locator("[data-test=order-refunds]")).to_contain_text("1.00")
    expect(page.locator("[data-test=order-audit]")).to_contain_text("order.issue.refund_difference")


def test_an_order_from_a_terminal_appears_in_the_open_list(page: Page, terminal: Terminal) -> None:
    login(page, "superadmin")
    page.goto("/orders")
    expect(_rows(page).first).to_be_visible()
    expect(page.locator("[data-test=live-state]")).to_have_text("实时")
    made = terminal.order(quantity=1)
    row = _rows(page).first
    expect(row).to_contain_text(made["order_no"], timeout=10_000)
    expect(row).to_have_class(re.compile("row-new"))

    # The overview's live panel counts it too.
    page.goto("/")
    expect(page.locator("[data-test=live-latest]")).to_contain_text(made["order_no"])
    second = terminal.order(quantity=1)
    expect(page.locator("[data-test=live-latest]")).to_contain_text(
        second["order_no"], timeout=10_000
    )


def test_a_customer_finds_an_order_by_number_and_phone_digits(
    page: Page, terminal: Terminal
) -> None:
    made = terminal.order(
        quantity=2, member={"member_no": "M-BT-2", "name": "王小明", "phone": "13900004321"}
    )
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/my-order")
    page.locator("[data-test=customer-order-input]").fill(made["order_no"])
    page.locator("[data-test=customer-phone-input]").fill("9999")
    page.locator("[data-test=customer-submit]").click()
    expect(page.locator("[data-test=customer-problem]")).to_contain_text("没有找到这笔订单")

    page.locator("[data-test=customer-phone-input]").fill("4321")
    page.locator("[data-test=customer-submit]").click()
    card = page.locator("[data-test=customer-order]")
    expect(card).to_contain_text(made["order_no"])
    expect(page.locator("[data-test=customer-status]")).to_have_text("待支付")
    expect(page.locator("[data-test=customer-lines]")).to_contain_text(terminal.products[0]["name"])
    # Unpaid: what is owed, and the store's phone to settle it (the reminder SMS links here).
    owed = page.locator("[data-test=customer-owed]")
    total = made["total_fen"]
    expect(owed).to_contain_text(f"还需支付 ¥{total // 100}.{total % 100:02d}")
    expect(owed.locator("[data-test=customer-call]")).to_have_attribute("href", "tel:0571-88990003")
    # Nothing personal: no name, phone or member number on the page.
    body = page.locator("body").inner_text()
    for personal in ("王小明", "13900004321", "M-BT-2"):
        assert personal not in body
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    # The receipt's QR link opens the same page, signed, without a login.
    page.goto(urlsplit(made["receipt_url"]).path)
    expect(page.locator("[data-test=customer-order-no]")).to_have_text(made["order_no"])
    page.goto("/r/not-a-real-token-at-all-000000")
    expect(page.locator("[data-test=customer-problem]")).to_contain_text("链接无效")


def test_the_queue_offers_only_the_actions_that_can_work(page: Page, terminal: Terminal) -> None:
    """A payment the terminal reports failed, on an order with no payment record and no
    customer phone: no re-query and no reminder are offered, only what can work."""
    made = terminal.order(quantity=1)
    failed = terminal.request(
        "POST",
        f"/api/terminal/v1/orders/{made['order_no']}/payment-failures",
        {
            "attempt_id": f"a-{uuid.uuid4().hex[:8]}",
            "method": "wechat",
            "amount_fen": made["total_fen"],
            "reason": "余额不足",
        },
    )
    assert failed.status_code == 201, failed.text
    login(page, "superadmin")
    page.goto("/orders/issues")
    row = page.locator("[data-test=issues-table] .el-table__row", has_text=made["order_no"])
    expect(row.locator("[data-test=issue-action-retry_payment]")).to_be_visible()
    expect(row.locator("[data-test=issue-action-close]")).to_be_visible()
    expect(row.locator("[data-test=issue-action-requery_payment]")).to_have_count(0)
    expect(row.locator("[data-test=issue-action-remind]")).to_have_count(0)

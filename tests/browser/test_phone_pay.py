"""The customer's phone page pays through the WeChat Pay sandbox's own customer page: found on
/my-order by number and phone digits, the pay button opens the platform's page, the customer
pays there and goes back to the shop, and the page shows the order paid."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .test_orders import Terminal, terminal

pytestmark = pytest.mark.browser
__all__ = ["terminal"]  # the module's activated demo terminal (tests/browser/test_orders.py)


def test_a_customer_pays_from_my_order_through_the_platform_page(
    page: Page, terminal: Terminal
) -> None:
    made = terminal.order(
        quantity=1, member={"member_no": "M-BT-PAY", "name": "李四", "phone": "13900005678"}
    )
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/my-order")
    page.locator("[data-test=customer-order-input]").fill(made["order_no"])
    page.locator("[data-test=customer-phone-input]").fill("5678")
    page.locator("[data-test=customer-submit]").click()
    expect(page.locator("[data-test=customer-status]")).to_have_text("待支付")
    pay = page.locator("[data-test=phone-pay-wechat]")
    expect(pay).to_be_visible()
    pay.click()

    # The platform's page (the sandbox's): this payment waits for the customer.
    expect(page.locator("h1")).to_contain_text("WeChat Pay sandbox")
    expect(page.locator("tbody")).to_contain_text(made["order_no"])
    back = page.get_by_role("link", name="Back to the shop").get_attribute("href")
    assert back is not None
    assert "/r/" in back
    page.get_by_role("button", name="Pay").first.click()
    expect(page.locator("tbody")).to_contain_text("Nothing is waiting.")

    # Back at the shop (the receipt's signed page): the callback has paid the order.
    for _ in range(10):
        page.goto(back)
        status = page.locator("[data-test=customer-status]")
        expect(status).to_be_visible()
        if status.inner_text() == "已支付":
            break
        page.wait_for_timeout(500)
    expect(page.locator("[data-test=customer-status]")).to_have_text("已支付")
    expect(page.locator("[data-test=customer-owed]")).to_have_count(0)
    expect(page.locator("[data-test=customer-order-no]")).to_have_text(made["order_no"])

"""The terminal fleet page in a real browser: a terminal that reports an empty printer and
orders it could not send shows up among those that need attention, in the store's words."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from playwright.sync_api import Page, expect

from selfmart.terminals import signing

from .conftest import LOGINS
from .test_console import login

pytestmark = pytest.mark.browser


def _activated_terminal(server_url: str) -> tuple[str, str, str]:
    """A new terminal of a demo store, activated as a device would: (code, key id, secret)."""
    code = f"T-FLEET-{uuid.uuid4().hex[:6].upper()}"
    with httpx.Client(base_url=f"{server_url}/api/v1") as api:
        tokens = api.post(
            "/auth/login", json={"username": "superadmin", "password": LOGINS["superadmin"]}
        ).json()
        api.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        store_id = api.get("/stores").json()["items"][0]["id"]
        created = api.post("/terminals", json={"code": code, "store_id": store_id})
        assert created.status_code == 201, created.text
        issued = api.post(f"/terminals/{created.json()['id']}/activation-code")
        assert issued.status_code in (200, 201), issued.text
        activation = issued.json()["activation_code"]
    activated = httpx.post(
        f"{server_url}/api/terminal/v1/activate",
        json={"terminal_code": code, "activation_code": activation},
    )
    assert activated.status_code == 200, activated.text
    return code, activated.json()["key_id"], activated.json()["secret"]


def test_a_terminal_out_of_paper_needs_attention(page: Page, server_url: str) -> None:
    code, key_id, secret = _activated_terminal(server_url)
    target = "/api/terminal/v1/heartbeat"
    body = json.dumps(
        {"app_version": "9.9.1", "status": "ready", "unsent_orders": 4, "printer": "paper_out"}
    ).encode()
    headers = signing.sign(key_id=key_id, secret=secret, method="POST", target=target, body=body)
    r = httpx.post(
        f"{server_url}{target}",
        content=body,
        headers={**headers, "content-type": "application/json"},
    )
    assert r.status_code == 200, r.text

    login(page, "superadmin")
    page.locator("[data-test=side-menu]").get_by_text("终端运行状态").click()
    expect(page.locator(".page-head h1")).to_have_text("终端运行状态")
    expect(page.locator("[data-test=fleet-summary]")).to_contain_text("9.9.1 × 1")
    row = page.locator("[data-test=fleet-table] .el-table__row", has_text=code)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("缺纸")
    expect(row).to_contain_text("空闲")
    expect(row).to_contain_text("4")

    # Only terminals that need attention when that card is chosen: this one, and not the
    # healthy demo terminals. (A demo terminal whose seeded heartbeat has gone stale, as on a
    # slow run that outlives its time-out, needs attention too: the card counts them all.)
    page.locator("[data-test=fleet-attention]").click()
    attention = int(page.locator("[data-test=fleet-attention] b").inner_text())
    assert attention >= 1
    expect(page.locator("[data-test=fleet-table] .el-table__row")).to_have_count(attention)
    expect(row).to_have_count(1)


def test_the_fleet_opens_on_what_needs_attention_or_else_on_everything(
    page: Page, server_url: str
) -> None:
    """The page opens on the terminals needing attention when there are any; with none, on the
    whole fleet rather than an empty table."""
    login(page, "superadmin")
    page.goto("/terminals/fleet")
    expect(page.locator("[data-test=fleet-summary]")).to_be_visible()
    active = int(page.locator("[data-test=fleet-summary] .card b").first.inner_text())
    attention = int(page.locator("[data-test=fleet-attention] b").inner_text())
    assert active > 0
    rows = page.locator("[data-test=fleet-table] .el-table__row")
    expect(rows).to_have_count(min(attention or active, 20))

"""The console in a real browser against the real server: sign-in, menus by permission,
language, stores, terminal activation codes, the audit trail, and the README screenshot."""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageChops
from playwright.sync_api import Page, expect

from .conftest import LOGINS, ROOT

pytestmark = pytest.mark.browser


def login(page: Page, username: str) -> None:
    page.goto("/login")
    page.locator("[data-test=username]").fill(username)
    page.locator("[data-test=password]").fill(LOGINS[username])
    page.locator("[data-test=login-submit]").click()
    expect(page.locator("[data-test=side-menu]")).to_be_visible()


def create_store(page: Page, code: str, name: str, city: str = "苏州") -> None:
    page.goto("/stores")
    page.locator("[data-test=store-create]").click()
    dialog = page.locator(".el-dialog[data-test=store-dialog]")
    expect(dialog).to_be_visible()
    dialog.locator("[data-test=store-code]").fill(code)
    dialog.locator("[data-test=store-name]").fill(name)
    dialog.locator("[data-test=store-city]").fill(city)
    dialog.locator("[data-test=store-save]").click()
    expect(dialog).to_be_hidden()


def test_readme_screenshot(page: Page) -> None:
    """docs/screenshot.png: the stores list, signed in as the super admin, in Chinese.

    First in the file, so the list shows the demo chain before other tests add stores."""
    login(page, "superadmin")
    page.goto("/stores")
    expect(page.locator("[data-test=stores-table] .el-table__row").first).to_be_visible()
    expect(page.locator("[data-test=stores-table]")).to_contain_text("静安寺自助店")
    page.wait_for_load_state("networkidle")
    page.mouse.move(0, 899)
    shot = page.screenshot(full_page=False)
    out = ROOT / "docs" / "screenshot.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    if _looks_different(out, shot):
        out.write_bytes(shot)
    assert out.stat().st_size > 20_000


def _looks_different(path: Path, shot: bytes, tolerance: float = 0.01) -> bool:
    """Whether a new screenshot is worth writing: the times in the list change on every run, so
    a change confined to under `tolerance` of the picture keeps the committed file as it is."""
    if not path.exists():
        return True
    old = Image.open(path).convert("RGB")
    new = Image.open(io.BytesIO(shot)).convert("RGB")
    if old.size != new.size:
        return True
    box = ImageChops.difference(old, new).getbbox()
    if box is None:
        return False
    changed = (box[2] - box[0]) * (box[3] - box[1])
    return changed > tolerance * old.size[0] * old.size[1]


def test_superadmin_sees_the_full_menu(page: Page) -> None:
    login(page, "superadmin")
    menu = page.locator("[data-test=side-menu]")
    for item in ["dashboard", "stores", "terminals", "users", "roles", "login-logs", "audit-logs"]:
        expect(menu.locator(f"[data-test=menu-{item}]")).to_be_visible()
    expect(menu).to_contain_text("系统管理")
    expect(page.locator("[data-test=scope]")).to_contain_text("全部门店")


def test_cashier_sees_no_system_menu(page: Page) -> None:
    login(page, "cashier")
    menu = page.locator("[data-test=side-menu]")
    expect(menu.locator("[data-test=menu-stores]")).to_be_visible()
    expect(menu.locator("[data-test=menu-group-system]")).to_have_count(0)
    expect(menu.locator("[data-test=menu-users]")).to_have_count(0)
    expect(menu.locator("[data-test=menu-terminals]")).to_have_count(0)
    # A page outside the cashier's permissions is refused, not shown.
    page.goto("/users")
    expect(page.locator(".el-result")).to_contain_text("无权访问此页面")


def test_wrong_password_is_explained_in_chinese(page: Page) -> None:
    page.goto("/login")
    page.locator("[data-test=username]").fill("admin")
    page.locator("[data-test=password]").fill("not-the-password")
    page.locator("[data-test=login-submit]").click()
    expect(page.locator("[data-test=login-error]")).to_contain_text("用户名或密码错误")


def test_language_switch_is_applied_and_remembered(page: Page) -> None:
    login(page, "superadmin")
    expect(page.locator("[data-test=side-menu]")).to_contain_text("系统管理")
    page.locator("[data-test=lang-switch]").click()
    page.locator("[data-test=lang-en]").click()
    expect(page.locator("[data-test=side-menu]")).to_contain_text("System")
    expect(page.locator("[data-test=side-menu]")).not_to_contain_text("系统管理")
    page.reload()
    expect(page.locator("[data-test=side-menu]")).to_contain_text("Stores & terminals")
    assert page.evaluate("document.documentElement.lang") == "en"
    # Back to Chinese (the choice is also saved in the profile).
    page.locator("[data-test=lang-switch]").click()
    page.locator("[data-test=lang-zh-CN]").click()
    expect(page.locator("[data-test=side-menu]")).to_contain_text("系统管理")


def test_create_a_store_and_find_it_in_the_list(page: Page) -> None:
    login(page, "superadmin")
    code = f"BT{uuid.uuid4().hex[:6].upper()}"
    create_store(page, code, "浏览器测试店")
    table = page.locator("[data-test=stores-table]")
    page.locator("[data-test=store-search]").fill(code)
    page.locator("[data-test=store-search]").press("Enter")
    expect(table.locator(".el-table__row")).to_have_count(1)
    expect(table).to_contain_text(code)
    expect(table).to_contain_text("浏览器测试店")
    expect(table).to_contain_text("24 小时营业")


def test_a_search_with_no_match_shows_the_empty_state(page: Page) -> None:
    login(page, "superadmin")
    page.goto("/stores")
    page.locator("[data-test=store-search]").fill("no-such-store-anywhere")
    page.locator("[data-test=store-search]").press("Enter")
    empty = page.locator("[data-test=list-empty]")
    expect(empty).to_contain_text("没有符合条件的记录")
    empty.get_by_role("button").click()
    expect(page.locator("[data-test=stores-table] .el-table__row").first).to_be_visible()


def test_reveal_an_activation_code_then_rotate_the_key(page: Page, server_url: str) -> None:
    login(page, "superadmin")
    page.goto("/terminals")
    page.locator("[data-test=terminal-search]").fill("T-SH002-01")
    page.locator("[data-test=terminal-search]").press("Enter")
    row = page.locator("[data-test=terminals-table] .el-table__body-wrapper .el-table__row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("已激活")  # the demo terminals sell: they were activated
    # a new device for the terminal: a fresh one-time code
    row.locator("[data-test=issue-code]").click()
    page.locator(".el-message-box").get_by_role("button", name="确定").click()
    reveal = page.locator(".el-dialog[data-test=reveal-once]")
    expect(reveal).to_be_visible()
    expect(reveal).to_contain_text("只显示这一次")
    code = reveal.locator("[data-test=secret-value]").inner_text().strip()
    assert re.fullmatch(r"[A-Za-z0-9-]{6,}", code), code
    reveal.locator("[data-test=reveal-ack]").click()
    expect(reveal).to_be_hidden()
    expect(page.get_by_text(code)).to_have_count(0)  # gone once closed

    # The device exchanges the code for its key, exactly as a terminal would.
    activated = httpx.post(
        f"{server_url}/api/terminal/v1/activate",
        json={"terminal_code": "T-SH002-01", "activation_code": code},
    )
    assert activated.status_code == 200, activated.text
    first_secret = activated.json()["secret"]

    page.locator("[data-test=terminal-search]").press("Enter")  # search again: fresh status
    expect(row).to_contain_text("已激活")
    row.get_by_role("button", name="更多").click()
    page.locator(".el-dropdown-menu__item", has_text="轮换密钥").click()
    box = page.locator(".el-message-box")
    expect(box).to_contain_text("轮换")
    box.get_by_role("button", name="确定").click()
    expect(reveal).to_be_visible()
    values = reveal.locator("[data-test=secret-value]").all_inner_texts()
    assert len(values) == 2
    new_secret = values[1].strip()
    assert len(new_secret) >= 32
    assert new_secret != first_secret
    expect(reveal).to_contain_text("旧密钥失效时间")
    reveal.locator("[data-test=reveal-ack]").click()
    expect(reveal).to_be_hidden()


def test_audit_log_shows_the_store_creation(page: Page) -> None:
    login(page, "superadmin")
    code = f"AU{uuid.uuid4().hex[:6].upper()}"
    create_store(page, code, "审计测试店")
    page.goto("/audit-logs")
    # Found by who did it and the entity's name, not by ids; the action picked by its words.
    page.locator("[data-test=audit-actor]").fill("superadmin")
    page.locator("[data-test=audit-entity]").fill("审计测试店")
    page.locator("[data-test=audit-action]").click()
    page.keyboard.type("门店：新建")
    page.locator(".el-select-dropdown__item:visible", has_text="门店：新建").first.click()
    page.locator("[data-test=audit-entity]").press("Enter")
    table = page.locator("[data-test=audit-table]")
    expect(table.locator(".el-table__row")).to_have_count(1)
    # The action reads as words in the console's language; the code stays beside them.
    label = table.locator("[data-test=audit-action-label]").first
    expect(label).to_have_text("门店：新建")
    expect(label).to_have_attribute("title", "store.create")
    expect(table.locator("[data-test=audit-entity-label]").first).to_have_text("门店 审计测试店")
    table.locator(".el-table__row").first.click()
    detail = page.locator("[data-test=audit-detail]")
    expect(detail).to_be_visible()
    expect(detail).to_contain_text("store.create")
    changes = detail.locator("[data-test=audit-changes]")
    expect(changes).to_contain_text(code)
    expect(changes).to_contain_text("编号")  # the field in words, not "code"
    expect(changes).not_to_contain_text("opening_hours")
    expect(detail).to_contain_text("superadmin")
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()

    # The export carries the same filters and arrives as a spreadsheet.
    page.locator("[data-test=audit-export]").click()
    with page.expect_download() as download:
        page.get_by_text("导出 Excel").click()
    assert download.value.suggested_filename.endswith(".xlsx")
    saved = Path(download.value.path())
    assert saved.read_bytes()[:2] == b"PK"  # an xlsx is a zip


def test_an_unknown_address_says_the_page_does_not_exist(page: Page) -> None:
    login(page, "superadmin")
    page.goto("/no-such-page")
    result = page.locator("[data-test=page-notFound]")
    expect(result).to_contain_text("页面不存在")
    expect(result).not_to_contain_text("记录")
    result.get_by_role("button", name="返回首页").click()
    expect(page.locator("[data-test=welcome]")).to_be_visible()


def test_forced_password_change_before_anything_else(page: Page, server_url: str) -> None:
    """A user whose password an admin reset must choose a new one before using the console."""
    username = f"u{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=f"{server_url}/api/v1") as api:
        tokens = api.post(
            "/auth/login", json={"username": "superadmin", "password": LOGINS["superadmin"]}
        ).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        roles = api.get("/roles", headers=headers).json()["items"]
        cashier = next(r["id"] for r in roles if r["code"] == "cashier")
        stores = api.get("/stores", headers=headers).json()["items"]
        user = api.post(
            "/users",
            headers=headers,
            json={
                "username": username,
                "display_name": "张三",
                "password": "Start#2026x",
                "role_ids": [cashier],
                "store_ids": [stores[0]["id"]],
            },
        )
        assert user.status_code == 201, user.text
        reset = api.post(
            f"/users/{user.json()['id']}/reset-password",
            headers=headers,
            json={"new_password": "Reset#2026x"},
        )
        assert reset.status_code == 200, reset.text

    page.goto("/login")
    page.locator("[data-test=username]").fill(username)
    page.locator("[data-test=password]").fill("Reset#2026x")
    page.locator("[data-test=login-submit]").click()
    expect(page).to_have_url(re.compile(r"/password/required$"))
    page.goto("/stores")  # every other page sends them back
    expect(page).to_have_url(re.compile(r"/password/required$"))

    page.locator("[data-test=pw-current]").fill("Wrong#2026x")
    page.locator("[data-test=pw-new]").fill("Mine#2026xyz")
    page.locator("[data-test=pw-repeat]").fill("Mine#2026xyz")
    page.locator("[data-test=pw-submit]").click()
    expect(page.locator("[data-test=password-error]")).to_contain_text("当前密码不正确")

    page.locator("[data-test=pw-current]").fill("Reset#2026x")
    page.locator("[data-test=pw-submit]").click()
    expect(page.locator("[data-test=welcome]")).to_contain_text("张三")

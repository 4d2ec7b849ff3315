"""At 1440x900 (a common laptop) every list page shows each column header whole, on one line,
in Chinese and in English: no header cell is clipped (its text wider than the cell) or wrapped
(taller than one line), and no time in a row is cut or broken over two lines."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .conftest import VIEWPORT
from .test_console import login

pytestmark = pytest.mark.browser

LIST_PAGES = [
    "/products",
    "/tags",
    "/stores",
    "/terminals",
    "/inventory/stock",
    "/inventory/ledger",
    "/inventory/alerts",
    "/inventory/alert-routes",
    "/purchasing/suppliers",
    "/purchasing/orders",
    "/purchasing/reorder",
    "/purchasing/transfers",
    "/purchasing/stocktakes",
    "/orders",
    "/orders/issues",
    "/users",
    "/roles",
    "/login-logs",
    "/audit-logs",
    "/messages",
]

#: The header cells of the page's tables whose text does not fit: clipped or on two lines.
BAD_HEADERS = r"""
() => {
  const out = []
  for (const cell of document.querySelectorAll('.el-table th.el-table__cell .cell')) {
    const th = cell.closest('th')
    if (!cell.offsetParent || th.classList.contains('is-hidden')) continue
    const text = cell.textContent.trim()
    if (!text) continue
    const line = parseFloat(getComputedStyle(cell).lineHeight) || 23
    const clipped = cell.scrollWidth > cell.clientWidth + 1
    const wrapped = cell.clientHeight > line * 1.5
    if (clipped || wrapped) out.push(`${text} (${clipped ? 'clipped' : 'wrapped'})`)
  }
  // in the rows, nothing is cut off but text a column shortens on purpose (with an ellipsis
  // and a tooltip), and a time ("2026-12-06 10:23:45") is not broken over two lines either
  for (const cell of document.querySelectorAll('.el-table td.el-table__cell .cell')) {
    const text = cell.textContent.trim()
    if (!cell.offsetParent || !text || cell.classList.contains('el-tooltip')) continue
    const line = parseFloat(getComputedStyle(cell).lineHeight) || 23
    const time = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}/.test(text)
    if (cell.scrollWidth > cell.clientWidth + 1 || (time && cell.clientHeight > line * 1.5)) {
      out.push(`row cell ${text.slice(0, 40)} (cut)`)
    }
  }
  return [...new Set(out)]
}
"""


#: Each table's rows as wide as it shows them (a wider table scrolls sideways and hides columns
#: behind its fixed action column).
SCROLLS_SIDEWAYS = """
() => [...document.querySelectorAll('.el-table')].filter((t) => t.offsetParent).some((t) => {
  const w = t.querySelector('.el-table__body-wrapper .el-scrollbar__wrap')
  return w !== null && w.scrollWidth > w.clientWidth + 1
})
"""


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_no_list_page_clips_or_wraps_a_column_header(page: Page, locale: str) -> None:
    assert page.viewport_size == VIEWPORT
    login(page, "superadmin")
    page.evaluate("(l) => localStorage.setItem('selfmart.locale', l)", locale)
    problems: dict[str, list[str]] = {}
    for path in LIST_PAGES:
        page.goto(path)
        table = page.locator(".el-table").first
        expect(table).to_be_visible()
        expect(page.locator(".el-loading-mask")).to_have_count(0)
        page.wait_for_timeout(300)  # the table lays its columns out once the rows arrive
        bad = page.evaluate(BAD_HEADERS)
        if page.evaluate(SCROLLS_SIDEWAYS):
            bad.append("the table scrolls sideways")
        if bad:
            problems[path] = bad
    assert problems == {}, "\n".join(f"{path}: {bad}" for path, bad in problems.items())

"""The API docs page renders in a real browser under the app's own content-security policy,
from files the app serves itself (it was blank: the policy blocked Swagger UI's CDN files and
its inline start script)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, expect

pytestmark = pytest.mark.browser


def test_api_docs_render_from_the_app_under_its_strict_policy(
    context: BrowserContext, server_url: str
) -> None:
    # Record every CSP violation the page meets, from its first script on.
    context.add_init_script(
        "window.__csp = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    page = context.new_page()
    hosts: set[str] = set()
    errors: list[str] = []
    page.on("request", lambda r: hosts.add(urlsplit(r.url).netloc))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    response = page.goto("/api/docs")
    assert response is not None
    assert response.status == 200
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy  # no CDN, no inline scripts

    expect(page.locator(".swagger-ui .info .title")).to_contain_text("selfmart")
    health = page.locator('.opblock-summary-path[data-path="/api/health"]')
    expect(health).to_be_visible()
    assert page.locator(".opblock").count() > 50

    # The page can call the API it documents (connect-src 'self').
    health.click()
    page.locator(".try-out__btn").first.click()
    page.locator(".btn.execute").first.click()
    expect(page.locator(".live-responses-table tbody td.response-col_status").first).to_have_text(
        "200"
    )

    assert page.evaluate("window.__csp") == []
    assert [e for e in errors if "Content Security Policy" in e] == []
    assert hosts == {urlsplit(server_url).netloc}

"""Browser tests: the real server over a fresh migrated, demo-seeded SQLite file, driven by the
system Chromium through Playwright. Never downloads a browser."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    StorageState,
    ViewportSize,
    sync_playwright,
)

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
DIST = WEB / "dist"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
VIEWPORT: ViewportSize = {"width": 1440, "height": 900}

#: The demo logins (selfmart.demo.DEMO_LOGINS).
LOGINS = {
    "superadmin": "Super@2026",
    "admin": "Admin@2026",
    "cashier": "Cashier@2026",
}


def _newest_source_mtime() -> float:
    paths = [WEB / "index.html", WEB / "package.json", WEB / "vite.config.ts"]
    paths += [p for p in (WEB / "src").rglob("*") if p.is_file()]
    paths += [p for p in (WEB / "public").rglob("*") if p.is_file()]
    return max(p.stat().st_mtime for p in paths if p.exists())


@pytest.fixture(scope="session")
def console_dist() -> Path:
    """The built console; built here when missing or older than its sources."""
    index = DIST / "index.html"
    if index.is_file() and index.stat().st_mtime >= _newest_source_mtime():
        return DIST
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("the console is not built and npm is missing")
    if not (WEB / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=WEB, check=True)
    subprocess.run([npm, "run", "build"], cwd=WEB, check=True)
    return DIST


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def server_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("browser-server")


@pytest.fixture(scope="session")
def server_db_url(server_workdir: Path) -> str:
    """The served database, for tests that build their data with the test builders (SQLite
    takes a second writer beside the server)."""
    return f"sqlite+aiosqlite:///{server_workdir / 'selfmart.db'}"


@pytest.fixture(scope="session")
def server_url(console_dist: Path, server_workdir: Path, server_db_url: str) -> Iterator[str]:
    """`selfmart serve` on a free port over a fresh, migrated, demo-seeded SQLite database."""
    workdir = server_workdir
    port = _free_port()
    env = {
        **os.environ,
        "SELFMART_DATABASE_URL": server_db_url,
        "SELFMART_DEMO": "true",
        "SELFMART_STATIC_DIR": str(console_dist),
        "SELFMART_MEDIA_DIR": str(workdir / "media"),
        "SELFMART_BACKUP_DIR": str(workdir / "backups"),
        # The payment sandboxes keep their trades on disk: the checkout's var/sandbox would
        # carry every earlier session's into today's bills (hundreds of platform-only lines
        # for orders this fresh database never had).
        "SELFMART_PAYMENT_SANDBOX_DIR": str(workdir / "sandbox"),
        "SELFMART_LOG_LEVEL": "WARNING",
        # Links and the demo's payment channels (seed-demo points them at the payment
        # sandboxes this server serves) use the server's own address.
        "SELFMART_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        # Every browser test logs in from 127.0.0.1: the per-IP login limit (tested on its
        # own in tests/test_rate_limit.py) would refuse the suite's 21st login in a minute.
        "SELFMART_RATE_LIMITS": json.dumps(
            {"login": "1000/minute", "refresh": "1000/minute", "terminal_activate": "1000/minute"}
        ),
        # Likewise customers' order look-ups (10 a minute per IP; tests/orders test the limit):
        # the phone-page tests open several receipts from 127.0.0.1 within a minute.
        "SELFMART_ORDER_LOOKUP_PER_MINUTE": "1000",
    }
    cli = [sys.executable, "-m", "selfmart.cli"]
    for step in (["migrate"], ["seed-demo"]):
        subprocess.run([*cli, *step], env=env, cwd=workdir, check=True, capture_output=True)
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen(
        [*cli, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited early:\n{(workdir / 'server.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("server did not answer /api/health within 60 s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def playwright_session() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_session: Playwright) -> Iterator[Browser]:
    b = playwright_session.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture
def context(browser: Browser, server_url: str) -> Iterator[BrowserContext]:
    # Each test starts in Chinese, whatever language a profile was left in by another test.
    chinese: StorageState = {
        "cookies": [],
        "origins": [
            {"origin": server_url, "localStorage": [{"name": "selfmart.locale", "value": "zh-CN"}]}
        ],
    }
    ctx = browser.new_context(
        base_url=server_url,
        viewport=VIEWPORT,
        locale="zh-CN",
        accept_downloads=True,
        storage_state=chinese,
    )
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()

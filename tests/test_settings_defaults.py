"""Settings that follow others: the public base URL is where this server listens unless set,
so running on another port (SELFMART_PORT=8300) moves the receipt links, notify URLs and the
demo's payment and SMS sandboxes with it (they were left pointing at port 8000)."""

from __future__ import annotations

import pytest

from selfmart.config import Settings


def test_public_base_url_follows_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SELFMART_PUBLIC_BASE_URL", raising=False)
    monkeypatch.setenv("SELFMART_PORT", "8300")
    assert Settings().public_base_url == "http://127.0.0.1:8300"
    assert Settings().sms_url == "http://127.0.0.1:8300/sandbox/sms/"
    assert Settings(host="0.0.0.0").public_base_url == "http://127.0.0.1:8300"
    assert Settings(host="10.0.0.5", port=9000).public_base_url == "http://10.0.0.5:9000"
    assert Settings(host="::1", port=9000).public_base_url == "http://[::1]:9000"


def test_a_public_base_url_that_is_set_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFMART_PORT", "8300")
    monkeypatch.setenv("SELFMART_PUBLIC_BASE_URL", "https://shop.example.cn")
    assert Settings().public_base_url == "https://shop.example.cn"
    assert Settings().sms_url == "https://shop.example.cn/sandbox/sms/"

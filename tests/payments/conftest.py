"""The core's end-to-end tests drive the real WeChat Pay sandbox over HTTP (the sandbox is the
test double): one server for the session, emptied before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from selfmart.models import PaymentAccount
from selfmart.payments import accounts
from selfmart.payments.platform import PlatformAccount
from tests.payments.wechatpay.support import Sandbox, fresh, serve


@pytest.fixture(scope="session")
def core_wechat_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    yield from serve(tmp_path_factory.mktemp("core-wechatpay-sandbox"))


@pytest.fixture
def wechat(core_wechat_sandbox: Sandbox) -> Sandbox:
    return fresh(core_wechat_sandbox)


@pytest.fixture
def openings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ids of the merchant accounts opened (`accounts.open_platform`) from now on; a test
    clears it where its counting starts."""
    opened: list[int] = []
    real = accounts.open_platform

    def counting(account: PaymentAccount) -> PlatformAccount:
        opened.append(account.id)
        return real(account)

    monkeypatch.setattr(accounts, "open_platform", counting)
    return opened

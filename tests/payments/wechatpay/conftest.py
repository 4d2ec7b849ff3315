"""One WeChat Pay sandbox served over HTTP for the session; each test starts it empty."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.payments.wechatpay.support import Sandbox, fresh, serve


@pytest.fixture(scope="session")
def wechat_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    yield from serve(tmp_path_factory.mktemp("wechatpay-sandbox"))


@pytest.fixture
def wx(wechat_sandbox: Sandbox) -> Sandbox:
    return fresh(wechat_sandbox)

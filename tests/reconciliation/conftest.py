"""Reconciliation tests drive the real WeChat Pay sandbox over HTTP: payments go through it,
and its bill files are what we reconcile."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.payments.wechatpay.support import Sandbox, fresh, serve


@pytest.fixture(scope="session")
def rec_wechat_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    yield from serve(tmp_path_factory.mktemp("reconciliation-wechatpay-sandbox"))


@pytest.fixture
def wechat(rec_wechat_sandbox: Sandbox) -> Sandbox:
    return fresh(rec_wechat_sandbox)

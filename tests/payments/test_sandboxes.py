"""`selfmart sandbox credentials` prints every sandbox's merchant credentials; the demo chain's
channels are configured against the sandboxes (idempotently, never over a person's settings),
and the test button proves each one against the running sandbox with the stored keys."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart import cli
from selfmart.config import Settings
from selfmart.models import PaymentAccount
from selfmart.payments import accounts
from selfmart.payments.sandboxes import configure_demo
from tests.builders import auth_headers, make_user
from tests.payments.builders import make_payment_account
from tests.payments.wechatpay.support import Sandbox

KEYS = {
    "base_url",
    "merchant_id",
    "app_id",
    "merchant_private_key",
    "merchant_key_id",
    "platform_public_key",
    "platform_public_key_id",
    "test_auth_codes",
}


def test_the_cli_prints_all_three(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(payment_sandbox_dir=tmp_path, public_base_url="http://shop.example")
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    result = CliRunner().invoke(cli.main, ["sandbox", "credentials"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert set(printed) == {"wechat", "alipay", "unionpay"}
    for name, creds in printed.items():
        assert KEYS <= set(creds), name
        assert creds["base_url"].startswith("http://shop.example/sandbox/"), name
        assert "PRIVATE KEY" in creds["merchant_private_key"], name
        codes = creds["test_auth_codes"]
        assert set(codes) == {
            "success", "user_paying", "declined", "insufficient_funds", "timeout",
        }, name  # fmt: skip
        assert len(set(codes.values())) == 5, name  # each outcome its own code
        assert all(c.isdigit() for c in codes.values()), name
    assert len(printed["wechat"]["api_v3_key"]) == 32
    # The keys are generated once and kept: a second run prints the same merchant.
    again = json.loads(CliRunner().invoke(cli.main, ["sandbox", "credentials"]).output)
    assert again == printed


async def test_the_demo_channels_work_against_the_sandboxes(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    assert sorted(await configure_demo(session, wechat.settings)) == ["alipay", "card", "wechat"]
    assert await configure_demo(session, wechat.settings) == []  # idempotent
    rows = (await session.scalars(select(PaymentAccount).order_by(PaymentAccount.channel))).all()
    assert [(a.channel, a.store_id) for a in rows] == [
        ("alipay", None),
        ("card", None),
        ("wechat", None),
    ]
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    for account in rows:
        assert accounts.config_of(account).private_key_pem.startswith("-----BEGIN")
        r = await client.post(f"/api/v1/payment-accounts/{account.id}/test", headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["ok"] is True, (account.channel, r.json())


async def test_the_test_button_says_when_the_keys_are_wrong(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    # Our own generated keys, not the ones the sandbox merchant registered.
    account = await make_payment_account(
        session, None, "wechat", base_url=wechat.credentials()["base_url"]
    )
    account.merchant_id = wechat.credentials()["merchant_id"]
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.post(f"/api/v1/payment-accounts/{account.id}/test", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is False
    assert r.json()["message"]


async def test_a_chain_account_a_person_set_is_kept(session: AsyncSession, wechat: Sandbox) -> None:
    mine = await make_payment_account(session, None, "wechat")
    assert "wechat" not in await configure_demo(session, wechat.settings)
    await session.refresh(mine)
    assert mine.base_url == "https://api.mch.weixin.qq.com"

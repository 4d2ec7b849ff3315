"""Builders for the payments domain: merchant accounts with real (generated) RSA keys."""

from __future__ import annotations

from functools import lru_cache

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.crypto import Keyring
from selfmart.models import PaymentAccount, Store
from selfmart.payments import accounts, sandboxes
from tests.payments.wechatpay.support import Sandbox

API_V3_KEY = "0123456789abcdefghijklmnopqrstuv"


@lru_cache(maxsize=4)
def rsa_pair(name: str = "merchant") -> tuple[str, str]:
    """(private PKCS#8 PEM, public SPKI PEM), generated once per name per run."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


async def make_payment_account(
    session: AsyncSession,
    store: Store | None,
    channel: str = "wechat",
    *,
    enabled: bool = True,
    base_url: str = "https://api.mch.weixin.qq.com",
    keys: Keyring | None = None,
) -> PaymentAccount:
    private, _ = rsa_pair("merchant")
    _, platform_public = rsa_pair("platform")
    account = PaymentAccount(
        store_id=store.id if store is not None else None,
        channel=channel,
        enabled=enabled,
        base_url=base_url,
        merchant_id="1900000109",
        app_id="wxd678efh567hg6787",
        private_key_id="5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
        private_key_encrypted="",
        platform_public_keys={"PUB_KEY_ID_0114232134912410000000000001": platform_public},
        key_version="",
    )
    session.add(account)
    await session.flush()
    accounts.seal_secrets(account, private, API_V3_KEY if channel == "wechat" else None, keys)
    await session.flush()
    return account


async def sandbox_account(
    session: AsyncSession,
    store: Store | None,
    credentials: dict[str, object],
    *,
    notify_url: str | None = None,
    auto_refund_duplicates: bool = False,
    with_app_secret: bool = False,
) -> PaymentAccount:
    """A WeChat Pay account configured against our sandbox, as a person would enter it
    (`with_app_secret`: with the official account's AppSecret, for JSAPI)."""
    account = PaymentAccount(
        store_id=store.id if store is not None else None,
        channel="wechat",
        base_url=str(credentials["base_url"]),
        merchant_id=str(credentials["merchant_id"]),
        app_id=str(credentials["app_id"]),
        private_key_id=str(credentials["merchant_key_id"]),
        private_key_encrypted="",
        platform_public_keys={
            str(credentials["platform_public_key_id"]): str(credentials["platform_public_key"])
        },
        notify_url=notify_url,
        auto_refund_duplicates=auto_refund_duplicates,
        key_version="",
    )
    session.add(account)
    await session.flush()
    accounts.seal_secrets(
        account,
        str(credentials["merchant_private_key"]),
        str(credentials["api_v3_key"]),
        secret=str(credentials["app_secret"]) if with_app_secret else None,
    )
    await session.flush()
    return account


#: the path under /sandbox/ of each channel's sandbox
SANDBOX_PATHS = {"wechat": "wechatpay", "alipay": "alipay", "card": "unionpay"}


async def demo_sandbox_account(
    session: AsyncSession, wechat: Sandbox, channel: str, *, reset: bool = True
) -> PaymentAccount:
    """The chain's account of `channel` as `seed-demo` configures it against the sandboxes the
    test server serves (`wechat`'s server serves all three), that sandbox emptied first
    (WeChat's is emptied by its fixture)."""
    if reset and channel != "wechat":
        async with httpx.AsyncClient(timeout=60) as http:
            r = await http.post(f"{wechat.url}/sandbox/{SANDBOX_PATHS[channel]}/_control/reset")
        assert r.status_code in (200, 204), r.text
    await sandboxes.configure_demo(session, wechat.settings)
    account = await session.scalar(
        select(PaymentAccount).where(
            PaymentAccount.channel == channel, PaymentAccount.store_id.is_(None)
        )
    )
    assert account is not None
    return account

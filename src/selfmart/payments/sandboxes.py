"""Our payment sandboxes as a merchant sees them: their credentials (`selfmart sandbox
credentials`) and the demo chain's channel settings configured against them, so `make run`
takes payments with no outside account."""

from __future__ import annotations

import importlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.config import Settings
from selfmart.models import PaymentAccount
from selfmart.payments import accounts

#: channel code -> the sandbox module (selfmart.sandbox.<name>) that plays its platform
SANDBOXES = {"wechat": "wechatpay", "alipay": "alipay", "card": "unionpay"}
#: the names `selfmart sandbox credentials` prints them under
PRINTED = {"wechat": "wechat", "alipay": "alipay", "card": "unionpay"}


def _modules() -> dict[str, Any]:
    """Each sandbox package this server has, by channel code."""
    out: dict[str, Any] = {}
    for channel, name in SANDBOXES.items():
        try:
            out[channel] = importlib.import_module(f"selfmart.sandbox.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"selfmart.sandbox.{name}":
                raise
    return out


def credentials(settings: Settings) -> dict[str, dict[str, Any]]:
    """Each sandbox's `credentials(settings)` by channel code (the sandboxes this server has)."""
    return {channel: module.credentials(settings) for channel, module in _modules().items()}


def fee_rates() -> dict[str, int]:
    """Each sandbox merchant's fee rate in basis points by channel code: what its bills charge,
    so that reconciliation's fee check has the rate to hold them to."""
    return {channel: int(module.FEE_RATE_BP) for channel, module in _modules().items()}


def printed(settings: Settings) -> dict[str, dict[str, Any]]:
    """`{"wechat": ..., "alipay": ..., "unionpay": ...}`."""
    return {PRINTED[c]: creds for c, creds in credentials(settings).items()}


def _extra(channel: str, creds: dict[str, Any]) -> dict[str, str]:
    if channel == "alipay":
        return {"sign_type": str(creds.get("sign_type", "RSA2"))}
    if channel == "card":
        return {
            "encrypt_cert": str(creds.get("encrypt_certificate", "")),
            "encrypt_cert_id": str(creds.get("encrypt_cert_id", "")),
        }
    return {}


async def configure_demo(session: AsyncSession, settings: Settings) -> list[str]:
    """Chain-wide accounts for every sandbox, unless the chain already has one for the channel
    (idempotent; a person's own settings are never overwritten). Returns the channels set."""
    done: list[str] = []
    for channel, creds in credentials(settings).items():
        exists = await session.scalar(
            select(PaymentAccount.id).where(
                PaymentAccount.store_id.is_(None), PaymentAccount.channel == channel
            )
        )
        if exists is not None:
            continue
        account = PaymentAccount(
            store_id=None,
            channel=channel,
            name=f"{PRINTED[channel]} sandbox",
            base_url=str(creds["base_url"]),
            merchant_id=str(creds["merchant_id"]),
            app_id=str(creds.get("app_id") or ""),
            private_key_id=str(creds.get("merchant_key_id") or ""),
            private_key_encrypted="",
            platform_public_keys={
                str(creds.get("platform_public_key_id") or ""): str(creds["platform_public_key"])
            },
            extra=_extra(channel, creds),
            key_version="",
        )
        session.add(account)
        await session.flush()
        accounts.seal_secrets(
            account,
            str(creds["merchant_private_key"]),
            creds.get("api_v3_key") or None,
            secret=creds.get("app_secret") or None,
        )
        await session.flush()
        done.append(channel)
    return done

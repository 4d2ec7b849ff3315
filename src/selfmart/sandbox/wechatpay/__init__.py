"""Our sandbox of WeChat Pay API v3 (direct merchant), mounted at `/sandbox/wechatpay`.

It speaks the platform's protocol (paths, headers, signatures, AEAD callbacks, status codes,
error bodies, bill files) with its own keys, so our account and unmodified third-party clients
work against it with nothing changed but the base URL. See docs/payments.md.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from selfmart.config import Settings
from selfmart.payments.wechatpay import protocol as wx
from selfmart.sandbox.wechatpay import api, bills, control, oauth
from selfmart.sandbox.wechatpay.keys import load
from selfmart.sandbox.wechatpay.state import STATE


def _bind(request: Request) -> None:
    """Every sandbox route works on the trades kept under the configured directory."""
    settings: Settings = request.app.state.settings
    STATE.bind(settings.payment_sandbox_dir / "wechatpay")


router = APIRouter(include_in_schema=False, dependencies=[Depends(_bind)])
router.include_router(control.router, prefix="/_control")
router.include_router(api.router)
router.include_router(bills.router)
router.include_router(oauth.router)
# last, so that only what no route above matched falls through to it
router.add_api_route(
    "/v3/{rest:path}",
    api.unknown_path,
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)

#: the sandbox merchant's fee rate in basis points (what its bills charge)
FEE_RATE_BP = bills.FEE_RATE_BP

__all__ = ["FEE_RATE_BP", "STATE", "credentials", "router"]


def credentials(settings: Settings) -> dict[str, Any]:
    """The sandbox merchant, as a merchant would copy it from the merchant platform."""
    keys = load(settings.payment_sandbox_dir)
    return {
        "base_url": settings.public_base_url.rstrip("/") + "/sandbox/wechatpay",
        "merchant_id": keys.mchid,
        "app_id": keys.appid,
        # the official account's AppSecret (web authorisation, JSAPI payments)
        "app_secret": oauth.app_secret(keys),
        "merchant_private_key": wx.private_key_pem(keys.merchant_key),
        "merchant_key_id": keys.merchant_serial,
        "platform_public_key": keys.public_key.public_pem,
        "platform_public_key_id": keys.public_key.key_id,
        "api_v3_key": keys.api_v3_key,
        # certificate mode (clients that download /v3/certificates) instead of the public key
        "platform_certificate": keys.certificate.pem,
        "platform_certificate_serial": keys.certificate.serial,
        "test_auth_codes": dict(api.TEST_AUTH_CODES),
    }

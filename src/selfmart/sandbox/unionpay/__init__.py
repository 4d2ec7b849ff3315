"""Our sandbox of the UnionPay ACP 5.1.0 gateway, mounted at /sandbox/unionpay.

`/gateway/api/*.do` speak the real protocol (`gateway.py`); `/_control/...` is the sandbox's
own control API (`control.py`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from selfmart.config import Settings
from selfmart.sandbox.unionpay import control, gateway
from selfmart.sandbox.unionpay.state import TEST_CARDS, sandbox_for

router = APIRouter(include_in_schema=False)
router.include_router(gateway.router)
router.include_router(control.router)


#: the sandbox merchant's fee rate in basis points (what its bills charge)
FEE_RATE_BP = gateway.FEE_RATE_BP


def credentials(settings: Settings) -> dict[str, Any]:
    """What a merchant configures to use the sandbox (see platform.py's ChannelConfig):
    the platform key is the gateway's signing certificate (PEM) under its certId; the
    encryption certificate for card numbers goes in the channel's extra settings."""
    sandbox = sandbox_for(settings)
    return {
        "base_url": settings.public_base_url.rstrip("/") + "/sandbox/unionpay",
        "merchant_id": sandbox.mer_id,
        "app_id": "",
        "merchant_private_key": sandbox.merchant_key,
        "merchant_certificate": sandbox.merchant_cert,
        "merchant_key_id": sandbox.merchant_cert_id,
        "platform_public_key": sandbox.sign_cert,
        "platform_public_key_id": sandbox.sign_cert_id,
        "encrypt_certificate": sandbox.encrypt_cert,
        "encrypt_cert_id": sandbox.encrypt_cert_id,
        "test_auth_codes": dict(TEST_CARDS),
    }

"""Our sandbox of the Alipay open platform gateway, mounted at /sandbox/alipay.

`/gateway.do` speaks the real protocol (see `gateway.py`), `/downloadBillFile.resource`
serves bill zips, `/_control/...` is the sandbox's own control API (`control.py`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from selfmart.config import Settings
from selfmart.sandbox.alipay import control, gateway
from selfmart.sandbox.alipay.state import TEST_AUTH_CODES, sandbox_for

router = APIRouter(include_in_schema=False)
router.include_router(gateway.router)
router.include_router(control.router)


#: the sandbox merchant's fee rate in basis points (what its bills charge)
FEE_RATE_BP = gateway.FEE_RATE_BP


def credentials(settings: Settings) -> dict[str, Any]:
    """What a merchant configures to use the sandbox (see platform.py's ChannelConfig)."""
    sandbox = sandbox_for(settings)
    return {
        "base_url": settings.public_base_url.rstrip("/") + gateway.PREFIX,
        "gateway_url": settings.public_base_url.rstrip("/") + gateway.PREFIX + "/gateway.do",
        "merchant_id": sandbox.pid,
        "app_id": sandbox.app_id,
        "merchant_private_key": sandbox.app_private_key,
        "merchant_public_key": sandbox.app_public_key,
        "merchant_key_id": "",
        "platform_public_key": sandbox.alipay_public_key,
        "platform_public_key_id": "",
        "sign_type": "RSA2",
        "test_auth_codes": dict(TEST_AUTH_CODES),
    }

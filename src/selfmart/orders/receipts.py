"""Signed receipt links: the QR code on a receipt opens the order's status page.

A token is the order id and an expiry day, with an HMAC (keyed from SELFMART_SECRET_KEY) over
both: it cannot be forged or pointed at another order, and says nothing until verified.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from datetime import datetime, timedelta
from functools import lru_cache

from selfmart.config import get_settings
from selfmart.kit.time import utcnow

_MAC_BYTES = 16
_DAY = 86_400


def _key() -> bytes:
    return _derive(get_settings().secret_key.get_secret_value())


@lru_cache(maxsize=4)
def _derive(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"selfmart.orders.receipt-link.v1", hashlib.sha256).digest()


def make_token(order_id: int, *, now: datetime | None = None) -> str:
    now = now or utcnow()
    expires = now + timedelta(days=get_settings().receipt_link_ttl_days)
    payload = struct.pack(">QI", order_id, int(expires.timestamp()) // _DAY)
    mac = hmac.new(_key(), payload, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(payload + mac).decode().rstrip("=")


def read_token(token: str, *, now: datetime | None = None) -> int | None:
    """The order id a genuine, unexpired token names; None for anything else."""
    if not 20 <= len(token) <= 64:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        return None
    if len(raw) != 12 + _MAC_BYTES:
        return None
    payload, mac = raw[:12], raw[12:]
    expected = hmac.new(_key(), payload, hashlib.sha256).digest()[:_MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        return None
    order_id, expiry_day = struct.unpack(">QI", payload)
    if (now or utcnow()).timestamp() // _DAY > expiry_day:
        return None
    return int(order_id)


def receipt_url(order_id: int) -> str:
    base = get_settings().public_base_url.rstrip("/")
    return f"{base}/r/{make_token(order_id)}"

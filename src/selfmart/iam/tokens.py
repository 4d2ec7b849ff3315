"""Access tokens (short-lived JWT naming the session) and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

import jwt

from selfmart.config import get_settings
from selfmart.kit.time import utcnow

ALGORITHM = "HS256"


def issue_access_token(user_id: int, session_id: str, now: datetime | None = None) -> str:
    settings = get_settings()
    now = now or utcnow()
    claims = {
        "sub": str(user_id),
        "sid": session_id,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=settings.access_token_ttl_seconds)).timestamp()),
        "typ": "access",
    }
    return jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm=ALGORITHM)


def decode_access_token(token: str) -> dict[str, Any] | None:
    try:
        claims: dict[str, Any] = jwt.decode(
            token, get_settings().secret_key.get_secret_value(), algorithms=[ALGORITHM]
        )
    except jwt.PyJWTError:
        return None
    if claims.get("typ") != "access":
        return None
    return claims


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

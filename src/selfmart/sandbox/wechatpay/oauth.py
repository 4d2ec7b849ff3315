"""The sandbox's WeChat official-account web authorisation (网页授权, OAuth 2.0), as WeChat
defines it: `GET /connect/oauth2/authorize` (open.weixin.qq.com) redirects the browser back with
a one-use `code`, and `GET /sns/oauth2/access_token` (api.weixin.qq.com) exchanges it for the
customer's `openid`. Both are served below the sandbox's base URL; see docs/payments.md."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from selfmart.kit.time import utcnow
from selfmart.sandbox.control import settings_of
from selfmart.sandbox.wechatpay.keys import SandboxKeys, load

router = APIRouter(include_in_schema=False)

#: A code is good once, for five minutes (WeChat's rule).
CODE_LIFETIME = timedelta(minutes=5)
SCOPES = ("snsapi_base", "snsapi_userinfo")


def app_secret(keys: SandboxKeys) -> str:
    """The official account's AppSecret (32 hex characters), derived from the sandbox's keys
    so an existing sandbox directory has one too."""
    return hmac.new(keys.api_v3_key.encode(), b"official-account-secret", "sha256").hexdigest()[:32]


def customer_openid(keys: SandboxKeys) -> str:
    """The sandbox customer's openid under the sandbox app id (28 characters, as WeChat's)."""
    digest = hmac.new(keys.appid.encode(), b"sandbox-customer", hashlib.sha256).digest()
    return "o" + base64.urlsafe_b64encode(digest).decode()[:27]


@dataclass(slots=True)
class _Code:
    openid: str
    scope: str
    issued_at: datetime
    used: bool = False


_LOCK = threading.Lock()
_CODES: dict[str, _Code] = {}


def reset() -> None:
    with _LOCK:
        _CODES.clear()


def _error(errcode: int, errmsg: str) -> JSONResponse:
    # WeChat answers errors with HTTP 200 and errcode/errmsg; `rid` identifies the request
    rid = f"{secrets.token_hex(4)}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"
    return JSONResponse({"errcode": errcode, "errmsg": f"{errmsg}, rid: {rid}"})


def _refuse_page(message: str) -> HTMLResponse:
    # what WeChat's browser shows for a bad authorisation link
    return HTMLResponse(
        "<!doctype html><html><head><meta charset='utf-8'><title>微信网页授权</title></head>"
        f"<body><p>{message}</p></body></html>",
        status_code=400,
    )


@router.get("/connect/oauth2/authorize")
async def authorize(
    request: Request,
    appid: str = "",
    redirect_uri: str = "",
    response_type: str = "",
    scope: str = "",
    state: str = "",
) -> Response:
    """The customer agrees (snsapi_base asks nothing): back to `redirect_uri` with `code` and
    `state`."""
    keys = load(settings_of(request).payment_sandbox_dir)
    if appid != keys.appid:
        return _refuse_page("appid 参数错误")
    if response_type != "code":
        return _refuse_page("response_type 参数错误")
    if scope not in SCOPES:
        return _refuse_page("scope 参数错误")
    parts = urlsplit(redirect_uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return _refuse_page("redirect_uri 参数错误")
    if len(state) > 128:
        return _refuse_page("state 参数错误")
    code = secrets.token_hex(16)
    with _LOCK:
        now = utcnow()
        for stale in [k for k, c in _CODES.items() if now - c.issued_at > CODE_LIFETIME * 2]:
            del _CODES[stale]
        _CODES[code] = _Code(openid=customer_openid(keys), scope=scope, issued_at=now)
    query = [*parse_qsl(parts.query, keep_blank_values=True), ("code", code), ("state", state)]
    target = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
    return RedirectResponse(target, status_code=302)


@router.get("/sns/oauth2/access_token")
async def access_token(
    request: Request, appid: str = "", secret: str = "", code: str = "", grant_type: str = ""
) -> Response:
    """Exchange a code for the customer's openid (and a web access token)."""
    keys = load(settings_of(request).payment_sandbox_dir)
    if appid != keys.appid:
        return _error(40013, "invalid appid")
    if not hmac.compare_digest(secret.encode(), app_secret(keys).encode()):
        return _error(40125, "invalid appsecret")
    if grant_type != "authorization_code":
        return _error(40002, "invalid grant_type")
    with _LOCK:
        held = _CODES.get(code)
        if held is None or utcnow() - held.issued_at > CODE_LIFETIME:
            return _error(40029, "invalid code")
        if held.used:
            return _error(40163, "code been used")
        held.used = True
    body: dict[str, Any] = {
        "access_token": secrets.token_urlsafe(48),
        "expires_in": 7200,
        "refresh_token": secrets.token_urlsafe(48),
        "openid": held.openid,
        "scope": held.scope,
    }
    return JSONResponse(body)

"""Paying inside WeChat from the phone page (JSAPI).

The page opened in WeChat's browser (User-Agent `MicroMessenger`) sends the customer through
WeChat's web authorisation (`snsapi_base`, no consent screen) when the store's WeChat account
holds the official account's AppSecret; WeChat comes back to the page with a one-use `code`,
which we exchange for the payer's `openid`, create a JSAPI prepay with it, and answer the
signed parameters of `WeixinJSBridge.invoke('getBrandWCPayRequest', …)`. Elsewhere the page
keeps H5. See docs/payments.md ("Paying from the customer's page").

The code is spent by its exchange, so the answer also carries `payer_token`: the openid sealed
(AES-GCM under the server's secret key) for this order and this WeChat app, valid `PAYER_TTL`.
The page keeps it for its session and pays again with it (a payment refused or given up on
the sheet) without a new authorisation round.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.config import get_settings
from selfmart.kit.crypto import Keyring, SecretBox, SecretUnreadable
from selfmart.kit.time import utcnow
from selfmart.models import Order, Payment
from selfmart.payments import accounts
from selfmart.payments.exceptions import OAuthCodeRefused, PayerTokenRefused, WechatUnreachable
from selfmart.payments.platform import PlatformError
from selfmart.payments.wechatpay.account import WechatPayAccount

#: The `state` the page's authorisation link carries (WeChat hands it back unchanged).
OAUTH_STATE = "selfmart-jsapi"
#: How long the page may pay again with the payer it learned, without authorising again.
PAYER_TTL = timedelta(hours=2)
_PAYER_BOX = SecretBox(salt=b"selfmart.payments.jsapi", purpose=b"payer-openid-v1")


def in_wechat(user_agent: str | None) -> bool:
    """WeChat's built-in browser says so in its User-Agent."""
    return "micromessenger" in (user_agent or "").lower()


async def _account(session: AsyncSession, store_id: int) -> WechatPayAccount | None:
    """The store's WeChat account when it can do web authorisation (an AppSecret is set)."""
    account = await accounts.for_store(session, store_id, "wechat")
    if account is None or account.app_secret_encrypted is None:
        return None
    remote = accounts.open_platform(account)
    if not isinstance(remote, WechatPayAccount) or not remote.config.app_secret:
        return None
    return remote


async def oauth_url(session: AsyncSession, order: Order, redirect_uri: str) -> str | None:
    """Where the page inside WeChat goes to learn the payer's openid, or None (H5 then)."""
    remote = await _account(session, order.store_id)
    return None if remote is None else remote.authorize_url(redirect_uri, OAUTH_STATE)


async def attempt_exists(session: AsyncSession, order_id: int, attempt_id: str) -> bool:
    found = await session.scalar(
        select(Payment.id).where(Payment.order_id == order_id, Payment.attempt_id == attempt_id)
    )
    return found is not None


async def openid_for(session: AsyncSession, order: Order, code: str) -> str:
    """The payer's openid for the authorisation `code`; a refused code is a 422 on
    `oauth_code` with WeChat's errcode as the reason."""
    remote = await _account(session, order.store_id)
    if remote is None:
        raise OAuthCodeRefused(
            "This store's WeChat account has no official account AppSecret", field="oauth_code"
        )
    try:
        return await remote.openid_for(code)
    except PlatformError as exc:
        if exc.code.startswith("oauth_"):
            raise OAuthCodeRefused(
                f"{OAuthCodeRefused.message} ({exc.code.removeprefix('oauth_')}: {exc})",
                field="oauth_code",
            ) from None
        raise WechatUnreachable() from None


def _payer_aad(order: Order, remote: WechatPayAccount) -> str:
    return f"order:{order.id}:app:{remote.config.app_id}"


async def seal_payer(session: AsyncSession, order: Order, openid: str) -> str | None:
    """The `payer_token` the page keeps to pay this order again as this payer."""
    remote = await _account(session, order.store_id)
    if remote is None:
        return None
    expires = int((utcnow() + PAYER_TTL).timestamp())
    keys = Keyring.from_settings(get_settings())
    return _PAYER_BOX.seal(f"{expires}:{openid}", aad=_payer_aad(order, remote), keys=keys)


async def open_payer(session: AsyncSession, order: Order, token: str) -> str:
    """The openid a genuine, unexpired `payer_token` of this order (and the store's current
    WeChat app) holds; anything else is a 422 on `payer_token` (the page authorises again)."""
    remote = await _account(session, order.store_id)
    if remote is None:
        raise PayerTokenRefused(field="payer_token")
    keys = Keyring.from_settings(get_settings())
    try:
        plain = _PAYER_BOX.open(token, aad=_payer_aad(order, remote), keys=keys)
    except SecretUnreadable:
        raise PayerTokenRefused(field="payer_token") from None
    expires, _, openid = plain.partition(":")
    if not openid or not expires.isdigit() or int(expires) < utcnow().timestamp():
        raise PayerTokenRefused(field="payer_token")
    return openid


async def bridge_params(
    session: AsyncSession, order: Order, prepay_id: str
) -> dict[str, str] | None:
    """`getBrandWCPayRequest`'s parameters for a pending JSAPI attempt (fresh nonce and time,
    signed with the merchant key)."""
    remote = await _account(session, order.store_id)
    return None if remote is None else remote.jsapi_params(prepay_id)

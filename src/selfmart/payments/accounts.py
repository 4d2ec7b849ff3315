"""Channel settings: the merchant accounts on WeChat Pay, Alipay and UnionPay.

A chain-wide account (no store) serves every store that has none of its own; a store's own
account overrides it, and a disabled store account switches the channel off for that store.
Secrets are sealed at rest (`kit.crypto`) and never leave this module except as the
`ChannelConfig` a platform account is opened with: not in answers, logs or the audit trail.
"""

from __future__ import annotations

import importlib
import secrets
import time
from collections import OrderedDict
from typing import Any

import httpx
from sqlalchemy import Select, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.config import get_settings
from selfmart.errors import AlreadyExists, Conflict, Forbidden, NotFound, ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.kit.crypto import Keyring, SecretBox, SecretUnreadable, mask
from selfmart.kit.time import utcnow
from selfmart.models import PaymentAccount
from selfmart.payments import platform
from selfmart.payments.platform import ChannelConfig, PlatformAccount, PlatformError
from selfmart.payments.schemas import (
    PaymentAccountCreate,
    PaymentAccountRead,
    PaymentAccountTest,
    PaymentAccountUpdate,
    PlatformKeyRead,
    fingerprint,
    load_private_key,
    load_public_key,
)
from selfmart.stores import service as stores

_BOX = SecretBox(b"selfmart.payments", b"payment-account-secrets-v1")

#: What the audit trail compares (no secret: a changed key shows as its fingerprint).
AUDITED = (
    "store_id",
    "channel",
    "name",
    "enabled",
    "base_url",
    "merchant_id",
    "app_id",
    "private_key_id",
    "notify_url",
    "extra",
    "auto_refund_duplicates",
)

#: Platform codes meaning "no such payment" — the answer a test query expects when the
#: keys are right (WeChat, Alipay, UnionPay).
NOT_FOUND_CODES = frozenset({"ORDER_NOT_EXIST", "ORDERNOTEXIST", "ACQ.TRADE_NOT_EXIST", "34"})


class PaymentAccountNotFound(NotFound):
    code, message = "payment_account_not_found", "No such payment account"


class ChainAccountForbidden(Forbidden):
    code, message = (
        "chain_account_forbidden",
        "Only a user of every store may change the chain's payment accounts",
    )


class PlatformUnavailable(Conflict):
    code, message = (
        "payment_platform_unavailable",
        "This server has no implementation of that payment platform",
    )


class SecretsUnreadable(Conflict):
    code, message = (
        "payment_account_unreadable",
        "The account's keys do not decrypt with this server's secret key; enter them again",
    )


def _keys() -> Keyring:
    return Keyring.from_settings(get_settings())


def _aad(account_id: int, what: str) -> str:
    return f"payment_account/{account_id}/{what}"


def scoped(stmt: Select[Any], actor: Actor) -> Select[Any]:
    """Accounts `actor` may see: the chain's and those of the actor's stores."""
    if actor.store_ids is not None:
        stmt = stmt.where(
            or_(PaymentAccount.store_id.is_(None), PaymentAccount.store_id.in_(actor.store_ids))
        )
    return stmt


async def get_account(
    session: AsyncSession, account_id: int, *, actor: Actor, for_update: bool = False
) -> PaymentAccount:
    stmt = scoped(select(PaymentAccount).where(PaymentAccount.id == account_id), actor)
    if for_update:
        stmt = stmt.with_for_update()
    account: PaymentAccount | None = await session.scalar(stmt)
    if account is None:
        raise PaymentAccountNotFound(f"No payment account {account_id}")
    return account


def _may_change(account_store_id: int | None, actor: Actor) -> None:
    if account_store_id is None and actor.store_ids is not None:
        raise ChainAccountForbidden()


def default_notify_url(channel: str, account_id: int) -> str:
    base = get_settings().public_base_url.rstrip("/")
    return f"{base}/api/payments/notify/{channel}/{account_id}"


def notify_url_of(account: PaymentAccount) -> str:
    return account.notify_url or default_notify_url(account.channel, account.id)


def read(account: PaymentAccount) -> PaymentAccountRead:
    """The account as an answer shows it: secrets masked, keys as fingerprints."""
    keys = _keys()
    try:
        private_fp: str | None = fingerprint(
            load_private_key(private_key_pem(account, keys)).public_key()
        )
        api_key = api_v3_key(account, keys)
        secret = app_secret(account, keys)
    except SecretsUnreadable:
        private_fp, api_key, secret = None, None, None
    public = []
    for key_id, pem in sorted(account.platform_public_keys.items()):
        try:
            fp = fingerprint(load_public_key(pem))
        except ValueError:
            fp = ""
        public.append(PlatformKeyRead(key_id=key_id, fingerprint=fp, pem=pem))
    return PaymentAccountRead(
        id=account.id,
        store_id=account.store_id,
        channel=account.channel,
        name=account.name,
        enabled=account.enabled,
        base_url=account.base_url,
        merchant_id=account.merchant_id,
        app_id=account.app_id,
        private_key_id=account.private_key_id,
        private_key=f"**** sha256:{private_fp}" if private_fp else "**** (unreadable)",
        private_key_fingerprint=private_fp,
        api_v3_key=mask(api_key) if api_key else None,
        app_secret=mask(secret) if secret else None,
        platform_public_keys=public,
        notify_url=notify_url_of(account),
        notify_url_override=account.notify_url,
        extra=dict(account.extra),
        auto_refund_duplicates=account.auto_refund_duplicates,
        key_version=account.key_version,
        key_current=account.key_version == keys.current_version,
        created_at=account.created_at,
        updated_at=account.updated_at,
    )


def private_key_pem(account: PaymentAccount, keys: Keyring | None = None) -> str:
    try:
        return _BOX.open(
            account.private_key_encrypted,
            aad=_aad(account.id, "private_key"),
            keys=keys or _keys(),
            version=account.key_version,
        )
    except SecretUnreadable as exc:
        raise SecretsUnreadable() from exc


def api_v3_key(account: PaymentAccount, keys: Keyring | None = None) -> str | None:
    if account.api_v3_key_encrypted is None:
        return None
    try:
        return _BOX.open(
            account.api_v3_key_encrypted,
            aad=_aad(account.id, "api_v3_key"),
            keys=keys or _keys(),
            version=account.key_version,
        )
    except SecretUnreadable as exc:
        raise SecretsUnreadable() from exc


def app_secret(account: PaymentAccount, keys: Keyring | None = None) -> str | None:
    """WeChat: the official account's AppSecret (web authorisation), when set."""
    if account.app_secret_encrypted is None:
        return None
    try:
        return _BOX.open(
            account.app_secret_encrypted,
            aad=_aad(account.id, "app_secret"),
            keys=keys or _keys(),
            version=account.key_version,
        )
    except SecretUnreadable as exc:
        raise SecretsUnreadable() from exc


def seal_secrets(
    account: PaymentAccount,
    private_pem: str,
    v3_key: str | None,
    keys: Keyring | None = None,
    *,
    secret: str | None = None,
) -> None:
    """Seal the account's secrets under the current master key (the account needs its id).
    `secret` is the WeChat official account's AppSecret (None: none)."""
    keys = keys or _keys()
    account.app_secret_encrypted = (
        None if secret is None else _BOX.seal(secret, aad=_aad(account.id, "app_secret"), keys=keys)
    )
    account.private_key_encrypted = _BOX.seal(
        private_pem, aad=_aad(account.id, "private_key"), keys=keys
    )
    account.api_v3_key_encrypted = (
        None if v3_key is None else _BOX.seal(v3_key, aad=_aad(account.id, "api_v3_key"), keys=keys)
    )
    account.key_version = keys.current_version


def config_of(account: PaymentAccount) -> ChannelConfig:
    """The decrypted settings a platform account is opened with."""
    keys = _keys()
    return ChannelConfig(
        channel=account.channel,
        account_id=account.id,
        base_url=account.base_url,
        merchant_id=account.merchant_id,
        app_id=account.app_id,
        private_key_pem=private_key_pem(account, keys),
        private_key_id=account.private_key_id,
        platform_public_keys=dict(account.platform_public_keys),
        api_v3_key=api_v3_key(account, keys) or "",
        app_secret=app_secret(account, keys) or "",
        notify_url=notify_url_of(account),
        extra=dict(account.extra),
    )


#: The HTTP client platform accounts are opened with (None: each opens its own). Tests set it
#: to a client on the app itself (`httpx.ASGITransport`), where the sandboxes are served.
platform_http: httpx.AsyncClient | None = None


#: The packages that register a platform when imported (`register_platform`).
PLATFORM_PACKAGES = ("wechatpay", "alipay", "unionpay")


def load_platforms() -> list[str]:
    """Import the platform packages this server has; the platform codes now registered."""
    for name in PLATFORM_PACKAGES:
        try:
            importlib.import_module(f"selfmart.payments.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"selfmart.payments.{name}":
                raise
    return platform.platform_codes()


def open_platform(account: PaymentAccount) -> PlatformAccount:
    if account.channel not in platform.platform_codes() and account.channel not in (
        load_platforms()
    ):
        raise PlatformUnavailable(f"No {account.channel} platform is installed", field="channel")
    # Opening one loads (and checks) our RSA private key, ~tens of ms of CPU: on the callback
    # path that would be most of the work, so an opened account is kept until its settings
    # change (updated_at, key_version) or another HTTP client is asked for.
    cache_key = (account.id, account.updated_at, account.key_version, id(platform_http))
    opened = _OPENED.get(cache_key)
    if opened is None:
        kwargs: dict[str, Any] = {} if platform_http is None else {"http": platform_http}
        opened = platform.open_account(config_of(account), **kwargs)
        _OPENED[cache_key] = opened
        while len(_OPENED) > _OPENED_MAX:
            _OPENED.popitem(last=False)
    else:
        _OPENED.move_to_end(cache_key)
    return opened


_OPENED: OrderedDict[tuple[int, Any, str, int], PlatformAccount] = OrderedDict()
_OPENED_MAX = 256


async def for_store(session: AsyncSession, store_id: int, channel: str) -> PaymentAccount | None:
    """The account `store_id` takes `channel` payments with: its own, else the chain's; None
    when neither is enabled (the store cannot offer the channel)."""
    rows = (
        await session.scalars(
            select(PaymentAccount).where(
                PaymentAccount.channel == channel,
                or_(PaymentAccount.store_id == store_id, PaymentAccount.store_id.is_(None)),
            )
        )
    ).all()
    own = next((a for a in rows if a.store_id == store_id), None)
    chosen = own or next((a for a in rows if a.store_id is None), None)
    return chosen if chosen is not None and chosen.enabled else None


async def offered_channels(session: AsyncSession, store_id: int) -> list[str]:
    """The platform channels `store_id` can take payments on."""
    rows = (
        await session.scalars(
            select(PaymentAccount).where(
                or_(PaymentAccount.store_id == store_id, PaymentAccount.store_id.is_(None))
            )
        )
    ).all()
    chosen: dict[str, PaymentAccount] = {}
    for account in sorted(rows, key=lambda a: a.store_id is not None):
        chosen[account.channel] = account  # the store's own comes last and wins
    return sorted(c for c, a in chosen.items() if a.enabled)


async def list_accounts(
    session: AsyncSession,
    *,
    actor: Actor,
    store_id: int | None = None,
    channel: str | None = None,
) -> list[PaymentAccountRead]:
    stmt = scoped(select(PaymentAccount), actor).order_by(
        PaymentAccount.store_id.is_not(None), PaymentAccount.store_id, PaymentAccount.channel
    )
    if store_id is not None:
        stmt = stmt.where(
            or_(PaymentAccount.store_id == store_id, PaymentAccount.store_id.is_(None))
        )
    if channel is not None:
        stmt = stmt.where(PaymentAccount.channel == channel)
    return [read(a) for a in (await session.scalars(stmt)).all()]


def _snapshot(account: PaymentAccount, private_fp: str | None) -> dict[str, Any]:
    out = audit.snapshot(account, AUDITED)
    out["private_key"] = f"sha256:{private_fp}" if private_fp else None
    out["platform_public_keys"] = sorted(account.platform_public_keys)
    return out


async def _flush_unique(session: AsyncSession, store_id: int | None, channel: str) -> None:
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        where = f"store {store_id}" if store_id is not None else "the chain"
        raise AlreadyExists(f"{where} already has a {channel} account", field="channel") from exc


async def create_account(
    session: AsyncSession, data: PaymentAccountCreate, *, actor: Actor
) -> PaymentAccountRead:
    _may_change(data.store_id, actor)
    if data.store_id is not None:
        await stores.get_store(session, data.store_id, actor=actor, field="store_id")
    keys = _keys()
    account = PaymentAccount(
        store_id=data.store_id,
        channel=data.channel,
        name=data.name,
        enabled=data.enabled,
        base_url=data.base_url,
        merchant_id=data.merchant_id,
        app_id=data.app_id,
        private_key_id=data.private_key_id,
        private_key_encrypted="",
        platform_public_keys=dict(data.platform_public_keys),
        notify_url=data.notify_url,
        extra=dict(data.extra),
        auto_refund_duplicates=data.auto_refund_duplicates,
        key_version=keys.current_version,
    )
    session.add(account)
    await _flush_unique(session, data.store_id, data.channel)  # the id seals the secrets
    seal_secrets(
        account,
        data.private_key_pem.get_secret_value(),
        data.api_v3_key.get_secret_value() if data.api_v3_key else None,
        keys,
        secret=data.app_secret.get_secret_value() if data.app_secret else None,
    )
    await session.flush()
    answer = read(account)
    await audit.record(
        session,
        actor,
        "payment_account.create",
        "payment_account",
        account.id,
        store_id=account.store_id,
        after=_snapshot(account, answer.private_key_fingerprint),
    )
    return answer


async def update_account(
    session: AsyncSession, account: PaymentAccount, data: PaymentAccountUpdate, *, actor: Actor
) -> PaymentAccountRead:
    _may_change(account.store_id, actor)
    changes = data.model_dump(exclude_unset=True)
    keys = _keys()
    before = _snapshot(account, read(account).private_key_fingerprint)
    new_private = changes.pop("private_key_pem", None)
    new_v3 = changes.pop("api_v3_key", None)
    new_secret = changes.pop("app_secret", None)
    if new_private is not None and "private_key_id" not in changes and account.channel != "alipay":
        raise ValidationFailed(
            "A new private key comes with its key id (certificate serial / certId)",
            field="private_key_id",
        )
    for name, value in changes.items():
        setattr(account, name, value)
    rotated = new_private is not None or new_v3 is not None or new_secret is not None
    if rotated:
        private = new_private.get_secret_value() if new_private else private_key_pem(account)
        v3 = new_v3.get_secret_value() if new_v3 else api_v3_key(account)
        secret = new_secret.get_secret_value() if new_secret else app_secret(account)
        seal_secrets(account, private, v3, keys, secret=secret)
    account.updated_at = utcnow()
    await session.flush()
    answer = read(account)
    after = _snapshot(account, answer.private_key_fingerprint)
    if new_v3 is not None:
        after["api_v3_key"] = "changed"
    if new_secret is not None:
        after["app_secret"] = "changed"
    await audit.record(
        session,
        actor,
        # new keys are a security event (audit.security): the operation log's key rotations
        "payment_account.rotate_keys" if rotated else "payment_account.update",
        "payment_account",
        account.id,
        store_id=account.store_id,
        before=before,
        after=after,
    )
    return answer


async def reseal_all(session: AsyncSession) -> int:
    """Re-seal every account still under an earlier master key with the current one; the
    earlier key must still be in `secret_keys_previous`. Returns how many were re-sealed."""
    keys = _keys()
    stale = (
        await session.scalars(
            select(PaymentAccount)
            .where(PaymentAccount.key_version != keys.current_version)
            .order_by(PaymentAccount.id)
            .with_for_update()
        )
    ).all()
    for account in stale:
        seal_secrets(
            account,
            private_key_pem(account, keys),
            api_v3_key(account, keys),
            keys,
            secret=app_secret(account, keys),
        )
    await session.flush()
    return len(stale)


async def test_account(
    session: AsyncSession, account: PaymentAccount, *, actor: Actor
) -> PaymentAccountTest:
    """Ask the platform, with the stored keys, about a payment that cannot exist: a signed
    "no such payment" proves the ids and keys on both sides."""
    remote = open_platform(account)
    # Letters and digits only: a number every platform accepts (UnionPay takes no dashes).
    probe = "SMTEST" + secrets.token_hex(8)
    started = time.perf_counter()
    try:
        answer = await remote.query(probe)
        result = _judge(answer.status, answer.failure_code, answer.failure_reason)
    except PlatformError as exc:
        result = (False, None, exc.code, str(exc))
    elapsed = int((time.perf_counter() - started) * 1000)
    ok, status, code, message = result
    await audit.record(
        session,
        actor,
        "payment_account.test",
        "payment_account",
        account.id,
        store_id=account.store_id,
        after={"ok": ok, "code": code, "message": message[:200]},
    )
    return PaymentAccountTest(ok=ok, status=status, code=code, message=message, elapsed_ms=elapsed)


def _judge(
    status: str, code: str | None, reason: str | None
) -> tuple[bool, str | None, str | None, str]:
    if code in NOT_FOUND_CODES:
        return True, status, code, reason or "The platform answered with a valid signature"
    return False, status, code, reason or f"Unexpected answer: {status}"

"""Channel settings over HTTP: secrets sealed at rest and masked in every answer, chain-wide
accounts with per-store overrides, scoping, validation naming the field, audit, rotation."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.config import Settings, get_settings
from selfmart.iam.permissions import Perm
from selfmart.kit.crypto import Keyring, key_version
from selfmart.models import AuditLog, PaymentAccount
from selfmart.payments import accounts, platform

from ..builders import auth_headers, make_role, make_store, make_user
from .builders import API_V3_KEY, make_payment_account, rsa_pair


async def _super(session: AsyncSession) -> dict[str, str]:
    return await auth_headers(session, await make_user(session, role="super_admin"))


def _body(**over: Any) -> dict[str, Any]:
    private, _ = rsa_pair("merchant")
    _, platform_public = rsa_pair("platform")
    body: dict[str, Any] = {
        "channel": "wechat",
        "name": "总部微信支付",
        "base_url": "https://api.mch.weixin.qq.com/",
        "merchant_id": "1900000109",
        "app_id": "wxd678efh567hg6787",
        "private_key_pem": private,
        "private_key_id": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
        "api_v3_key": API_V3_KEY,
        "platform_public_keys": {"PUB_KEY_ID_01": platform_public},
    }
    body.update(over)
    return body


def _no_secret_in(payload: str) -> None:
    private, _ = rsa_pair("merchant")
    body_lines = [ln for ln in private.splitlines() if ln and not ln.startswith("-----")]
    assert API_V3_KEY not in payload
    assert all(line not in payload for line in body_lines)


async def test_create_read_update_never_shows_a_secret(
    client: httpx.AsyncClient, session: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="selfmart")
    headers = await _super(session)
    r = await client.post("/api/v1/payment-accounts", json=_body(), headers=headers)
    assert r.status_code == 201, r.text
    created = r.json()
    _no_secret_in(r.text)
    assert created["store_id"] is None
    assert created["base_url"] == "https://api.mch.weixin.qq.com"
    assert created["private_key"].startswith("**** sha256:")
    assert created["private_key_fingerprint"]
    assert len(created["private_key_fingerprint"]) == 16
    assert created["api_v3_key"] == "****" + API_V3_KEY[-4:]
    assert created["notify_url"].endswith(f"/api/payments/notify/wechat/{created['id']}")
    assert created["key_current"] is True
    assert [k["key_id"] for k in created["platform_public_keys"]] == ["PUB_KEY_ID_01"]

    # Sealed at rest: the row holds neither secret in the clear.
    row = (
        await session.execute(
            text(
                "SELECT private_key_encrypted, api_v3_key_encrypted FROM payment_accounts "
                "WHERE id = :id"
            ),
            {"id": created["id"]},
        )
    ).one()
    _no_secret_in(json.dumps(list(row)))
    assert row[0].startswith("v1:")

    r = await client.get(f"/api/v1/payment-accounts/{created['id']}", headers=headers)
    assert r.status_code == 200
    _no_secret_in(r.text)
    r = await client.get("/api/v1/payment-accounts", headers=headers)
    assert [a["id"] for a in r.json()] == [created["id"]]
    _no_secret_in(r.text)

    # Rotating the platform's key: the old and the new one at once, then the new one alone.
    _, new_public = rsa_pair("platform2")
    _, old_public = rsa_pair("platform")
    both = {"PUB_KEY_ID_01": old_public, "PUB_KEY_ID_02": new_public}
    r = await client.patch(
        f"/api/v1/payment-accounts/{created['id']}",
        json={"platform_public_keys": both, "name": "微信支付"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert [k["key_id"] for k in r.json()["platform_public_keys"]] == [
        "PUB_KEY_ID_01",
        "PUB_KEY_ID_02",
    ]
    assert r.json()["private_key_fingerprint"] == created["private_key_fingerprint"]

    # A new merchant key with its serial: the fingerprint changes, the key is still hidden.
    new_private, _ = rsa_pair("merchant2")
    r = await client.patch(
        f"/api/v1/payment-accounts/{created['id']}",
        json={"private_key_pem": new_private, "private_key_id": "NEWSERIAL"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["private_key_fingerprint"] != created["private_key_fingerprint"]
    assert r.json()["api_v3_key"] == "****" + API_V3_KEY[-4:]  # kept
    assert new_private.splitlines()[1] not in r.text
    account = await session.get(PaymentAccount, created["id"])
    assert account is not None
    config = accounts.config_of(account)
    assert config.private_key_pem == new_private.strip()
    assert config.api_v3_key == API_V3_KEY
    assert config.private_key_id == "NEWSERIAL"

    entries = (
        await session.scalars(
            select(AuditLog).where(AuditLog.entity_type == "payment_account").order_by(AuditLog.id)
        )
    ).all()
    # a new merchant key is a key rotation, a security event of the operation log
    assert [e.action for e in entries] == [
        "payment_account.create",
        "payment_account.update",
        "payment_account.rotate_keys",
    ]
    everything = json.dumps([e.changes for e in entries], default=str)
    _no_secret_in(everything)
    assert new_private.splitlines()[1] not in everything
    logged = "\n".join(r.getMessage() for r in caplog.records)
    _no_secret_in(logged)
    assert new_private.splitlines()[1] not in logged


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"private_key_pem": "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"},
         "private_key_pem"),
        ({"platform_public_keys": {"K1": "not a key"}}, "platform_public_keys"),
        ({"platform_public_keys": {}}, "platform_public_keys"),
        ({"api_v3_key": "short"}, "api_v3_key"),
        ({"base_url": "ftp://example.com"}, "base_url"),
        ({"channel": "paypal"}, "channel"),
        ({"merchant_id": ""}, "merchant_id"),
        ({"store_id": 0}, "store_id"),
    ],
)  # fmt: skip
async def test_bad_settings_name_the_field(
    client: httpx.AsyncClient, session: AsyncSession, over: dict[str, Any], field: str
) -> None:
    headers = await _super(session)
    r = await client.post("/api/v1/payment-accounts", json=_body(**over), headers=headers)
    assert r.status_code == 422, r.text
    assert any(field in (d.get("field") or "") for d in r.json()["details"]), r.text
    assert (await session.scalar(select(PaymentAccount.id))) is None


async def test_wechat_needs_its_v3_key_and_serial(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await _super(session)
    body = _body()
    del body["api_v3_key"]
    r = await client.post("/api/v1/payment-accounts", json=body, headers=headers)
    assert r.status_code == 422
    assert "api_v3_key" in r.text


async def test_store_overrides_the_chain_and_a_disabled_one_switches_off(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    a = await make_store(session)
    b = await make_store(session)
    c = await make_store(session)
    chain = await make_payment_account(session, None, "wechat")
    own = await make_payment_account(session, a, "wechat")
    await make_payment_account(session, b, "wechat", enabled=False)
    await make_payment_account(session, a, "alipay")

    picked = await accounts.for_store(session, a.id, "wechat")
    assert picked is not None
    assert picked.id == own.id
    assert await accounts.for_store(session, b.id, "wechat") is None
    picked = await accounts.for_store(session, c.id, "wechat")
    assert picked is not None
    assert picked.id == chain.id
    assert await accounts.for_store(session, c.id, "alipay") is None  # nobody configured it
    assert await accounts.offered_channels(session, a.id) == ["alipay", "wechat"]
    assert await accounts.offered_channels(session, b.id) == []
    assert await accounts.offered_channels(session, c.id) == ["wechat"]

    # One account per store and channel, one chain account per channel.
    headers = await _super(session)
    r = await client.post("/api/v1/payment-accounts", json=_body(store_id=a.id), headers=headers)
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "already_exists"
    r = await client.post("/api/v1/payment-accounts", json=_body(), headers=headers)
    assert r.status_code == 409
    r = await client.post("/api/v1/payment-accounts", json=_body(store_id=c.id), headers=headers)
    assert r.status_code == 201, r.text


async def test_a_store_user_sees_the_chain_but_changes_only_their_store(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    a = await make_store(session)
    b = await make_store(session)
    chain = await make_payment_account(session, None, "wechat")
    theirs = await make_payment_account(session, b, "alipay")
    role = await make_role(
        session, [Perm.PAYMENT_ACCOUNT_READ.value, Perm.PAYMENT_ACCOUNT_WRITE.value]
    )
    headers = await auth_headers(session, await make_user(session, role=role, stores=[a]))

    r = await client.get("/api/v1/payment-accounts", headers=headers)
    assert [x["id"] for x in r.json()] == [chain.id]
    r = await client.get(f"/api/v1/payment-accounts/{theirs.id}", headers=headers)
    assert r.status_code == 404
    r = await client.patch(
        f"/api/v1/payment-accounts/{chain.id}", json={"name": "x"}, headers=headers
    )
    assert r.status_code == 403
    assert r.json()["error"] == "chain_account_forbidden"
    r = await client.post("/api/v1/payment-accounts", json=_body(), headers=headers)
    assert r.status_code == 403
    r = await client.post("/api/v1/payment-accounts", json=_body(store_id=b.id), headers=headers)
    assert r.status_code == 404  # another store is as unknown as a missing one
    r = await client.post("/api/v1/payment-accounts", json=_body(store_id=a.id), headers=headers)
    assert r.status_code == 201, r.text


async def test_null_is_refused_for_required_settings(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    account = await make_payment_account(session, None, "wechat")
    headers = await _super(session)
    for field in ("merchant_id", "private_key_pem", "enabled"):
        r = await client.patch(
            f"/api/v1/payment-accounts/{account.id}", json={field: None}, headers=headers
        )
        assert r.status_code == 422, (field, r.text)
    # A new key without its serial would sign with a serial the platform does not know.
    private, _ = rsa_pair("merchant2")
    r = await client.patch(
        f"/api/v1/payment-accounts/{account.id}", json={"private_key_pem": private},
        headers=headers,
    )  # fmt: skip
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "private_key_id"


async def test_the_test_button_says_when_the_platform_is_not_installed(
    client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await make_payment_account(session, None, "card")
    headers = await _super(session)
    # As on a server built without the UnionPay package.
    monkeypatch.delitem(platform._PLATFORMS, "card", raising=False)
    r = await client.post(f"/api/v1/payment-accounts/{account.id}/test", headers=headers)
    assert r.status_code == 409
    assert r.json()["error"] == "payment_platform_unavailable"


async def test_rotating_the_master_key_keeps_old_secrets_readable_and_reseals(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = get_settings()
    account = await make_payment_account(session, None, "wechat")
    old_version = account.key_version
    assert old_version == key_version(old.secret_key.get_secret_value())

    rotated = Settings(
        secret_key=SecretStr("the-next-master-key-0123456789abcdefgh"),
        secret_keys_previous=[old.secret_key],
    )
    monkeypatch.setattr(accounts, "get_settings", lambda: rotated)
    # Still readable under the new key set (the old master key is among the previous ones).
    assert accounts.config_of(account).api_v3_key == API_V3_KEY
    assert accounts.read(account).key_current is False

    assert await accounts.reseal_all(session) == 1
    assert account.key_version == Keyring.from_settings(rotated).current_version
    assert account.key_version != old_version
    assert accounts.config_of(account).api_v3_key == API_V3_KEY
    assert await accounts.reseal_all(session) == 0

    # Once the old key is dropped the re-sealed secrets still open; an un-resealed row would
    # not (it is reported unreadable, not a 500).
    alone = Settings(secret_key=rotated.secret_key)
    monkeypatch.setattr(accounts, "get_settings", lambda: alone)
    assert accounts.config_of(account).private_key_pem == rsa_pair("merchant")[0]
    monkeypatch.setattr(accounts, "get_settings", lambda: old)
    with pytest.raises(accounts.SecretsUnreadable):
        accounts.config_of(account)
    assert accounts.read(account).private_key == "**** (unreadable)"


async def test_the_official_account_app_secret_is_sealed_masked_and_kept(
    client: httpx.AsyncClient, session: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    """WeChat's AppSecret (JSAPI's web authorisation) is a secret like the others: sealed at
    rest, answered masked, kept when another key changes, a key rotation when it changes."""
    caplog.set_level(logging.DEBUG, logger="selfmart")
    secret, new_secret = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6", "0f" * 16
    headers = await _super(session)
    r = await client.post(
        "/api/v1/payment-accounts", json=_body(app_secret=secret), headers=headers
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["app_secret"] == "****" + secret[-4:]
    assert secret not in r.text
    row = (
        await session.execute(
            text("SELECT app_secret_encrypted FROM payment_accounts WHERE id = :id"),
            {"id": created["id"]},
        )
    ).one()
    assert row[0].startswith("v1:")
    assert secret not in row[0]

    new_private, _ = rsa_pair("merchant2")
    r = await client.patch(
        f"/api/v1/payment-accounts/{created['id']}",
        json={"private_key_pem": new_private, "private_key_id": "NEWSERIAL"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["app_secret"] == "****" + secret[-4:]  # kept
    r = await client.patch(
        f"/api/v1/payment-accounts/{created['id']}",
        json={"app_secret": new_secret},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["app_secret"] == "****" + new_secret[-4:]
    account = await session.get(PaymentAccount, created["id"], populate_existing=True)
    assert account is not None
    assert accounts.config_of(account).app_secret == new_secret
    assert accounts.config_of(account).private_key_pem == new_private.strip()

    r = await client.patch(
        f"/api/v1/payment-accounts/{created['id']}", json={"app_secret": "short"}, headers=headers
    )
    assert r.status_code == 422
    entries = (
        await session.scalars(
            select(AuditLog)
            .where(
                AuditLog.entity_type == "payment_account", AuditLog.entity_id == str(created["id"])
            )
            .order_by(AuditLog.id)
        )
    ).all()
    assert [e.action for e in entries][-1] == "payment_account.rotate_keys"
    assert all(secret not in json.dumps(e.changes, default=str) for e in entries)
    assert secret not in caplog.text
    assert new_secret not in caplog.text

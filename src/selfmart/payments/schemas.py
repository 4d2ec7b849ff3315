"""Request and response bodies of the payments domain: channel settings (merchant accounts).

Secrets (our private key, WeChat's APIv3 key) are write-only: a request may set them, no
answer ever carries them; answers show a mask and, for keys, a fingerprint of the public half
so a person can compare it with what the platform shows.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from selfmart.kit.schema import InSchema, Schema

#: The platforms a merchant account can be on (`card` is UnionPay).
PlatformChannel = Literal["wechat", "alipay", "card"]

_PEM_MAX = 16_000


def load_private_key(pem: str) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(pem.encode("utf-8"), password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError("not a PEM private key without a password (PKCS#8 or PKCS#1)") from exc


def load_public_key(pem: str) -> PublicKeyTypes:
    """A PEM public key, or the public key of a PEM X.509 certificate."""
    data = pem.encode("utf-8")
    try:
        if b"CERTIFICATE" in data:
            return x509.load_pem_x509_certificate(data).public_key()
        return serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ValueError("not a PEM public key or X.509 certificate") from exc


def fingerprint(key: PublicKeyTypes) -> str:
    """SHA-256 of the public key's DER form, first 16 hex digits."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:16]


def _check_private(value: SecretStr) -> SecretStr:
    load_private_key(value.get_secret_value())
    return value


def _check_public_keys(value: dict[str, str]) -> dict[str, str]:
    for key_id, pem in value.items():
        if len(key_id) > 128:
            raise ValueError("a key id has more than 128 characters")
        if len(pem) > _PEM_MAX:
            raise ValueError(f"the key {key_id!r} is longer than {_PEM_MAX} characters")
        try:
            load_public_key(pem)
        except ValueError as exc:
            raise ValueError(f"the key {key_id!r} is {exc}") from None
    return value


def _check_url(value: str) -> str:
    if not value.startswith(("http://", "https://")) or " " in value:
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/")


PrivateKeyPem = Annotated[SecretStr, Field(max_length=_PEM_MAX), AfterValidator(_check_private)]
#: WeChat's APIv3 key: 32 characters (AEAD_AES_256_GCM key for callbacks)
ApiV3Key = Annotated[SecretStr, Field(min_length=32, max_length=32)]
PublicKeys = Annotated[
    dict[Annotated[str, Field(max_length=128)], Annotated[str, Field(max_length=_PEM_MAX)]],
    Field(max_length=4, description="{key id: PEM public key or certificate}; two in a rotation"),
    AfterValidator(_check_public_keys),
]
Url = Annotated[str, Field(min_length=8, max_length=300), AfterValidator(_check_url)]
#: platform settings that are not secrets (Alipay `sign_type`, UnionPay `encrypt_cert`...)
Extra = Annotated[
    dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=_PEM_MAX)]],
    Field(max_length=20),
]
MerchantId = Annotated[str, Field(min_length=1, max_length=64)]
AppId = Annotated[str, Field(max_length=64)]
KeyId = Annotated[str, Field(max_length=128)]
AppSecret = Annotated[SecretStr, Field(min_length=16, max_length=64)]


class PaymentAccountCreate(InSchema):
    #: None: the chain's account, used by every store without its own
    store_id: int | None = Field(None, ge=1, le=2_147_483_647)
    channel: PlatformChannel
    name: str = Field("", max_length=100)
    enabled: bool = True
    base_url: Url
    merchant_id: MerchantId
    app_id: AppId = ""
    private_key_pem: PrivateKeyPem
    private_key_id: KeyId = ""
    api_v3_key: ApiV3Key | None = None
    #: WeChat: the official account's AppSecret (the account's `app_id` is that official
    #: account), for JSAPI payments from the phone page opened inside WeChat
    app_secret: AppSecret | None = None
    platform_public_keys: PublicKeys = Field(min_length=1)
    notify_url: Url | None = None
    extra: Extra = Field(default_factory=dict)
    auto_refund_duplicates: bool = False

    @model_validator(mode="after")
    def _platform_needs(self) -> PaymentAccountCreate:
        if self.channel == "wechat" and self.api_v3_key is None:
            raise ValueError("api_v3_key: WeChat Pay needs the 32-character APIv3 key")
        if self.channel in ("wechat", "card") and not self.private_key_id:
            raise ValueError(
                "private_key_id: WeChat Pay needs the certificate serial number, "
                "UnionPay the certId"
            )
        if self.channel in ("wechat", "alipay") and not self.app_id:
            raise ValueError("app_id: WeChat Pay and Alipay need the app id")
        return self


class PaymentAccountUpdate(InSchema):
    """Only the fields sent are changed. A new private key comes with its key id; the
    platform's keys are replaced as a whole (send the old and the new one during a rotation)."""

    name: str | None = Field(None, max_length=100)
    enabled: bool | None = None
    base_url: Url | None = None
    merchant_id: MerchantId | None = None
    app_id: AppId | None = None
    private_key_pem: PrivateKeyPem | None = None
    private_key_id: KeyId | None = None
    api_v3_key: ApiV3Key | None = None
    app_secret: AppSecret | None = None
    platform_public_keys: PublicKeys | None = None
    notify_url: Url | None = None
    extra: Extra | None = None
    auto_refund_duplicates: bool | None = None

    @field_validator(
        "name", "enabled", "base_url", "merchant_id", "app_id", "private_key_pem",
        "private_key_id", "api_v3_key", "app_secret", "extra", "auto_refund_duplicates",
    )  # fmt: skip
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be left out but not set to null")
        return value

    @field_validator("platform_public_keys")
    @classmethod
    def _some_key(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if not value:
            raise ValueError("at least one platform key is needed")
        return value


class PlatformKeyRead(Schema):
    key_id: str
    #: SHA-256 of the public key (DER), 16 hex digits
    fingerprint: str
    pem: str


class PaymentAccountRead(Schema):
    id: int
    store_id: int | None
    channel: str
    name: str
    enabled: bool
    base_url: str
    merchant_id: str
    app_id: str
    private_key_id: str
    #: never the key: "****" and the fingerprint of its public half
    private_key: str
    private_key_fingerprint: str | None
    #: "****" and its last 4 characters, or None when not set
    api_v3_key: str | None
    #: WeChat official account AppSecret: "****" and its last 4 characters, or None
    app_secret: str | None = None
    platform_public_keys: list[PlatformKeyRead]
    #: where the platform sends callbacks (the setting, or ours by default)
    notify_url: str
    notify_url_override: str | None
    extra: dict[str, str]
    auto_refund_duplicates: bool
    #: which master key seals the secrets (see `selfmart rotate-secrets`)
    key_version: str
    key_current: bool
    created_at: datetime
    updated_at: datetime


class PaymentAccountTest(Schema):
    """What the platform answered when asked about a payment that does not exist, with the
    stored keys: `ok` when it answered with a verifiable signature."""

    ok: bool
    status: str | None = None
    code: str | None = None
    message: str
    elapsed_ms: int


# --- terminal payment routes ----------------------------------------------------------------

AttemptState = Literal["paid", "paying", "waiting", "failed", "closed"]


class PaymentStartIn(InSchema):
    """Pay an order with a scanned payment code (`code`), get a QR to show (`qr`), or take the
    bank card in the terminal's reader (`card`, channel `card` only)."""

    #: the terminal's id for this attempt: the same id again answers the same attempt
    attempt_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    channel: PlatformChannel
    mode: Literal["code", "qr", "card"]
    #: the customer's payment code as scanned (mode `code`), or the card number the reader
    #: read (mode `card`)
    auth_code: str | None = Field(None, min_length=10, max_length=32, pattern=r"^[0-9]+$")

    @field_validator("mode")
    @classmethod
    def _card_is_card(cls, mode: str, info: ValidationInfo) -> str:
        # a bank card is taken by its reader; WeChat Pay and Alipay by a code or a QR
        channel = info.data.get("channel")
        if channel == "card" and mode != "card":
            raise ValueError("a bank card is paid with mode card (the card in the reader)")
        if channel in ("wechat", "alipay") and mode == "card":
            raise ValueError("mode card is for the card channel; scan a code or show a QR")
        return mode


class PaymentAttemptRead(Schema):
    order_no: str
    order_status: str
    attempt_id: str | None
    payment_id: int
    channel: str
    mode: str | None
    out_trade_no: str | None
    amount_fen: int
    #: paid | paying (the customer is entering a password) | waiting (QR shown) | failed |
    #: closed
    state: AttemptState
    status: str
    #: the QR's content (mode `qr`)
    pay_url: str | None
    transaction_id: str | None
    #: the platform's code and words when it refused
    failure_code: str | None
    failure_reason: str | None
    expires_at: datetime | None
    paid_at: datetime | None
    #: started: this request began it; duplicate: the attempt id was seen before;
    #: already_paid: another open attempt of the order (this one) turned out paid when it was
    #: closed for the new one, which was not started
    outcome: Literal["started", "duplicate", "current", "already_paid"] = "current"


class PaymentStateRead(Schema):
    order_no: str
    order_status: str
    total_fen: int
    paid_fen: int
    owed_fen: int
    #: the order's latest platform attempt, if any
    attempt: PaymentAttemptRead | None


# --- console: the money records ---------------------------------------------------------------


class PaymentRead(Schema):
    id: int
    order_id: int
    order_no: str
    store_id: int
    channel: str
    mode: str | None
    status: str
    amount_fen: int
    refunded_fen: int
    out_trade_no: str | None
    channel_txn_id: str | None
    attempt_id: str | None
    account_id: int | None
    failure_code: str | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime | None
    succeeded_at: datetime | None
    expires_at: datetime | None
    actor_type: str
    actor_name: str


class PaymentCallbackRead(Schema):
    id: int
    channel: str
    received_at: datetime
    kind: str | None
    verified: bool
    outcome: str
    reason: str | None
    notification_id: str | None
    status: str | None
    amount_fen: int | None
    transaction_id: str | None
    out_refund_no: str | None
    headers: dict[str, Any]
    decoded: dict[str, Any]


class PaymentRefundRead(Schema):
    id: int
    status: str
    amount_fen: int
    reason: str
    out_refund_no: str | None
    channel_refund_id: str | None
    failure_code: str | None
    failure_reason: str | None
    created_at: datetime
    completed_at: datetime | None
    actor_name: str
    raw_request: dict[str, Any]
    raw_response: dict[str, Any]


class PaymentDetail(PaymentRead):
    raw_request: dict[str, Any]
    raw_response: dict[str, Any]
    #: the order's other attempts
    attempts: list[PaymentRead]
    callbacks: list[PaymentCallbackRead]
    refunds: list[PaymentRefundRead]


# --- the customer's phone page ------------------------------------------------------------------


class PhonePayIn(InSchema):
    """Pay what is owed from the phone page: the platform's own page opens (`pay_url`)."""

    #: the page's id for this attempt (a retry after a lost answer sends the same one)
    attempt_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    channel: Literal["wechat", "alipay"]
    #: inside WeChat: the `code` WeChat's web authorisation brought back (channel `wechat`);
    #: the payment is then a JSAPI one
    oauth_code: str | None = Field(None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
    #: inside WeChat, instead of a new `oauth_code`: the `payer_token` an earlier answer of this
    #: page gave (a retry after a refused or abandoned payment needs no new authorisation)
    payer_token: str | None = Field(
        None, min_length=8, max_length=512, pattern=r"^v1:[A-Za-z0-9_=-]+$"
    )


class JsapiBridgeParams(Schema):
    """`WeixinJSBridge.invoke('getBrandWCPayRequest', …)`'s parameters, as WeChat names them."""

    appId: str  # noqa: N815 - WeChat's names
    timeStamp: str  # noqa: N815
    nonceStr: str  # noqa: N815
    package: str
    signType: str  # noqa: N815
    paySign: str  # noqa: N815


class PhonePayAttemptRead(PaymentAttemptRead):
    #: a pending JSAPI payment: what the page hands WeChat's payment sheet
    jsapi: JsapiBridgeParams | None = None
    #: a JSAPI attempt started with a payer: keep it for the page's session and send it
    #: (as `payer_token`) to pay again without a new WeChat authorisation
    payer_token: str | None = None


class PhonePaymentRead(Schema):
    order_no: str
    order_status: str
    owed_fen: int
    #: the channels the order's store offers on a phone
    channels: list[str]
    #: the order's latest platform attempt, if any
    attempt: PaymentAttemptRead | None
    #: inside WeChat, when the store takes JSAPI payments: WeChat's authorisation link
    wechat_oauth_url: str | None = None

"""The contract between selfmart and a payment platform's merchant account.

WeChat Pay, Alipay and UnionPay each implement `PlatformAccount` in their own package
(`payments/wechatpay/`, `payments/alipay/`, `payments/unionpay/`): an object bound to one
merchant account (its ids and keys, a `ChannelConfig`) that speaks the platform's wire
protocol over HTTP. It never touches the database: the payments service records every answer
(`raw_request` / `raw_response`, secrets removed) and decides what an answer means for the
order. Signing, verifying, encrypting and bill parsing live in each package's pure
`protocol.py`, which our sandbox of the platform (`selfmart.sandbox.*`) uses too.

Amounts are integer fen throughout; times are timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol

from selfmart.payments.channels import ChannelPayment, ChannelRefund

#: How the customer pays: the terminal scans the customer's payment code (`code`), the
#: terminal shows a QR the customer scans (`qr`), the customer's phone page opens the
#: platform's H5 / wap page (`h5`) or pays inside the platform's app (`jsapi`), a card reader
#: (`card`).
PayMode = Literal["code", "qr", "h5", "jsapi", "card"]
NotificationKind = Literal["payment", "refund"]
BillKind = Literal["trade", "fundflow"]


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """One merchant account on one platform, as the channel settings hold it (decrypted).

    What each field holds per platform:
    - `merchant_id`: WeChat `mchid`; Alipay the seller/partner id (`pid`, optional); UnionPay
      `merId`.
    - `app_id`: WeChat `appid`; Alipay `app_id`; UnionPay unused.
    - `private_key_pem`: our signing key (PKCS#8 or PKCS#1 PEM).
    - `private_key_id`: WeChat merchant certificate `serial_no`; UnionPay `certId`; Alipay "".
    - `platform_public_keys`: the platform's verification keys by id (WeChat `Wechatpay-Serial`
      / public-key id, UnionPay cert id, Alipay a single key under ""), two during a rotation.
    - `api_v3_key`: WeChat APIv3 key (AEAD_AES_256_GCM for callbacks); others "".
    """

    channel: str
    account_id: int
    base_url: str
    merchant_id: str
    app_id: str
    private_key_pem: str
    private_key_id: str
    platform_public_keys: Mapping[str, str]
    api_v3_key: str = ""
    #: WeChat: the official account's AppSecret (web authorisation → the payer's openid)
    app_secret: str = ""
    notify_url: str = ""
    #: platform-specific settings that are not secrets (e.g. Alipay `sign_type`)
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PayRequest:
    #: our number for this attempt, unique per merchant account (WeChat/Alipay `out_trade_no`,
    #: UnionPay `orderId`); one order may have several attempts
    out_trade_no: str
    amount_fen: int
    description: str
    mode: PayMode
    #: the customer's payment code (mode `code`)
    auth_code: str | None = None
    client_ip: str = "127.0.0.1"
    expires_at: datetime | None = None
    notify_url: str | None = None
    #: where the phone page returns after paying (mode `h5`)
    return_url: str | None = None
    #: the payer's openid (WeChat JSAPI)
    payer_id: str | None = None
    #: the store's own id at the platform, when it has one (WeChat `store_info.id`)
    store_ref: str | None = None
    #: when the attempt was recorded (our `Payment.created_at`). UnionPay sends it as the
    #: consume's `txnTime`, which a later `query(..., started_at=)` must name again; the other
    #: platforms ignore it.
    started_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RefundSpec:
    out_trade_no: str
    out_refund_no: str
    #: the payment's whole amount (the platforms ask for it)
    total_fen: int
    amount_fen: int
    reason: str = ""
    notify_url: str | None = None
    #: the platform's transaction id, when known
    transaction_id: str | None = None
    #: when the refund was recorded (our `Refund.created_at`): UnionPay's refund `txnTime`,
    #: which `query_refund(..., started_at=)` names again; the others ignore it
    started_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    """A verified (and, for WeChat, decrypted) callback, reduced to what we match on."""

    kind: NotificationKind
    #: WeChat `mchid` / Alipay `app_id` (and `seller_id`) / UnionPay `merId`, to compare with ours
    merchant_id: str
    app_id: str
    out_trade_no: str
    #: pending | succeeded | failed | closed (payments); pending | succeeded | failed (refunds)
    status: str
    #: what the platform says was paid or refunded (see `cumulative_refund`)
    amount_fen: int
    transaction_id: str | None = None
    out_refund_no: str | None = None
    refund_id: str | None = None
    occurred_at: datetime | None = None
    #: the platform's own notification id (WeChat `id`, Alipay `notify_id`), for de-duplication
    notification_id: str | None = None
    #: why a payment or refund failed, in the platform's words (e.g. a WeChat refund's
    #: `ABNORMAL: 退款异常`), for the record and the abnormal-order queue
    failure_reason: str | None = None
    #: a refund notification's `amount_fen` is everything refunded on the payment so far,
    #: not this refund's amount (Alipay's `refund_fee`)
    cumulative_refund: bool = False
    #: the decrypted/decoded document, secrets removed, for the record
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NotificationAnswer:
    """What the platform expects back: WeChat JSON with 200/204 or 4xx/5xx, Alipay `success`."""

    status_code: int
    content_type: str
    body: bytes


class PlatformError(Exception):
    """The platform could not be reached, timed out, or answered something unreadable.

    The outcome of the call is unknown: the caller records that and queries later.
    """

    def __init__(self, message: str, *, code: str = "platform_unavailable") -> None:
        super().__init__(message)
        self.code = code


class NotificationRejected(Exception):
    """A callback failed verification: bad or missing signature, unknown key id, stale
    timestamp, undecryptable resource, or malformed body. Recorded, answered as a failure."""

    def __init__(self, reason: str, *, code: str = "bad_signature") -> None:
        super().__init__(reason)
        self.code = code


class PlatformAccount(Protocol):
    """One merchant account on a platform. Construct with `(config, http=None)`.

    Every method that calls the platform returns a `ChannelPayment` / `ChannelRefund` whose
    `raw` holds the request and response (secrets removed) and raises `PlatformError` when the
    outcome is unknown (network, timeout, a 5xx, a response whose signature fails).
    A platform's business refusal (declined, insufficient funds, order closed) is an answer
    with status `failed` and `failure_reason`, not an exception.
    """

    code: str
    config: ChannelConfig

    async def pay(self, request: PayRequest) -> ChannelPayment:
        """Start a payment. `code`: succeeded / pending (USERPAYING) / failed.
        `qr` and `h5`: pending with `pay_url` (WeChat `code_url` / `h5_url`, Alipay `qr_code`
        / the wap page URL). `jsapi`: pending with `pay_url` holding the prepay id."""
        ...

    async def query(
        self, out_trade_no: str, *, started_at: datetime | None = None
    ) -> ChannelPayment:
        """What became of a payment. `started_at` is the `PayRequest.started_at` it was sent
        with, for a platform that finds a transaction by its start time too (UnionPay's
        `txnTime`); without it such a platform can answer only for what this process sent."""
        ...

    async def close(self, out_trade_no: str) -> ChannelPayment:
        """Close an unpaid payment so it can no longer be paid (WeChat close, Alipay close)."""
        ...

    async def reverse(
        self, out_trade_no: str, *, started_at: datetime | None = None
    ) -> ChannelPayment:
        """Cancel a payment-code payment whatever its state, refunding it if it was paid
        (WeChat reverse, Alipay cancel, UnionPay consume undo)."""
        ...

    async def refund(self, spec: RefundSpec) -> ChannelRefund: ...

    async def query_refund(
        self, out_trade_no: str, out_refund_no: str, *, started_at: datetime | None = None
    ) -> ChannelRefund:
        """What became of a refund; `started_at` is the `RefundSpec.started_at` it was sent
        with (see `query`)."""
        ...

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        """Verify and decode a callback; raises `NotificationRejected`."""
        ...

    def answer_notification(self, ok: bool, message: str = "") -> NotificationAnswer: ...

    async def download_bill(self, bill_date: date, kind: BillKind = "trade") -> bytes | None:
        """The day's bill file as the platform sends it (decompressed), or None for a day with
        no bill (the platform's "no bill" answer)."""
        ...


AccountFactory = Callable[..., PlatformAccount]
_PLATFORMS: dict[str, AccountFactory] = {}


def register_platform(code: str, factory: AccountFactory) -> None:
    _PLATFORMS[code] = factory


def open_account(config: ChannelConfig, **kwargs: Any) -> PlatformAccount:
    """The platform account for `config` (its `channel` picks the implementation)."""
    return _PLATFORMS[config.channel](config, **kwargs)


def platform_codes() -> list[str]:
    return sorted(_PLATFORMS)

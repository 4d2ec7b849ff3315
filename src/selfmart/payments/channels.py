"""The payment seam: what an order asks of a payment channel, and the channels we have.

WeChat Pay, Alipay and bank cards arrive later as further `PaymentChannel` implementations,
registered with `register()`. Until then the `manual` channel records money that a person
collected or gave back by hand (cash, a bank transfer, a platform's merchant app).

A channel never touches the database: the payments service records what it answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from selfmart.errors import ValidationFailed
from selfmart.kit.time import utcnow

#: Modes of a payment the customer makes at the terminal, in person: a payment code scanned
#: (a fresh one every minute) or a bank card in the reader. Such an attempt may wait for the
#: customer (a password, a PIN), blocks another, is reversed when not confirmed in time, and
#: only the customer can make it again (a QR or phone-page payment is started afresh instead).
CUSTOMER_PRESENT_MODES = ("code", "card")

ChannelStatus = Literal["pending", "succeeded", "failed", "unknown"]


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """What an order asks a channel to collect."""

    order_id: int
    order_no: str
    store_id: int
    amount_fen: int
    description: str = ""
    #: channel-specific extras: the manual channel's reference, a platform's auth code...
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChannelPayment:
    """A channel's answer about a payment."""

    status: ChannelStatus
    amount_fen: int
    channel_txn_id: str | None = None
    paid_at: datetime | None = None
    failure_reason: str | None = None
    #: where the customer pays (a QR code URL), for channels that need the customer's action
    pay_url: str | None = None
    #: the platform's own code for a refusal (WeChat `code`, Alipay `sub_code`, UnionPay
    #: `respCode`); `failure_reason` is its message
    failure_code: str | None = None
    #: what was sent and received, secrets removed, for the attempt's record
    raw: dict[str, Any] = field(default_factory=dict)
    #: the platform has no such payment (WeChat ORDER_NOT_EXIST, Alipay ACQ.TRADE_NOT_EXIST,
    #: UnionPay 34): it never arrived, or has not arrived yet
    not_found: bool = False


@dataclass(frozen=True, slots=True)
class RefundRequest:
    refund_id: int
    payment_channel_txn_id: str | None
    payment_amount_fen: int
    amount_fen: int
    reason: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChannelRefund:
    """A channel's answer about a refund: platforms usually say pending and call back."""

    status: ChannelStatus
    channel_refund_id: str | None = None
    completed_at: datetime | None = None
    failure_reason: str | None = None
    failure_code: str | None = None
    #: what was sent and received, secrets removed, for the refund's record
    raw: dict[str, Any] = field(default_factory=dict)
    #: the platform has no such refund (a query's answer): it never took the request
    not_found: bool = False


class PaymentChannel(Protocol):
    #: stable code stored on payments and refunds: manual | wechat | alipay | card
    code: str
    #: whether `query` asks a platform anything (automatic re-query before bothering a person)
    queryable: bool

    async def collect(self, request: PaymentRequest) -> ChannelPayment:
        """Start collecting (platforms) or record money already collected (manual)."""
        ...

    async def query(self, channel_txn_id: str | None, order_no: str) -> ChannelPayment:
        """Ask the platform what became of a payment."""
        ...

    async def refund(self, request: RefundRequest) -> ChannelRefund:
        """Give money back through the channel the payment came in by."""
        ...


class ManualChannel:
    """Money handled by a person: the record is the proof, so it succeeds at once."""

    code = "manual"
    queryable = False

    async def collect(self, request: PaymentRequest) -> ChannelPayment:
        reference = request.extra.get("reference")
        return ChannelPayment(
            status="succeeded",
            amount_fen=request.amount_fen,
            channel_txn_id=str(reference) if reference else None,
            paid_at=utcnow(),
        )

    async def query(self, channel_txn_id: str | None, order_no: str) -> ChannelPayment:
        # Nothing to ask: a manual payment is whatever the person recorded.
        return ChannelPayment(status="unknown", amount_fen=0, channel_txn_id=channel_txn_id)

    async def refund(self, request: RefundRequest) -> ChannelRefund:
        reference = request.extra.get("reference")
        return ChannelRefund(
            status="succeeded",
            channel_refund_id=str(reference) if reference else None,
            completed_at=utcnow(),
        )


_CHANNELS: dict[str, PaymentChannel] = {}

#: Channels paid through a merchant account on a platform (`payments.accounts`): their
#: payments are asked about and refunded through that account, not through `get()`.
PLATFORM_CHANNELS = frozenset({"wechat", "alipay", "card"})


def register(channel: PaymentChannel) -> None:
    _CHANNELS[channel.code] = channel


def get(code: str) -> PaymentChannel:
    try:
        return _CHANNELS[code]
    except KeyError:
        raise ValidationFailed(
            f"Unknown payment channel {code!r}", field="channel", available=sorted(_CHANNELS)
        ) from None


def codes() -> list[str]:
    return sorted(_CHANNELS)


register(ManualChannel())

"""Money in and out of an order: payments and refunds, through a payment channel; the
merchant accounts on the payment platforms (channel settings) and every callback they send."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from selfmart.db import Base, BigIntId, JSONDoc
from selfmart.models.mixins import Timestamps


class PaymentAccount(Timestamps, Base):
    """One merchant account on a payment platform: chain-wide (no store) or one store's,
    which overrides the chain's for that store and channel. Secrets are sealed with
    `kit.crypto` under the master key named by `key_version`."""

    __tablename__ = "payment_accounts"
    __table_args__ = (
        Index(
            "uq_payment_accounts_store_channel",
            "store_id",
            "channel",
            unique=True,
            postgresql_where=text("store_id IS NOT NULL"),
            sqlite_where=text("store_id IS NOT NULL"),
        ),
        Index(
            "uq_payment_accounts_chain_channel",
            "channel",
            unique=True,
            postgresql_where=text("store_id IS NULL"),
            sqlite_where=text("store_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id", ondelete="RESTRICT"))
    #: wechat | alipay | card
    channel: Mapped[str] = mapped_column(String(16))
    #: a disabled store account switches the channel off for that store
    enabled: Mapped[bool] = mapped_column(default=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    base_url: Mapped[str] = mapped_column(String(300))
    merchant_id: Mapped[str] = mapped_column(String(64))
    app_id: Mapped[str] = mapped_column(String(64), default="")
    #: WeChat certificate serial_no / UnionPay certId (not a secret)
    private_key_id: Mapped[str] = mapped_column(String(128), default="")
    private_key_encrypted: Mapped[str] = mapped_column(Text)
    api_v3_key_encrypted: Mapped[str | None] = mapped_column(Text)
    #: WeChat: the official account's AppSecret (web authorisation for JSAPI payments), sealed
    app_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    #: {key id: PEM public key or certificate}; two during a platform's key rotation
    platform_public_keys: Mapped[dict[str, str]] = mapped_column(JSONDoc, default=dict)
    #: None: {public_base_url}/api/payments/notify/{channel}/{id}
    notify_url: Mapped[str | None] = mapped_column(String(300))
    extra: Mapped[dict[str, str]] = mapped_column(JSONDoc, default=dict)
    #: a second successful payment of one order is refunded without waiting for a person
    auto_refund_duplicates: Mapped[bool] = mapped_column(default=False)
    #: `kit.crypto.key_version` of the master key the secrets are sealed under
    key_version: Mapped[str] = mapped_column(String(16))


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        # A platform's transaction is recorded once, however often its callback arrives.
        UniqueConstraint("channel", "channel_txn_id"),
        # Our number for an attempt is unique per merchant account (the platforms require it).
        UniqueConstraint("account_id", "out_trade_no"),
        # A terminal's retry of the same attempt finds the first one.
        UniqueConstraint("order_id", "attempt_id"),
        Index("ix_payments_order", "order_id"),
        Index("ix_payments_store_created", "store_id", "created_at"),
        Index("ix_payments_status_expires", "status", "expires_at"),
        # the console's newest-first list (pay_0003)
        Index("ix_payments_created", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"))
    store_id: Mapped[int]
    #: manual | wechat | alipay | card
    channel: Mapped[str] = mapped_column(String(16))
    #: pending | succeeded | failed
    status: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int]
    channel_txn_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    succeeded_at: Mapped[datetime | None]
    failure_reason: Mapped[str | None] = mapped_column(String(300))
    note: Mapped[str | None] = mapped_column(String(500))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(100), default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    #: the merchant account a platform payment goes through (None: manual)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("payment_accounts.id", ondelete="RESTRICT")
    )
    #: code | qr | h5 | jsapi | card (None: manual)
    mode: Mapped[str | None] = mapped_column(String(8))
    out_trade_no: Mapped[str | None] = mapped_column(String(64))
    #: the terminal's id for this attempt (idempotency, like intake's)
    attempt_id: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]
    failure_code: Mapped[str | None] = mapped_column(String(64))
    #: the last exchange with the platform, secrets removed
    raw_request: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    raw_response: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (
        UniqueConstraint("channel", "channel_refund_id"),
        UniqueConstraint("account_id", "out_refund_no"),
        Index("ix_refunds_order", "order_id"),
        Index("ix_refunds_store_created", "store_id", "created_at"),
        Index("ix_refunds_payment", "payment_id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"))
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id", ondelete="RESTRICT"))
    store_id: Mapped[int]
    channel: Mapped[str] = mapped_column(String(16))
    #: pending | succeeded | failed
    status: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int]
    reason: Mapped[str] = mapped_column(String(300))
    note: Mapped[str | None] = mapped_column(String(500))
    channel_refund_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    failure_reason: Mapped[str | None] = mapped_column(String(300))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(100), default="")
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("payment_accounts.id", ondelete="RESTRICT")
    )
    out_refund_no: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime | None]
    failure_code: Mapped[str | None] = mapped_column(String(64))
    raw_request: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    raw_response: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)

    lines: Mapped[list[RefundLine]] = relationship(lazy="raise", order_by="RefundLine.id")


class RefundLine(Base):
    __tablename__ = "refund_lines"
    __table_args__ = (Index("ix_refund_lines_refund", "refund_id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    refund_id: Mapped[int] = mapped_column(ForeignKey("refunds.id", ondelete="CASCADE"))
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id", ondelete="RESTRICT"))
    quantity: Mapped[int]
    amount_fen: Mapped[int]
    #: restock (resellable, back into stock) | write_off (not resellable)
    disposition: Mapped[str] = mapped_column(String(16))


class PaymentCallback(Base):
    """Every callback a platform sent, verified or not, with what we made of it and why."""

    __tablename__ = "payment_callbacks"
    __table_args__ = (
        Index("ix_payment_callbacks_received", "received_at"),
        Index("ix_payment_callbacks_account_received", "account_id", "received_at"),
        Index("ix_payment_callbacks_payment", "payment_id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("payment_accounts.id", ondelete="RESTRICT")
    )
    received_at: Mapped[datetime]
    #: payment | refund (None when it could not be read)
    kind: Mapped[str | None] = mapped_column(String(16))
    verified: Mapped[bool] = mapped_column(default=False)
    #: applied | duplicate | rejected | mismatch | unmatched | ignored
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(300))
    notification_id: Mapped[str | None] = mapped_column(String(128))
    out_trade_no: Mapped[str | None] = mapped_column(String(64))
    out_refund_no: Mapped[str | None] = mapped_column(String(64))
    transaction_id: Mapped[str | None] = mapped_column(String(64))
    #: the platform's status and amount, as it said them
    status: Mapped[str | None] = mapped_column(String(16))
    amount_fen: Mapped[int | None]
    order_id: Mapped[int | None] = mapped_column(BigIntId)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id", ondelete="RESTRICT"))
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("refunds.id", ondelete="RESTRICT"))
    #: the headers that matter for verification and the body as received (WeChat's resource
    #: stays encrypted in it); `decoded` is the verified document, secrets removed
    headers: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    body: Mapped[str] = mapped_column(Text, default="")
    decoded: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)

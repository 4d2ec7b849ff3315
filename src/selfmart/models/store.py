"""Stores of the chain and the self-checkout terminals inside them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from selfmart.db import Base
from selfmart.models.mixins import Timestamps


class Store(Timestamps, Base):
    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(300), default="")
    city: Mapped[str] = mapped_column(String(64), default="", index=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    #: "24h", or "HH:MM-HH:MM" in the store's zone (may wrap past midnight).
    opening_hours: Mapped[str] = mapped_column(String(32), default="24h")
    #: active | suspended | closed
    status: Mapped[str] = mapped_column(String(16), default="active")
    #: Unmanned stores book a sale even when the ledger says the shelf is empty.
    allow_negative_stock: Mapped[bool] = mapped_column(default=True)
    #: Refund a second successful payment of an order at once (True) or leave it to a person
    #: as an amount_mismatch issue (False); None follows the payment account's setting.
    auto_refund_duplicates: Mapped[bool | None] = mapped_column(default=None)


class Terminal(Timestamps, Base):
    __tablename__ = "terminals"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    model: Mapped[str] = mapped_column(String(100), default="")
    #: pending (awaiting activation) | active | disabled
    status: Mapped[str] = mapped_column(String(16), default="pending")
    last_seen_at: Mapped[datetime | None]
    last_ip: Mapped[str | None] = mapped_column(String(64))
    app_version: Mapped[str | None] = mapped_column(String(64))
    #: What the last heartbeat said (docs/terminal-protocol.md §4): ready | selling |
    #: offline_mode | maintenance | fault; orders waiting to be sent; printer and scanner state.
    reported_status: Mapped[str | None] = mapped_column(String(16))
    unsent_orders: Mapped[int | None]
    printer_state: Mapped[str | None] = mapped_column(String(16))
    scanner_state: Mapped[str | None] = mapped_column(String(16))
    activation_code_hash: Mapped[str | None] = mapped_column(String(128), unique=True)
    activation_expires_at: Mapped[datetime | None]
    #: Set when the current activation code has been exchanged for a key (codes are single use).
    activation_used_at: Mapped[datetime | None]
    #: Wrong activation codes tried since the current code was issued; at the limit, locked.
    activation_failed_attempts: Mapped[int] = mapped_column(default=0, server_default="0")

    store: Mapped[Store] = relationship(lazy="raise")


class TerminalKey(Base):
    """A terminal's HMAC key. After rotation the old key lives until `expires_at`."""

    __tablename__ = "terminal_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64), unique=True)
    terminal_id: Mapped[int] = mapped_column(
        ForeignKey("terminals.id", ondelete="CASCADE"), index=True
    )
    #: The shared secret, encrypted at rest with a key derived from SELFMART_SECRET_KEY.
    secret_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class TerminalNonce(Base):
    """Nonces seen within the clock-skew window; the primary key refuses a replay."""

    __tablename__ = "terminal_nonces"

    terminal_id: Mapped[int] = mapped_column(
        ForeignKey("terminals.id", ondelete="CASCADE"), primary_key=True
    )
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(index=True)

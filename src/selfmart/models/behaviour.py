"""The business log: what customers and payments did at the terminals (scans, removals,
checkouts, abandoned baskets, payment attempts), one row per event a terminal reported.

Columns analytics reads (docs/terminal-protocol.md §5i): store_id, terminal_id, occurred_at
(the terminal's clock, UTC), kind, session_id (one shopping session), order_no, barcode, qty,
amount_fen, method, reason, and `data` for anything else the terminal sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from selfmart.db import Base, BigIntId, JSONDoc


class BehaviourEvent(Base):
    __tablename__ = "behaviour_events"
    __table_args__ = (
        # a resent batch doubles nothing: the terminal's event id is its idempotency key
        UniqueConstraint("terminal_id", "event_id"),
        Index("ix_behaviour_events_store_occurred", "store_id", "occurred_at"),
        Index("ix_behaviour_events_occurred_at", "occurred_at"),
        Index("ix_behaviour_events_session", "session_id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"))
    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id"))
    #: the terminal's own id for the event (unique per terminal)
    event_id: Mapped[str] = mapped_column(String(64))
    #: session_start | scan | removal | checkout | abandonment | payment_attempt |
    #: payment_failure
    kind: Mapped[str] = mapped_column(String(32))
    #: when it happened, by the terminal's clock
    occurred_at: Mapped[datetime]
    #: when the server stored it
    received_at: Mapped[datetime]
    session_id: Mapped[str | None] = mapped_column(String(64))
    order_no: Mapped[str | None] = mapped_column(String(32))
    barcode: Mapped[str | None] = mapped_column(String(64))
    qty: Mapped[int | None]
    amount_fen: Mapped[int | None]
    #: a payment's method: wechat | alipay | unionpay | card | other
    method: Mapped[str | None] = mapped_column(String(16))
    #: why a payment failed or a basket was abandoned, as the terminal said
    reason: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)

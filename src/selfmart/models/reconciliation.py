"""Reconciliation (对账): one run per merchant account, bill date and bill kind, the bill's
lines matched against our payments and refunds, and the differences people work through."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from selfmart.db import Base, BigIntId, JSONDoc


class ReconciliationRun(Base):
    """The latest reconciliation of one bill; a rerun replaces its items in one transaction."""

    __tablename__ = "reconciliation_runs"
    __table_args__ = (
        UniqueConstraint("account_id", "bill_date", "kind"),
        Index("ix_reconciliation_runs_date", "bill_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("payment_accounts.id", ondelete="RESTRICT"))
    channel: Mapped[str] = mapped_column(String(16))
    bill_date: Mapped[date]
    #: trade | fundflow
    kind: Mapped[str] = mapped_column(String(16))
    #: reconciled | no_bill | refused (a first download that could not be read)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    #: why the last download was refused (corrupt, truncated, a broken line, not our merchant);
    #: a refusal after a good run keeps that run's result
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_error_at: Mapped[datetime | None]
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    file_size: Mapped[int | None]
    line_count: Mapped[int] = mapped_column(default=0)
    difference_count: Mapped[int] = mapped_column(default=0)
    #: the bill's lines added up (payments, refunds, fees charged; net = gross - refunds - fees)
    bill_gross_fen: Mapped[int] = mapped_column(default=0)
    bill_refund_fen: Mapped[int] = mapped_column(default=0)
    bill_fee_fen: Mapped[int] = mapped_column(default=0)
    #: the platform's own totals (the trailer / summary line), None where the bill has none
    trailer_count: Mapped[int | None]
    trailer_gross_fen: Mapped[int | None]
    trailer_refund_fen: Mapped[int | None]
    trailer_fee_fen: Mapped[int | None]
    #: our records of the same money (payments and refunds this run looked at)
    our_gross_fen: Mapped[int] = mapped_column(default=0)
    our_refund_fen: Mapped[int] = mapped_column(default=0)
    #: the fees the configured rate gives (None: no rate configured)
    expected_fee_fen: Mapped[int | None]
    actor_name: Mapped[str] = mapped_column(String(100), default="")


class ReconciliationItem(Base):
    """One bill line, or one of our records the bill does not have, with its class."""

    __tablename__ = "reconciliation_items"
    __table_args__ = (
        Index("ix_reconciliation_items_run", "run_id"),
        Index("ix_reconciliation_items_payment", "payment_id"),
        Index("ix_reconciliation_items_refund", "refund_id"),
        Index("ix_reconciliation_items_state", "state", "difference"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("reconciliation_runs.id", ondelete="CASCADE"))
    #: matched | ours_only | platform_only | amount_differs | status_differs | refund_differs
    #: | fee_differs | duplicate_line
    difference: Mapped[str] = mapped_column(String(16))
    #: ok (matched) | pending (ours only, held until the next day's bill is in) | open |
    #: carried (found in a later day's bill) | resolved
    state: Mapped[str] = mapped_column(String(16))
    #: payment | refund
    kind: Mapped[str] = mapped_column(String(8))
    #: the bill's line number (None: ours only)
    line_no: Mapped[int | None]
    transaction_id: Mapped[str | None] = mapped_column(String(64))
    out_trade_no: Mapped[str | None] = mapped_column(String(64))
    out_refund_no: Mapped[str | None] = mapped_column(String(64))
    refund_ref: Mapped[str | None] = mapped_column(String(64))
    payment_id: Mapped[int | None] = mapped_column(BigIntId)
    refund_id: Mapped[int | None] = mapped_column(BigIntId)
    order_id: Mapped[int | None] = mapped_column(BigIntId)
    store_id: Mapped[int | None]
    our_amount_fen: Mapped[int | None]
    our_status: Mapped[str | None] = mapped_column(String(16))
    bill_amount_fen: Mapped[int | None]
    bill_status: Mapped[str | None] = mapped_column(String(16))
    bill_fee_fen: Mapped[int | None]
    expected_fee_fen: Mapped[int | None]
    occurred_at: Mapped[datetime | None]
    #: what differs, in words
    detail: Mapped[str] = mapped_column(String(300), default="")
    #: the bill line as the platform wrote it (column -> value)
    line: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    #: accept | refund_customer | manual_payment
    resolution: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(String(500))
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    resolved_at: Mapped[datetime | None]
    #: when people were told the difference was still open a day on (told once)
    alerted_at: Mapped[datetime | None]


class ReconciliationFeeRate(Base):
    """The fee rate agreed with the platform for one merchant account, in basis points."""

    __tablename__ = "reconciliation_fee_rates"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("payment_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    rate_bp: Mapped[int]
    updated_at: Mapped[datetime]

"""Settlement (结算) with suppliers: a statement per supplier and period, what is owed line by
line (goods received or, for consignment, goods sold; less returns and shrinkage), its review,
approval (frozen from then on) and payment."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from selfmart.db import Base, BigIntId


class SupplierStatement(Base):
    """One supplier's account for [period_start, period_end] (dates in the chain's zone).

    draft -> reviewed -> approved -> paid; a draft or reviewed statement can be regenerated
    or deleted, an approved one is frozen: what happens after it goes into the next period.
    """

    __tablename__ = "supplier_statements"
    __table_args__ = (
        Index("ix_supplier_statements_supplier_period", "supplier_id", "period_start"),
        Index("ix_supplier_statements_status", "status"),
        CheckConstraint("period_end >= period_start", name="period_ordered"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id", ondelete="RESTRICT"))
    period_start: Mapped[date]
    period_end: Mapped[date]
    #: draft | reviewed | approved | paid
    status: Mapped[str] = mapped_column(String(16), default="draft")
    #: the supplier's settings when the statement was made: received | consignment
    basis: Mapped[str] = mapped_column(String(16))
    shrinkage_borne: Mapped[bool] = mapped_column(default=False)
    #: totals of the lines, in fen: goods (received or sold) less returns and shrinkage
    goods_fen: Mapped[int] = mapped_column(default=0)
    returns_fen: Mapped[int] = mapped_column(default=0)
    shrinkage_fen: Mapped[int] = mapped_column(default=0)
    total_fen: Mapped[int] = mapped_column(default=0)
    #: the highest ledger movement id the statement has seen: a movement of an earlier,
    #: frozen period booked after it is counted in the next statement (`late` lines)
    movement_watermark: Mapped[int] = mapped_column(BigIntId, default=0)
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100), default="")
    generated_at: Mapped[datetime]
    reviewed_at: Mapped[datetime | None]
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
    approved_at: Mapped[datetime | None]
    approved_by: Mapped[str | None] = mapped_column(String(100))
    paid_at: Mapped[datetime | None]
    paid_by: Mapped[str | None] = mapped_column(String(100))
    payment_reference: Mapped[str | None] = mapped_column(String(100))

    lines: Mapped[list[SupplierStatementLine]] = relationship(
        lazy="raise",
        cascade="all, delete-orphan",
        order_by="SupplierStatementLine.id",
    )


class SupplierStatementLine(Base):
    """One product's units of one kind at one unit cost; `amount_fen` is signed: what we owe
    is positive, returns and shrinkage negative."""

    __tablename__ = "supplier_statement_lines"
    __table_args__ = (Index("ix_supplier_statement_lines_statement", "statement_id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    statement_id: Mapped[int] = mapped_column(
        ForeignKey("supplier_statements.id", ondelete="CASCADE")
    )
    #: received | sold | returned | shrinkage
    kind: Mapped[str] = mapped_column(String(16))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    product_name: Mapped[str] = mapped_column(String(200), default="")
    quantity: Mapped[int]
    unit_cost_fen: Mapped[int]
    amount_fen: Mapped[int]
    #: booked after an earlier statement of the supplier was made, for a date in its period
    late: Mapped[bool] = mapped_column(default=False)

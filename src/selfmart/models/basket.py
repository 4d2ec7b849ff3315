"""Frequently bought together: each analysis run with its parameters, and what it found (the
frequent products and the association rules), kept so that reading never recomputes."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from selfmart.db import Base, BigIntId, JSONDoc


class BasketRun(Base):
    """One analysis: the baskets of a store (or of every store) over a window of local days,
    mined with the given thresholds."""

    __tablename__ = "analytics_basket_runs"
    __table_args__ = (Index("ix_analytics_basket_runs_store", "store_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    #: null: every store of the chain
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    #: first and last local day (inclusive), in each store's own zone
    first_day: Mapped[date]
    last_day: Mapped[date]
    min_support: Mapped[float] = mapped_column(Float)
    min_confidence: Mapped[float] = mapped_column(Float)
    min_lift: Mapped[float] = mapped_column(Float)
    #: largest itemset (2: pairs; 3: pairs and triples; ...)
    max_len: Mapped[int]
    #: manual | nightly
    trigger: Mapped[str] = mapped_column(String(16))
    #: queued | running | succeeded | failed
    status: Mapped[str] = mapped_column(String(16))
    job_id: Mapped[int | None] = mapped_column(BigIntId)
    baskets: Mapped[int] = mapped_column(default=0)
    #: distinct products in the baskets
    products: Mapped[int] = mapped_column(default=0)
    itemsets: Mapped[int] = mapped_column(default=0)
    rules: Mapped[int] = mapped_column(default=0)
    #: more rules passed the thresholds than are kept (the strongest by lift are kept)
    truncated: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[int | None]
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class BasketItem(Base):
    """A frequent product of a run: the baskets it is in."""

    __tablename__ = "analytics_basket_items"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("analytics_basket_runs.id", ondelete="CASCADE"), primary_key=True
    )
    product_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    count: Mapped[int]
    support: Mapped[float] = mapped_column(Float)


class BasketRule(Base):
    """A rule antecedent -> consequent of a run (product id lists, sorted)."""

    __tablename__ = "analytics_basket_rules"
    __table_args__ = (
        Index("ix_analytics_basket_rules_run_lift", "run_id", "lift"),
        Index("ix_analytics_basket_rules_run_pair", "run_id", "size", "antecedent_first"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("analytics_basket_runs.id", ondelete="CASCADE"))
    #: products in the rule (antecedent and consequent together)
    size: Mapped[int]
    antecedent: Mapped[list[int]] = mapped_column(JSONDoc)
    consequent: Mapped[list[int]] = mapped_column(JSONDoc)
    #: the antecedent's first product: for a pair rule, the product it is about
    antecedent_first: Mapped[int]
    #: baskets with every product of the rule, of the antecedent, of the consequent
    count: Mapped[int]
    antecedent_count: Mapped[int]
    consequent_count: Mapped[int]
    support: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    lift: Mapped[float] = mapped_column(Float)
    #: the rule's products in order (p3, p4 null for smaller rules), to filter by product
    p1: Mapped[int]
    p2: Mapped[int]
    p3: Mapped[int | None]
    p4: Mapped[int | None]

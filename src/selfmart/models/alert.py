"""Operational alerting: the rules an operator sets and the alerts they raise."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from selfmart.db import Base, JSONDoc
from selfmart.models.mixins import Timestamps

#: statuses of an alert that is still going on (one per rule and subject at a time)
LIVE_STATUSES = ("pending", "open", "acknowledged")
_LIVE = "status IN ('pending', 'open', 'acknowledged')"


class AlertRule(Timestamps, Base):
    """Watch one metric: when `metric comparison threshold` holds for `duration_seconds`, raise
    an alert and tell the recipients; tell them again when it clears."""

    __tablename__ = "alert_rules"
    __table_args__ = (
        CheckConstraint("comparison IN ('gt', 'gte', 'lt', 'lte')", name="comparison_valid"),
        CheckConstraint("severity IN ('info', 'warning', 'critical')", name="severity_valid"),
        CheckConstraint("duration_seconds >= 0", name="duration_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    #: one of selfmart.alerts.metrics.METRICS
    metric: Mapped[str] = mapped_column(String(32))
    #: gt | gte | lt | lte
    comparison: Mapped[str] = mapped_column(String(4))
    threshold: Mapped[float] = mapped_column(Float)
    #: how long the condition must hold before the alert fires (0: at once)
    duration_seconds: Mapped[int] = mapped_column(default=0)
    #: for rates counted over a window (payment failures)
    window_minutes: Mapped[int] = mapped_column(default=15)
    #: info | warning | critical
    severity: Mapped[str] = mapped_column(String(8), default="warning")
    #: None: the whole chain
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    #: in_app, email, sms, ... (notify channels)
    channels: Mapped[list[Any]] = mapped_column(JSONDoc, default=list)
    user_ids: Mapped[list[Any]] = mapped_column(JSONDoc, default=list)
    role_ids: Mapped[list[Any]] = mapped_column(JSONDoc, default=list)
    #: tell again every this many minutes while the alert is open and unacknowledged (None: once)
    renotify_minutes: Mapped[int | None]
    enabled: Mapped[bool] = mapped_column(default=True)
    #: when a person deleted the rule: it no longer runs or shows among the rules, but the
    #: row stays so the history of its alerts keeps its name and condition
    archived_at: Mapped[datetime | None]


class Alert(Base):
    """One episode of a rule's condition holding for one subject (the chain, a store, a
    terminal). `pending` while the condition has held for less than the rule's duration (not
    shown, deleted if it clears); then `open` (fired, told), `acknowledged` by a person, and
    `resolved` when the condition cleared or a person resolved it."""

    __tablename__ = "alerts"
    __table_args__ = (
        # Deduplication: one live alert per rule and subject, whatever runs at once.
        Index(
            "uq_alerts_live",
            "rule_id",
            "subject",
            unique=True,
            postgresql_where=text(_LIVE),
            sqlite_where=text(_LIVE),
        ),
        Index("ix_alerts_status_fired", "status", "fired_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    #: what the reading is about: "chain", "store:3", "terminal:12"
    subject: Mapped[str] = mapped_column(String(32))
    #: the subject in words ("上海徐汇店", "T-0012 收银机 1")
    subject_label: Mapped[str] = mapped_column(String(200), default="")
    store_id: Mapped[int | None]
    #: pending | open | acknowledged | resolved
    status: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(8))
    #: when the condition was first seen holding
    since: Mapped[datetime]
    fired_at: Mapped[datetime | None]
    #: the reading when it fired, and the latest reading
    fired_value: Mapped[float | None] = mapped_column(Float)
    last_value: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    resolved_at: Mapped[datetime | None]
    #: None: resolved by itself (the condition cleared)
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(String(500))
    last_notified_at: Mapped[datetime | None]
    notifications: Mapped[int] = mapped_column(default=0)

"""Alert rules and alerts as the console sends and reads them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from selfmart.kit.ids import Id
from selfmart.kit.schema import InSchema, Schema

MetricName = Literal[
    "cpu_percent",
    "memory_percent",
    "disk_percent",
    "error_rate",
    "p95_ms",
    "job_backlog",
    "job_lag_seconds",
    "terminal_offline_minutes",
    "store_no_orders_minutes",
    "payment_failure_rate",
    "reconciliation_open",
]
Comparison = Literal["gt", "gte", "lt", "lte"]
Severity = Literal["info", "warning", "critical"]
AlertStatus = Literal["open", "acknowledged", "resolved"]
Name = Annotated[str, Field(min_length=1, max_length=100)]
Threshold = Annotated[float, Field(ge=-1e12, le=1e12, allow_inf_nan=False)]
#: up to a week
Duration = Annotated[int, Field(ge=0, le=7 * 24 * 3600)]
Window = Annotated[int, Field(ge=1, le=24 * 60)]
Renotify = Annotated[int, Field(ge=5, le=7 * 24 * 60)]
Channel = Annotated[str, Field(min_length=1, max_length=16)]
Note = Annotated[str, Field(max_length=500)]


class AlertRuleCreate(InSchema):
    name: Name
    metric: MetricName
    comparison: Comparison = "gte"
    threshold: Threshold
    #: seconds the condition must hold before the alert fires
    duration_seconds: Duration = 0
    #: for payment_failure_rate: the window attempts are counted over
    window_minutes: Window = 15
    severity: Severity = "warning"
    #: None: the whole chain
    store_id: Id | None = None
    channels: Annotated[list[Channel], Field(min_length=1, max_length=8)] = ["in_app", "email"]
    user_ids: Annotated[list[Id], Field(max_length=100)] = []
    role_ids: Annotated[list[Id], Field(max_length=20)] = []
    #: tell again every this many minutes while open and unacknowledged (None: once)
    renotify_minutes: Renotify | None = None
    enabled: bool = True


class AlertRuleUpdate(InSchema):
    name: Name | None = None
    metric: MetricName | None = None
    comparison: Comparison | None = None
    threshold: Threshold | None = None
    duration_seconds: Duration | None = None
    window_minutes: Window | None = None
    severity: Severity | None = None
    store_id: Id | None = None
    channels: Annotated[list[Channel], Field(min_length=1, max_length=8)] | None = None
    user_ids: Annotated[list[Id], Field(max_length=100)] | None = None
    role_ids: Annotated[list[Id], Field(max_length=20)] | None = None
    renotify_minutes: Renotify | None = None
    enabled: bool | None = None


class AlertRuleRead(Schema):
    id: int
    name: str
    metric: str
    comparison: str
    threshold: float
    duration_seconds: int
    window_minutes: int
    severity: str
    store_id: int | None
    channels: list[str]
    user_ids: list[int]
    role_ids: list[int]
    renotify_minutes: int | None
    enabled: bool
    created_at: datetime
    updated_at: datetime
    #: alerts of this rule open or acknowledged now
    live_alerts: int = 0


class AlertMetricInfo(Schema):
    name: str
    unit: str
    #: chain | store | terminal: what one reading is about
    per: str


class SystemAlertRead(Schema):
    id: int
    rule_id: int
    rule_name: str
    #: the rule was deleted since: its alerts are kept, under its last name and condition
    rule_archived: bool = False
    metric: str
    comparison: str
    threshold: float
    subject: str
    subject_label: str
    store_id: int | None
    status: str
    severity: str
    since: datetime
    fired_at: datetime | None
    fired_value: float | None
    last_value: float
    last_seen_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    note: str | None
    notifications: int


class AlertNote(InSchema):
    note: Note | None = None

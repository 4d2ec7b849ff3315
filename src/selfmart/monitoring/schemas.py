"""What the console's monitoring page reads."""

from __future__ import annotations

from datetime import datetime

from selfmart.kit.schema import Schema


class HostRead(Schema):
    cpu_percent: float
    cpu_count: int
    load_average: list[float]
    memory_total_bytes: int
    memory_used_bytes: int
    memory_percent: float
    disk_path: str
    disk_total_bytes: int
    disk_used_bytes: int
    disk_percent: float
    network_sent_bytes: int
    network_received_bytes: int


class DatabaseRead(Schema):
    dialect: str
    size_bytes: int | None
    #: connections to this database (PostgreSQL: every client's; SQLite: this process's pool)
    connections: int | None
    pool_checked_out: int | None


class RouteTiming(Schema):
    method: str
    route: str
    requests: int
    mean_ms: float


class JobsRead(Schema):
    queue_depth: int
    lag_seconds: float
    failed_events: int
    orders_per_minute: float
    terminals_online: int


class RecentError(Schema):
    at: datetime
    source: str
    kind: str
    message: str


class MachineRead(Schema):
    """One machine's latest sample (monitoring/machines.py)."""

    name: str
    #: when it was taken
    at: datetime
    #: the machine that answered this request
    this: bool
    host: HostRead
    #: the requests its API processes answered in the last `window_seconds` (0: since they
    #: started, when this machine has published no window yet)
    window_seconds: float
    requests: int
    errors: int
    #: the 95th percentile of their latency (None: no request in the window)
    p95_ms: float | None


class MonitoringOverview(Schema):
    at: datetime
    version: str
    host: HostRead
    #: every machine that published a sample (with Redis), or this one alone
    machines: list[MachineRead]
    database: DatabaseRead
    slowest_routes: list[RouteTiming]
    jobs: JobsRead
    recent_errors: list[RecentError]

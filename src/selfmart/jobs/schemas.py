"""Job run as the console sees it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from selfmart.kit.schema import Schema


class JobRead(Schema):
    id: int
    kind: str
    status: Literal["queued", "running", "succeeded", "failed"]
    progress: int
    total: int | None
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None

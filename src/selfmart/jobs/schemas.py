"""Job run as the console sees it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from selfmart.errors import ErrorDetail
from selfmart.kit.schema import Schema


class JobError(Schema):
    """Why a run failed: a stable error code and its details, worded by the console in the
    reader's language (never the server's text)."""

    code: str
    details: list[ErrorDetail] = []


class JobRead(Schema):
    id: int
    kind: str
    status: Literal["queued", "running", "succeeded", "failed"]
    progress: int
    total: int | None
    result: dict[str, Any] | None
    error: JobError | None = Field(validation_alias="failure")
    created_at: datetime
    finished_at: datetime | None

"""Job runs: the progress record of a long background job, polled by the console."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from selfmart.db import Base, BigIntId, JSONDoc


class JobRun(Base):
    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_created_by", "created_by", "created_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    #: the registered job name, e.g. "catalog.import_products"
    kind: Mapped[str] = mapped_column(String(64), index=True)
    #: queued | running | succeeded | failed
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[int] = mapped_column(default=0)
    total: Mapped[int | None]
    #: the job's input beyond its id (e.g. an uploaded file's id and the chosen options)
    params: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    #: text of failures recorded before error codes were (no longer written: see error_code)
    error: Mapped[str | None] = mapped_column(Text)
    #: why the run failed, as a stable code the console translates (an AppError's code, or
    #: internal_error for anything unexpected, whose text goes to the server log only)
    error_code: Mapped[str | None] = mapped_column(String(64))
    #: the AppError's details ({"field", "reason", "message"} each), for the console's wording
    error_details: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONDoc)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    @property
    def failure(self) -> dict[str, Any] | None:
        """The failure as the console reads it: {"code", "details"}, or None."""
        if self.error_code is None:
            return None
        return {"code": self.error_code, "details": self.error_details or []}

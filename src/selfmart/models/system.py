"""System flags: small pieces of runtime state every process reads (maintenance mode)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from selfmart.db import Base, JSONDoc


class SystemFlag(Base):
    """One named flag and its value; changed by a person (audited), read by every process."""

    __tablename__ = "system_flags"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str | None] = mapped_column(String(100))

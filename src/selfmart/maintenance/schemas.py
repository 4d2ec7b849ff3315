"""Maintenance mode and the About page."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from selfmart.kit.schema import InSchema, Schema


class MaintenanceRead(Schema):
    on: bool
    message: str = Field(description="shown to console users in the banner")
    since: datetime | None = Field(description="when it was last turned on or off")
    by: str | None = Field(description="who turned it on or off")


class MaintenanceChange(InSchema):
    on: bool
    message: str = Field("", max_length=200)


class AboutRead(Schema):
    version: str
    python: str
    database: str = Field(description="sqlite or postgresql")
    migration_current: list[str] = Field(description="the revisions the database is at")
    migration_head: list[str] = Field(description="the revisions this code expects")
    migrations_up_to_date: bool
    redis: bool = Field(description="jobs and caches shared through Redis")
    maintenance: MaintenanceRead

"""The console's view of the backups."""

from __future__ import annotations

from datetime import datetime

from selfmart.kit.schema import Schema


class BackupRead(Schema):
    name: str
    size_bytes: int
    created_at: datetime


class BackupList(Schema):
    items: list[BackupRead]
    directory: str
    keep: int
    s3_bucket: str | None

"""The message centre's shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from selfmart.kit.schema import Schema


class MessageRead(Schema):
    id: int
    kind: str
    title: str
    body: str
    link: str | None
    data: dict[str, Any]
    store_id: int | None
    created_at: datetime
    read_at: datetime | None


class UnreadCount(Schema):
    count: int


class ReadAllResult(Schema):
    updated: int

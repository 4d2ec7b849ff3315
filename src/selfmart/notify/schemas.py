"""The message centre's shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import model_validator

from selfmart.kit.schema import Schema


class PhraseRead(Schema):
    #: key under the console's messages.texts
    key: str
    params: dict[str, Any]


class MessageTextRead(Schema):
    title: PhraseRead
    lines: list[PhraseRead]
    #: lines left out of a long list
    more: int = 0


class MessageRead(Schema):
    id: int
    kind: str
    #: in Chinese, as the outside channels carry it; `text` words it in the reader's language
    title: str
    body: str
    #: the title and lines as keys and parameters, when the sender gave them
    text: MessageTextRead | None = None
    link: str | None
    data: dict[str, Any]
    store_id: int | None
    created_at: datetime
    read_at: datetime | None

    @model_validator(mode="before")
    @classmethod
    def _text_from_data(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return value
        data = dict(getattr(value, "data", None) or {})
        text = data.pop("text", None)
        return {
            name: getattr(value, name)
            for name in ("id", "kind", "title", "body", "link", "store_id", "created_at", "read_at")
        } | {"data": data, "text": text}


class UnreadCount(Schema):
    count: int


class ReadAllResult(Schema):
    updated: int

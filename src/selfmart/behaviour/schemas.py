"""A terminal's batch of business events, and the business log as the console reads it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, model_validator

from selfmart.kit.schema import Schema

#: Most events one batch may carry (a bigger batch is refused whole: split it).
MAX_BATCH = 500
#: Largest `data` document of one event, as compact JSON, in characters.
MAX_DATA_CHARS = 2000

EventKind = Literal[
    "session_start",
    "scan",
    "removal",
    "checkout",
    "abandonment",
    "payment_attempt",
    "payment_failure",
]
KINDS: tuple[str, ...] = EventKind.__args__  # type: ignore[attr-defined]
PaymentMethod = Literal["wechat", "alipay", "unionpay", "card", "other"]
_ID = r"^[A-Za-z0-9._:-]{1,64}$"

#: Fields each kind must carry (the others are optional for every kind).
REQUIRED: dict[str, tuple[str, ...]] = {
    "scan": ("barcode",),
    "removal": ("barcode",),
    "checkout": ("amount_fen",),
    "payment_attempt": ("amount_fen", "method"),
    "payment_failure": ("amount_fen", "method", "reason"),
}


class BehaviourEventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=_ID,
        description="the terminal's own id, unique per terminal",
    )
    kind: EventKind
    occurred_at: AwareDatetime = Field(description="by the terminal's clock, with its offset")
    session_id: str | None = Field(
        None, min_length=1, max_length=64, pattern=_ID, description="one customer's visit"
    )
    order_no: str | None = Field(None, min_length=1, max_length=32)
    barcode: str | None = Field(None, min_length=1, max_length=64)
    qty: StrictInt | None = Field(None, ge=1, le=10_000)
    amount_fen: StrictInt | None = Field(None, ge=0, le=100_000_000)
    method: PaymentMethod | None = None
    reason: str | None = Field(None, min_length=1, max_length=200)
    data: dict[str, Any] = Field(default_factory=dict, description="anything else, ≤2000 chars")

    @model_validator(mode="after")
    def _complete(self) -> BehaviourEventIn:
        missing = [f for f in REQUIRED.get(self.kind, ()) if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a {self.kind} event needs {', '.join(missing)}")
        if len(json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))) > MAX_DATA_CHARS:
            raise ValueError(f"data is longer than {MAX_DATA_CHARS} characters as JSON")
        return self


class BehaviourBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[BehaviourEventIn] = Field(min_length=1, max_length=MAX_BATCH)


class BatchReply(BaseModel):
    #: events stored now
    accepted: int
    #: events already stored by an earlier copy of the batch (same terminal, same event_id)
    duplicates: int


class BehaviourEventRead(Schema):
    id: int
    store_id: int
    terminal_id: int
    event_id: str
    kind: str
    occurred_at: datetime
    received_at: datetime
    session_id: str | None
    order_no: str | None
    barcode: str | None
    qty: int | None
    amount_fen: int | None
    method: str | None
    reason: str | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BehaviourFilter:
    store_id: int | None = None
    terminal_id: int | None = None
    kind: str | None = None
    session_id: str | None = None
    order_no: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    #: text in the barcode, order number, session, reason or event id
    q: str | None = None

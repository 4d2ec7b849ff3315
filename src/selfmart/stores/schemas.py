"""Request and response bodies of the stores domain."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, field_validator

from selfmart.kit.schema import InSchema, Schema

StoreStatus = Literal["active", "suspended", "closed"]
CODE_PATTERN = r"^[A-Za-z0-9_-]+$"

_HHMM = r"([01][0-9]|2[0-3]):[0-5][0-9]"
_HOURS_RE = re.compile(rf"^(?P<open>{_HHMM})-(?P<close>{_HHMM})$")


def check_timezone(value: str) -> str:
    """An IANA zone name the server knows (e.g. Asia/Shanghai)."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name like Asia/Shanghai"
        ) from exc
    return value


def check_opening_hours(value: str) -> str:
    """'24h', or 'HH:MM-HH:MM' in the store's zone; a close before the open wraps midnight."""
    if value == "24h":
        return value
    m = _HOURS_RE.match(value)
    if m is None:
        raise ValueError("opening hours must be '24h' or 'HH:MM-HH:MM', e.g. 07:00-23:00")
    if m["open"] == m["close"]:
        raise ValueError("opening and closing times are equal; use '24h' for always open")
    return value


Timezone = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(check_timezone)]
OpeningHours = Annotated[
    str,
    Field(min_length=3, max_length=11, examples=["24h", "07:00-23:00", "22:00-06:00"]),
    AfterValidator(check_opening_hours),
]
StoreCode = Annotated[str, Field(min_length=1, max_length=32, pattern=CODE_PATTERN)]
Name = Annotated[str, Field(min_length=1, max_length=100)]
Address = Annotated[str, Field(max_length=300)]
City = Annotated[str, Field(max_length=64)]
Phone = Annotated[str, Field(max_length=32, pattern=r"^[0-9+() -]*$")]


class StoreCreate(InSchema):
    code: StoreCode
    name: Name
    address: Address = ""
    city: City = ""
    phone: Phone | None = None
    timezone: Timezone = "Asia/Shanghai"
    opening_hours: OpeningHours = "24h"
    status: StoreStatus = "active"
    allow_negative_stock: bool = True
    #: None follows the payment account's (the chain's) setting.
    auto_refund_duplicates: bool | None = None


#: Fields a PATCH may not set to null (the column is NOT NULL).
_NOT_NULL = ("code", "name", "address", "city", "timezone", "opening_hours", "status")


class StoreUpdate(InSchema):
    """Only the fields sent are changed."""

    code: StoreCode | None = None
    name: Name | None = None
    address: Address | None = None
    city: City | None = None
    phone: Phone | None = None
    timezone: Timezone | None = None
    opening_hours: OpeningHours | None = None
    status: StoreStatus | None = None
    allow_negative_stock: bool | None = None
    #: Null sets the store back to following the payment account's setting.
    auto_refund_duplicates: bool | None = None

    @field_validator(*_NOT_NULL, "allow_negative_stock", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


class StoreRead(Schema):
    id: int
    code: str
    name: str
    address: str
    city: str
    phone: str | None
    timezone: str
    opening_hours: str
    status: StoreStatus
    allow_negative_stock: bool
    auto_refund_duplicates: bool | None
    terminal_count: int
    created_at: datetime

"""Request and response bodies of the terminals domain (console and terminal API)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from selfmart.kit.schema import InSchema, Schema

TerminalStatus = Literal["pending", "active", "disabled"]
TerminalCode = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
DbId = Annotated[int, Field(ge=1, le=2_147_483_647)]
Text100 = Annotated[str, Field(max_length=100)]


class TerminalCreate(InSchema):
    code: TerminalCode
    store_id: DbId
    name: Text100 = ""
    model: Text100 = ""


class TerminalUpdate(InSchema):
    """Only the fields sent are changed. Moving a terminal needs both stores in scope."""

    code: TerminalCode | None = None
    store_id: DbId | None = None
    name: Text100 | None = None
    model: Text100 | None = None

    @field_validator("code", "store_id", "name", "model", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


class TerminalRead(Schema):
    id: int
    code: str
    store_id: int
    store_name: str
    name: str
    model: str
    status: TerminalStatus
    last_seen_at: datetime | None
    last_ip: str | None
    app_version: str | None
    online: bool = Field(description="seen within `terminal_online_seconds` (5 minutes)")
    silent_seconds: int | None = Field(
        description="seconds since the last heartbeat or request (None: never seen)"
    )
    reported_status: ReportedStatus | None
    unsent_orders: int | None
    printer_state: PrinterState | None
    scanner_state: ScannerState | None
    needs_attention: bool = Field(
        description="active and offline, or reporting a fault, unsent orders or a device problem"
    )
    key_id: str | None = Field(description="the current key (not one in its rotation grace)")
    created_at: datetime


class ActivationCodeIssued(Schema):
    activation_code: str = Field(description="shown once; typed into the terminal")
    expires_at: datetime


class KeyRotated(Schema):
    key_id: str
    secret: str = Field(description="shown once; the terminal's new HMAC secret")
    old_key_expires_at: datetime


# --- terminal API ----------------------------------------------------------------------------


class ActivateRequest(InSchema):
    terminal_code: TerminalCode
    activation_code: str = Field(min_length=1, max_length=32)


class Activated(Schema):
    terminal_id: int
    key_id: str
    secret: str


ReportedStatus = Literal["ready", "selling", "offline_mode", "maintenance", "fault"]
PrinterState = Literal["ok", "paper_low", "paper_out", "error", "absent"]
ScannerState = Literal["ok", "error", "absent"]


class HeartbeatRequest(InSchema):
    """docs/terminal-protocol.md §4. Only `app_version` is required (older terminals send no
    more); a field left out keeps what the terminal said last."""

    app_version: str = Field(min_length=1, max_length=64)
    status: ReportedStatus | None = Field(None, description="what the terminal is doing")
    unsent_orders: int | None = Field(
        None, ge=0, le=1_000_000, description="orders queued on the terminal, not yet accepted"
    )
    printer: PrinterState | None = None
    scanner: ScannerState | None = None


class HeartbeatReply(Schema):
    server_time: datetime


class VersionCount(Schema):
    app_version: str | None
    terminals: int


class FleetSummary(Schema):
    """The active terminals of the stores the user may see, counted."""

    active: int
    online: int
    offline: int
    never_seen: int
    needs_attention: int
    unsent_orders: int = Field(description="orders queued on all terminals, as they last said")
    versions: list[VersionCount]

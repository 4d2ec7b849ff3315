from __future__ import annotations

from selfmart.errors import AppError


class UnderMaintenance(AppError):
    """A write while the system is in maintenance mode: try again later. Terminals queue the
    order offline and resend it (docs/terminal-protocol.md §5e)."""

    status, code, message = 503, "maintenance", "The system is under maintenance; try again later"

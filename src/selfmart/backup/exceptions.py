"""The backup domain's errors."""

from __future__ import annotations

from selfmart.errors import AppError


class BackupFailed(AppError):
    """A backup could not be written (a full or unwritable destination, a dump tool missing or
    failing). Nothing of it is left behind and every earlier archive is kept."""

    status, code, message = 503, "backup_failed", "The backup could not be made"


class ArchiveInvalid(AppError):
    """An archive that is not a whole, unaltered selfmart backup this version can restore.
    Refused before anything is touched."""

    status, code, message = 422, "archive_invalid", "The archive cannot be restored"

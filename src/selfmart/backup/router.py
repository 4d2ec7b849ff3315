"""HTTP routes of the backups: the archives kept here, and "back up now". (Restoring stays a
command run with the processes stopped: `selfmart restore`.)"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Request

from selfmart.audit import service as audit
from selfmart.backup import service as backups
from selfmart.backup.schemas import BackupList, BackupRead
from selfmart.config import Settings
from selfmart.deps import SessionDep
from selfmart.errors import error_responses
from selfmart.iam.actor import Actor
from selfmart.iam.dependencies import require
from selfmart.iam.permissions import Perm

router = APIRouter(prefix="/backups", tags=["backups"])


def _read(settings: Settings) -> list[BackupRead]:
    out = []
    for path in reversed(backups.archives(settings)):
        stat = path.stat()
        out.append(
            BackupRead(
                name=path.name,
                size_bytes=stat.st_size,
                created_at=datetime.fromtimestamp(stat.st_mtime, UTC),
            )
        )
    return out


@router.get(
    "",
    response_model=BackupList,
    operation_id="list_backups",
    responses=error_responses(401, 403),
)
async def list_backups(
    request: Request, actor: Annotated[Actor, require(Perm.SYSTEM_SETTINGS)]
) -> BackupList:
    """The archives in the backup directory, newest first."""
    settings: Settings = request.app.state.settings
    return BackupList(
        items=_read(settings),
        directory=str(settings.backup_dir),
        keep=settings.backup_keep,
        s3_bucket=settings.backup_s3_bucket,
    )


@router.post(
    "",
    response_model=BackupRead,
    status_code=201,
    operation_id="create_backup",
    responses=error_responses(401, 403, 503),
)
async def create_backup(
    request: Request,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.SYSTEM_SETTINGS)],
) -> BackupRead:
    """Back up now, as `selfmart backup` does; 503 backup_failed says why it could not."""
    settings: Settings = request.app.state.settings
    result = await backups.backup(settings)
    await audit.record(
        session,
        actor,
        "backup.create",
        "backup",
        result.path.name,
        after={"name": result.path.name, "size_bytes": result.size, "s3_key": result.s3_key},
        label=result.path.name,
    )
    return BackupRead(
        name=result.path.name,
        size_bytes=result.size,
        created_at=datetime.fromisoformat(result.manifest["created_at"]),
    )

"""HTTP routes of the audit domain: search and export. Read-only by design: no route edits or
deletes an entry (tests/audit/test_append_only.py keeps it so)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from selfmart.audit import service as audit
from selfmart.audit.schemas import AuditFilter, AuditLogRead, ExportFormat
from selfmart.deps import SessionDep
from selfmart.errors import error_responses
from selfmart.iam.actor import Actor
from selfmart.iam.dependencies import require
from selfmart.iam.permissions import Perm
from selfmart.kit import searchlog
from selfmart.kit.ids import QueryId
from selfmart.kit.pagination import LOG_COUNT_CAP, Page, PageParams, page_of, page_params

router = APIRouter(prefix="/audit-logs", tags=["audit"])


def audit_filter(
    actor_type: Annotated[
        str | None, Query(max_length=16, description="user | terminal | system | job ...")
    ] = None,
    actor_id: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[
        str | None, Query(max_length=100, description="part of the actor's name")
    ] = None,
    action: Annotated[
        str | None, Query(max_length=64, description='exact, or a prefix ending in "*"')
    ] = None,
    entity_type: Annotated[str | None, Query(max_length=64)] = None,
    entity_id: Annotated[str | None, Query(max_length=64)] = None,
    entity: Annotated[
        str | None,
        Query(max_length=100, description="part of the entity's name or document number"),
    ] = None,
    store_id: QueryId = None,
    since: Annotated[AwareDatetime | None, Query(description="from (inclusive), with zone")] = None,
    until: Annotated[AwareDatetime | None, Query(description="to (exclusive), with zone")] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=100,
            description="text in actor, action, entity (type, id, name), note or request id",
        ),
    ] = None,
    kind: Annotated[
        Literal["security", "change"] | None,
        Query(
            description="security: permission denials, lockouts, key rotations, PII reveals;"
            " change: every other entry"
        ),
    ] = None,
) -> AuditFilter:
    return AuditFilter(
        kind=kind,
        actor_type=actor_type or None,
        actor_id=actor_id or None,
        actor=(actor or "").strip() or None,
        action=action or None,
        entity_type=entity_type or None,
        entity_id=entity_id or None,
        entity=(entity or "").strip() or None,
        store_id=store_id,
        since=since,
        until=until,
        q=(q or "").strip() or None,
    )


Filter = Annotated[AuditFilter, Depends(audit_filter)]
Reader = Annotated[Actor, require(Perm.AUDIT_READ)]


@router.get(
    "",
    response_model=Page[AuditLogRead],
    operation_id="list_audit_logs",
    responses=error_responses(401, 403),
)
async def list_audit_logs(
    session: SessionDep,
    actor: Reader,
    f: Filter,
    params: Annotated[PageParams, Depends(page_params)],
) -> Page[AuditLogRead]:
    """Audit entries of the stores you see, newest first."""
    rows, total = await audit.search(session, actor, f, params)
    labels = await audit.entity_labels(session, rows)
    items = [
        AuditLogRead.model_validate(r).model_copy(update={"entity_label": labels[r.id]})
        for r in rows
    ]
    return page_of(items, total, params, count_cap=LOG_COUNT_CAP)


@router.get(
    "/actions",
    response_model=list[str],
    operation_id="list_audit_actions",
    responses=error_responses(401, 403),
)
async def list_audit_actions(session: SessionDep, actor: Reader) -> list[str]:
    """The action codes found in the entries you see, for the action filter."""
    return await audit.actions(session, actor)


def _chunks(file: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := file.read(64 * 1024):
            yield chunk
    finally:
        file.close()


@router.get(
    "/export",
    operation_id="export_audit_logs",
    responses={
        **searchlog.export_responses("the matching entries as a spreadsheet"),
        **error_responses(401, 403),
    },
    response_class=StreamingResponse,
)
async def export_audit_logs(
    request: Request,
    session: SessionDep,
    actor: Reader,
    f: Filter,
    format: Annotated[ExportFormat, Query(description="xlsx or csv (UTF-8 with BOM)")] = "xlsx",
) -> StreamingResponse:
    """The entries matching the filters as a file; times in the operator's zone."""
    settings = request.app.state.settings
    file = await audit.export(
        session,
        actor,
        f,
        fmt=format,
        lang=searchlog.export_language(request),
        timezone=settings.default_timezone,
        max_rows=settings.audit_export_max_rows,
    )
    return StreamingResponse(
        _chunks(file),
        media_type=searchlog.EXPORT_MEDIA_TYPES[format],
        headers=searchlog.attachment("audit-logs", format),
    )

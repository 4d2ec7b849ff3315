"""HTTP routes of the business log: terminals send signed batches of events; the console
searches and exports them (read-only: no route edits or deletes an event)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AwareDatetime

from selfmart.behaviour import service as behaviour
from selfmart.behaviour.schemas import (
    BatchReply,
    BehaviourBatch,
    BehaviourEventRead,
    BehaviourFilter,
    EventKind,
)
from selfmart.deps import SessionDep
from selfmart.errors import error_responses
from selfmart.iam.actor import Actor
from selfmart.iam.dependencies import require
from selfmart.iam.permissions import Perm
from selfmart.kit import searchlog
from selfmart.kit.ids import QueryId
from selfmart.kit.pagination import LOG_COUNT_CAP, Page, PageParams, page_of, page_params
from selfmart.kit.ratelimit import EVENT_BATCHES, RateLimiter, enforce, limiter
from selfmart.terminals.dependencies import SIGNED, TerminalDep

terminal_router = APIRouter(tags=["terminal"])
router = APIRouter(prefix="/business-logs", tags=["behaviour"])


@terminal_router.post(
    "/events",
    response_model=BatchReply,
    operation_id="terminal_send_events",
    openapi_extra=SIGNED,
    responses=error_responses(401, 403, 429),
)
async def send_events(
    request: Request,
    body: BehaviourBatch,
    session: SessionDep,
    ctx: TerminalDep,
    rate: Annotated[RateLimiter, Depends(limiter)],
) -> BatchReply:
    """A batch of business events (docs/terminal-protocol.md §5i): all stored or, any event
    wrong, none (422 naming each by index). Counted per terminal: a flood is a 429."""
    await enforce(rate, EVENT_BATCHES, f"terminal:{ctx.terminal.id}")
    return await behaviour.ingest(
        session,
        terminal_id=ctx.terminal.id,
        store_id=ctx.terminal.store_id,
        events=body.events,
        clock_skew_seconds=request.app.state.settings.terminal_clock_skew_seconds,
    )


def behaviour_filter(
    store_id: QueryId = None,
    terminal_id: QueryId = None,
    kind: EventKind | None = None,
    session_id: Annotated[str | None, Query(max_length=64)] = None,
    order_no: Annotated[str | None, Query(max_length=32)] = None,
    since: Annotated[AwareDatetime | None, Query(description="from (inclusive), with zone")] = None,
    until: Annotated[AwareDatetime | None, Query(description="to (exclusive), with zone")] = None,
    q: Annotated[
        str | None,
        Query(max_length=100, description="text in barcode, order no., session, reason, event id"),
    ] = None,
) -> BehaviourFilter:
    return BehaviourFilter(
        store_id=store_id,
        terminal_id=terminal_id,
        kind=kind,
        session_id=session_id or None,
        order_no=order_no or None,
        since=since,
        until=until,
        q=(q or "").strip() or None,
    )


Filter = Annotated[BehaviourFilter, Depends(behaviour_filter)]
Reader = Annotated[Actor, require(Perm.ANALYTICS_READ)]


@router.get(
    "",
    response_model=Page[BehaviourEventRead],
    operation_id="list_business_logs",
    responses=error_responses(401, 403),
)
async def list_business_logs(
    session: SessionDep,
    actor: Reader,
    f: Filter,
    params: Annotated[PageParams, Depends(page_params)],
) -> Page[BehaviourEventRead]:
    """Terminals' business events of the stores you see, newest first."""
    rows, total = await behaviour.search(session, actor, f, params)
    items = [BehaviourEventRead.model_validate(r) for r in rows]
    return page_of(items, total, params, count_cap=LOG_COUNT_CAP)


@router.get(
    "/export",
    operation_id="export_business_logs",
    responses={
        **searchlog.export_responses("the matching events as a spreadsheet"),
        **error_responses(401, 403),
    },
    response_class=Response,
)
async def export_business_logs(
    request: Request,
    session: SessionDep,
    actor: Reader,
    f: Filter,
    format: Annotated[Literal["xlsx", "csv"], Query(description="xlsx or csv")] = "xlsx",
) -> Response:
    """The events matching the filters as a file; times in the operator's zone."""
    settings = request.app.state.settings
    data = await behaviour.export(
        session,
        actor,
        f,
        fmt=format,
        lang=searchlog.export_language(request),
        timezone=settings.default_timezone,
        max_rows=settings.behaviour_export_max_rows,
    )
    return Response(
        data,
        media_type=searchlog.EXPORT_MEDIA_TYPES[format],
        headers=searchlog.attachment("business-logs", format),
    )

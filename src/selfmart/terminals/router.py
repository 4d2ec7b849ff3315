"""HTTP routes for terminals: console management and the signed terminal API."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from selfmart.deps import SessionDep
from selfmart.errors import error_responses
from selfmart.iam.actor import Actor
from selfmart.iam.dependencies import require
from selfmart.iam.permissions import Perm
from selfmart.kit.context import current_ip
from selfmart.kit.pagination import Page, PageParams, page_params
from selfmart.kit.ratelimit import HEARTBEAT, RateLimiter, enforce, limiter, rate_limited
from selfmart.terminals import service as terminals
from selfmart.terminals.dependencies import (
    SIGNED,
    ActivationSessionDep,
    TerminalDep,
    TerminalId,
)
from selfmart.terminals.schemas import (
    Activated,
    ActivateRequest,
    ActivationCodeIssued,
    FleetSummary,
    HeartbeatReply,
    HeartbeatRequest,
    KeyRotated,
    TerminalCreate,
    TerminalRead,
    TerminalStatus,
    TerminalUpdate,
)

router = APIRouter(prefix="/terminals", tags=["terminals"])
terminal_api = APIRouter(tags=["terminal-api"])

ReadActor = Annotated[Actor, require(Perm.TERMINAL_READ)]
WriteActor = Annotated[Actor, require(Perm.TERMINAL_WRITE)]


@router.get(
    "",
    response_model=Page[TerminalRead],
    operation_id="list_terminals",
    responses=error_responses(401, 403),
)
async def list_terminals(
    session: SessionDep,
    actor: ReadActor,
    params: Annotated[PageParams, Depends(page_params)],
    store_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    status: TerminalStatus | None = None,
    q: Annotated[str | None, Query(max_length=100, description="code, name or model")] = None,
    online: Annotated[bool | None, Query(description="seen recently, or not")] = None,
    attention: Annotated[
        bool | None, Query(description="active and offline, or reporting a problem")
    ] = None,
    order: Annotated[
        Literal["id", "silent"], Query(description="silent: longest without a heartbeat first")
    ] = "id",
) -> Page[TerminalRead]:
    items, total = await terminals.list_terminals(
        session,
        params,
        actor=actor,
        store_id=store_id,
        status=status,
        q=q,
        online=online,
        attention=attention,
        order=order,
    )
    return Page(items=items, total=total, page=params.page, size=params.size)


@router.get(
    "/fleet-summary",
    response_model=FleetSummary,
    operation_id="terminal_fleet_summary",
    responses=error_responses(401, 403),
)
async def fleet_summary(
    session: SessionDep,
    actor: ReadActor,
    store_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
) -> FleetSummary:
    """The active terminals counted: online, offline, never seen, needing attention, versions."""
    return await terminals.fleet_summary(session, actor=actor, store_id=store_id)


@router.post(
    "",
    response_model=TerminalRead,
    status_code=201,
    operation_id="create_terminal",
    responses=error_responses(401, 403, 404, 409),
)
async def create_terminal(
    body: TerminalCreate, session: SessionDep, actor: WriteActor
) -> TerminalRead:
    return await terminals.create_terminal(session, body, actor=actor)


@router.get(
    "/{terminal_id}",
    response_model=TerminalRead,
    operation_id="get_terminal",
    responses=error_responses(401, 403, 404),
)
async def get_terminal(
    terminal_id: TerminalId, session: SessionDep, actor: ReadActor
) -> TerminalRead:
    terminal = await terminals.get_terminal(session, terminal_id, actor=actor)
    return await terminals.read(session, terminal)


@router.patch(
    "/{terminal_id}",
    response_model=TerminalRead,
    operation_id="update_terminal",
    responses=error_responses(401, 403, 404, 409),
)
async def update_terminal(
    terminal_id: TerminalId, body: TerminalUpdate, session: SessionDep, actor: WriteActor
) -> TerminalRead:
    terminal = await terminals.get_terminal(session, terminal_id, actor=actor)
    return await terminals.update_terminal(session, terminal, body, actor=actor)


@router.post(
    "/{terminal_id}/activation-code",
    response_model=ActivationCodeIssued,
    operation_id="issue_activation_code",
    responses=error_responses(401, 403, 404, 409),
)
async def issue_activation_code(
    terminal_id: TerminalId, session: SessionDep, actor: WriteActor
) -> ActivationCodeIssued:
    terminal = await terminals.get_terminal(session, terminal_id, actor=actor)
    return await terminals.issue_activation_code(session, terminal, actor=actor)


@router.post(
    "/{terminal_id}/rotate-key",
    response_model=KeyRotated,
    operation_id="rotate_terminal_key",
    responses=error_responses(401, 403, 404, 409),
)
async def rotate_terminal_key(
    terminal_id: TerminalId, session: SessionDep, actor: WriteActor
) -> KeyRotated:
    terminal = await terminals.get_terminal(session, terminal_id, actor=actor)
    return await terminals.rotate_key(session, terminal, actor=actor)


@router.post(
    "/{terminal_id}/disable",
    response_model=TerminalRead,
    operation_id="disable_terminal",
    responses=error_responses(401, 403, 404, 409),
)
async def disable_terminal(
    terminal_id: TerminalId, session: SessionDep, actor: WriteActor
) -> TerminalRead:
    terminal = await terminals.get_terminal(session, terminal_id, actor=actor)
    return await terminals.disable_terminal(session, terminal, actor=actor)


@router.post(
    "/{terminal_id}/enable",
    response_model=TerminalRead,
    operation_id="enable_terminal",
    responses=error_responses(401, 403, 404, 409),
)
async def enable_terminal(
    terminal_id: TerminalId, session: SessionDep, actor: WriteActor
) -> TerminalRead:
    terminal = await terminals.get_terminal(session, terminal_id, actor=actor)
    return await terminals.enable_terminal(session, terminal, actor=actor)


# --- terminal API (/api/terminal/v1), see docs/terminal-protocol.md ---------------------------


@terminal_api.post(
    "/activate",
    response_model=Activated,
    operation_id="terminal_activate",
    responses=error_responses(401, 409, 429),
    dependencies=[rate_limited("terminal_activate")],
)
async def activate(body: ActivateRequest, session: ActivationSessionDep) -> Activated:
    """Public: exchange the one-time activation code shown in the console for a key."""
    return await terminals.activate(session, body.terminal_code, body.activation_code)


@terminal_api.post(
    "/heartbeat",
    response_model=HeartbeatReply,
    operation_id="terminal_heartbeat",
    openapi_extra=SIGNED,
    responses=error_responses(401, 403, 429),
)
async def heartbeat(
    body: HeartbeatRequest,
    session: SessionDep,
    ctx: TerminalDep,
    rate: Annotated[RateLimiter, Depends(limiter)],
) -> HeartbeatReply:
    """Counted per terminal (bucket `terminal_heartbeat`): a flood is a 429, nothing written."""
    await enforce(rate, HEARTBEAT, f"terminal:{ctx.terminal.id}")
    server_time = await terminals.heartbeat(
        session,
        ctx,
        app_version=body.app_version,
        ip=current_ip(),
        status=body.status,
        unsent_orders=body.unsent_orders,
        printer=body.printer,
        scanner=body.scanner,
    )
    return HeartbeatReply(server_time=server_time)

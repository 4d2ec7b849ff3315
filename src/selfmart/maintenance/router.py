"""Maintenance mode (read by any signed-in user for the banner; changed with system:settings)
and the About page."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Request

from selfmart.deps import SessionDep
from selfmart.errors import error_responses
from selfmart.iam.actor import Actor
from selfmart.iam.dependencies import authenticated, require
from selfmart.iam.permissions import Perm
from selfmart.kit import aftercommit, invalidation
from selfmart.maintenance import service as maintenance
from selfmart.maintenance.schemas import AboutRead, MaintenanceChange, MaintenanceRead

router = APIRouter(prefix="/system", tags=["system"])

SettingsActor = Annotated[Actor, require(Perm.SYSTEM_SETTINGS)]
Anyone = Annotated[Actor, authenticated()]


@router.get(
    "/maintenance",
    response_model=MaintenanceRead,
    operation_id="get_maintenance",
    responses=error_responses(401, 403),
)
async def get_maintenance(session: SessionDep, actor: Anyone) -> MaintenanceRead:
    return (await maintenance.get(session)).read()


@router.put(
    "/maintenance",
    response_model=MaintenanceRead,
    operation_id="set_maintenance",
    responses=error_responses(401, 403, 422),
)
async def set_maintenance(
    body: MaintenanceChange, session: SessionDep, actor: SettingsActor, request: Request
) -> MaintenanceRead:
    """Turn maintenance mode on or off. Every process sees it at once (with Redis; without,
    the others within two seconds)."""
    state = await maintenance.change(session, on=body.on, message=body.message, actor=actor)
    bus: invalidation.Bus = request.app.state.invalidation
    # after the commit: a process that re-read the flag before it would keep the old state
    aftercommit.on_commit(session, partial(bus.announce, maintenance.INVALIDATION))
    return state.read()


@router.get(
    "/about",
    response_model=AboutRead,
    operation_id="get_about",
    responses=error_responses(401, 403),
)
async def about(session: SessionDep, actor: SettingsActor, request: Request) -> AboutRead:
    return await maintenance.about(session, request.app.state.settings)

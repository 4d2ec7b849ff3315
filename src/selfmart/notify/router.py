"""HTTP routes of the notify domain: the signed-in user's message centre."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from selfmart.deps import SessionDep
from selfmart.errors import error_responses
from selfmart.iam.actor import Actor
from selfmart.iam.dependencies import authenticated
from selfmart.kit.ids import BigPathId
from selfmart.kit.pagination import Page, PageParams, page_params
from selfmart.notify import service as notify
from selfmart.notify.schemas import MessageRead, ReadAllResult, UnreadCount

router = APIRouter(prefix="/messages", tags=["notify"])

Me = Annotated[Actor, authenticated()]


@router.get(
    "",
    response_model=Page[MessageRead],
    operation_id="list_messages",
    responses=error_responses(401, 403),
)
async def list_messages(
    session: SessionDep,
    actor: Me,
    params: Annotated[PageParams, Depends(page_params)],
    unread: Annotated[bool | None, Query(description="only unread (true) or read (false)")] = None,
) -> Page[MessageRead]:
    """Your own messages, newest first."""
    rows, total = await notify.list_messages(session, actor, params, unread=unread)
    return Page[MessageRead](
        items=[MessageRead.model_validate(m) for m in rows],
        total=total,
        page=params.page,
        size=params.size,
    )


@router.get(
    "/unread-count",
    response_model=UnreadCount,
    operation_id="unread_message_count",
    responses=error_responses(401, 403),
)
async def unread_message_count(session: SessionDep, actor: Me) -> UnreadCount:
    return UnreadCount(count=await notify.unread_count(session, actor))


@router.post(
    "/read-all",
    response_model=ReadAllResult,
    operation_id="read_all_messages",
    responses=error_responses(401, 403),
)
async def read_all_messages(session: SessionDep, actor: Me) -> ReadAllResult:
    return ReadAllResult(updated=await notify.mark_all_read(session, actor))


@router.post(
    "/{message_id}/read",
    status_code=204,
    response_class=Response,
    operation_id="read_message",
    responses=error_responses(401, 403, 404),
)
async def read_message(message_id: BigPathId, session: SessionDep, actor: Me) -> Response:
    await notify.mark_read(session, actor, message_id)
    return Response(status_code=204)

"""HTTP routes of the stores domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from selfmart.deps import SessionDep
from selfmart.errors import error_responses
from selfmart.iam.actor import Actor
from selfmart.iam.dependencies import require
from selfmart.iam.permissions import Perm
from selfmart.kit.pagination import Page, PageParams, page_params
from selfmart.stores import service as stores
from selfmart.stores.schemas import StoreCreate, StoreRead, StoreStatus, StoreUpdate

router = APIRouter(prefix="/stores", tags=["stores"])

#: Ids beyond 32 bits cannot exist; refusing them here keeps them away from the database.
StoreId = Annotated[int, Path(ge=1, le=2_147_483_647)]


@router.get(
    "",
    response_model=Page[StoreRead],
    operation_id="list_stores",
    responses=error_responses(401, 403),
)
async def list_stores(
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.STORE_READ)],
    params: Annotated[PageParams, Depends(page_params)],
    q: Annotated[str | None, Query(max_length=100, description="code, name or address")] = None,
    city: Annotated[str | None, Query(max_length=64)] = None,
    status: StoreStatus | None = None,
) -> Page[StoreRead]:
    items, total = await stores.list_stores(
        session, params, actor=actor, q=q, city=city, status=status
    )
    return Page(items=items, total=total, page=params.page, size=params.size)


@router.post(
    "",
    response_model=StoreRead,
    status_code=201,
    operation_id="create_store",
    responses=error_responses(401, 403, 409),
)
async def create_store(
    body: StoreCreate,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.STORE_WRITE)],
) -> StoreRead:
    return await stores.create_store(session, body, actor=actor)


@router.get(
    "/{store_id}",
    response_model=StoreRead,
    operation_id="get_store",
    responses=error_responses(401, 403, 404),
)
async def get_store(
    store_id: StoreId, session: SessionDep, actor: Annotated[Actor, require(Perm.STORE_READ)]
) -> StoreRead:
    store = await stores.get_store(session, store_id, actor=actor)
    return await stores.read(session, store)


@router.patch(
    "/{store_id}",
    response_model=StoreRead,
    operation_id="update_store",
    responses=error_responses(401, 403, 404, 409),
)
async def update_store(
    store_id: StoreId,
    body: StoreUpdate,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.STORE_WRITE)],
) -> StoreRead:
    store = await stores.get_store(session, store_id, actor=actor)
    return await stores.update_store(session, store, body, actor=actor)

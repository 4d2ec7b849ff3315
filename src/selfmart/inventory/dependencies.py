"""Dependencies inventory and purchasing routes share."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from selfmart.deps import SessionDep
from selfmart.iam.dependencies import CurrentActor
from selfmart.inventory.queries import visible_store
from selfmart.kit.ids import PathId
from selfmart.models import Store


async def _store_in_scope(store_id: PathId, session: SessionDep, actor: CurrentActor) -> Store:
    """The path's store, if the caller may see it. Routes list it after their permission, so a
    caller without the permission gets 403 first; and it is solved before the body is
    validated, so another store is a 404 whatever the body says."""
    return await visible_store(session, store_id, actor)


StoreInScope = Annotated[Store, Depends(_store_in_scope)]

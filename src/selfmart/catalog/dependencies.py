"""Reusable dependencies of the catalog routes: settings, media storage, the product."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from selfmart.catalog import images as media
from selfmart.catalog import service as catalog
from selfmart.config import Settings
from selfmart.deps import SessionDep
from selfmart.models import Product


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_storage(request: Request) -> media.Storage:
    """The app's media storage, made once from its settings."""
    storage: media.Storage | None = getattr(request.app.state, "media_storage", None)
    if storage is None:
        storage = media.make_storage(get_settings(request))
        request.app.state.media_storage = storage
    return storage


async def get_product(
    session: SessionDep, product_id: Annotated[int, Path(ge=1, le=2**31 - 1)]
) -> Product:
    return await catalog.get_product(session, product_id)


SettingsDep = Annotated[Settings, Depends(get_settings)]
StorageDep = Annotated[media.Storage, Depends(get_storage)]
ProductDep = Annotated[Product, Depends(get_product)]

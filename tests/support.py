"""Helpers shared by tests that are not fixtures."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from selfmart.config import Settings


def settings_for(url: str, **overrides: Any) -> Settings:
    return Settings(
        database_url=url,
        env="test",
        secret_key="test-secret-key-0123456789abcdef0123456789",
        static_dir=Path("/nonexistent"),
        **overrides,
    )


@dataclass(frozen=True)
class RouteInfo:
    method: str
    path: str
    dependant: Dependant
    #: Names of the path parameters, in order.
    params: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def api_routes(app: FastAPI) -> list[RouteInfo]:
    """Every API route of `app` (one per method) with its full path and dependencies.

    Since FastAPI 0.137 `include_router` keeps routers as a tree in `app.routes`
    (fastapi/fastapi#15745), so `for r in app.routes` no longer sees any routed endpoint;
    `iter_route_contexts` is how FastAPI itself flattens the tree for the OpenAPI document.
    """
    out: list[RouteInfo] = []
    for ctx in iter_route_contexts(app.routes):
        if not isinstance(ctx.original_route, APIRoute) or not ctx.include_in_schema:
            continue
        path = ctx.path
        assert path is not None
        for method in sorted(ctx.methods or ()):
            out.append(RouteInfo(method, path, ctx.dependant, tuple(ctx.param_convertors)))
    return out

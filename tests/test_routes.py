"""Every route declares a permission, a terminal signature, or is on the public allowlist."""

from __future__ import annotations

from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from selfmart.app import create_app
from selfmart.iam.dependencies import PUBLIC_ROUTES, Authenticated, RequirePermission

from .support import settings_for


def _declared(dep: Dependant) -> bool:
    call: Any = dep.call
    if isinstance(call, RequirePermission | Authenticated):
        return True
    if getattr(call, "__selfmart_terminal_auth__", False):
        return True
    return any(_declared(d) for d in dep.dependencies)


def test_every_route_declares_access() -> None:
    app = create_app(settings_for("sqlite+aiosqlite:///:memory:"))
    undeclared = []
    for route in app.routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            if (method, route.path) in PUBLIC_ROUTES:
                continue
            if not _declared(route.dependant):
                undeclared.append(f"{method} {route.path}")
    assert undeclared == [], f"routes without a permission declaration: {undeclared}"


def test_public_allowlist_is_short() -> None:
    assert len(PUBLIC_ROUTES) <= 12

"""Every route declares a permission, a terminal signature, or is on the public allowlist."""

from __future__ import annotations

from typing import Any

from fastapi.dependencies.models import Dependant

from selfmart.app import create_app
from selfmart.iam.dependencies import PUBLIC_ROUTES, Authenticated, RequirePermission

from .support import api_routes, settings_for


def _declared(dep: Dependant) -> bool:
    call: Any = dep.call
    if isinstance(call, RequirePermission | Authenticated):
        return True
    if getattr(call, "__selfmart_terminal_auth__", False):
        return True
    return any(_declared(d) for d in dep.dependencies)


def test_every_route_declares_access() -> None:
    app = create_app(settings_for("sqlite+aiosqlite:///:memory:"))
    routes = api_routes(app)
    # The walker must see the routed endpoints, or this test checks nothing.
    assert {"POST /api/v1/auth/login", "GET /api/v1/users"} <= {r.id for r in routes}
    undeclared = [
        r.id
        for r in routes
        if (r.method, r.path) not in PUBLIC_ROUTES and not _declared(r.dependant)
    ]
    assert undeclared == [], f"routes without a permission declaration: {undeclared}"


def test_public_allowlist_is_short() -> None:
    assert len(PUBLIC_ROUTES) <= 12

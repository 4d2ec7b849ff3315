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
    if getattr(call, "__selfmart_member_auth__", False):  # a member's session (their own page)
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
    # 15 today: health and probes, login, media links, activation, the customer's receipt
    # page and look-up, the platforms' callbacks, the phone page's payment state and pay, and
    # the member page's SMS code and sign-in.
    assert len(PUBLIC_ROUTES) <= 15


def _signed(dep: Dependant) -> bool:
    if getattr(dep.call, "__selfmart_terminal_auth__", False):
        return True
    return any(_signed(d) for d in dep.dependencies)


def test_every_signed_route_documents_the_signature_headers() -> None:
    """The headers are read by the verifier, not declared as FastAPI parameters (which would
    parse them on every order): each signed route documents them with openapi_extra=SIGNED."""
    from selfmart.terminals import signing

    app = create_app(settings_for("sqlite+aiosqlite:///:memory:"))
    spec = app.openapi()
    signed = [r for r in api_routes(app) if _signed(r.dependant)]
    assert len(signed) >= 6  # heartbeat, orders, batch, status, payment failures, products
    for route in signed:
        operation = spec["paths"][route.path][route.method.lower()]
        documented = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}
        assert set(documented) == set(signing.HEADERS), route.id
        assert all(p["required"] for p in documented.values()), route.id

"""Each route declares the errors its guards can raise, so the OpenAPI document (and the
console's generated client) knows every answer: 401 and 403 wherever a login and a permission
(or a password already changed) are required, 404 wherever the path names a resource.
Walks every route, so later routes are held to it too; tests/fuzz checks the answers."""

from __future__ import annotations

import re
from typing import Any

from fastapi.dependencies.models import Dependant

from selfmart.app import create_app
from selfmart.iam.dependencies import Authenticated, RequirePermission

from .support import api_routes, settings_for


def _calls(dep: Dependant) -> list[Any]:
    found = [dep.call]
    for sub in dep.dependencies:
        found += _calls(sub)
    return found


def _required(dep: Dependant, params: tuple[str, ...]) -> set[str]:
    need: set[str] = set()
    for call in _calls(dep):
        if isinstance(call, RequirePermission):
            need |= {"401", "403"}  # 403: no permission, or a password still to change
        elif isinstance(call, Authenticated):
            need |= {"401"} if call.allow_pending_password_change else {"401", "403"}
        elif getattr(call, "__selfmart_terminal_auth__", False):
            need |= {"401", "403"}  # 403: a disabled terminal
        elif getattr(call, "__selfmart_rate_limit__", False):
            need |= {"429"}
    if params:
        need.add("404")
    return need


def test_every_route_declares_the_errors_its_guards_raise() -> None:
    app = create_app(settings_for("sqlite+aiosqlite:///:memory:"))
    doc = app.openapi()
    missing = []
    for route in api_routes(app):
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # {key:path} → {key}
        declared = set(doc["paths"][path][route.method.lower()]["responses"])
        lacking = _required(route.dependant, route.params) - declared
        if lacking:
            missing.append(f"{route.id}: {sorted(lacking)}")
    assert missing == [], "add responses=error_responses(...) for:\n  " + "\n  ".join(missing)

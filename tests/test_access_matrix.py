"""The access matrix: every permission-guarded route, proven 401 / 403 / 404 (see matrix.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.app import create_app
from selfmart.iam.dependencies import Authenticated, RequirePermission
from selfmart.iam.permissions import Perm
from selfmart.models import Role, Store, User

from .builders import auth_headers, make_role, make_store, make_user
from .matrix import BODIES, ID_PARAMS
from .support import api_routes, settings_for

BODY_METHODS = {"POST", "PUT", "PATCH"}


@dataclass(frozen=True)
class Guarded:
    method: str
    path: str
    #: None for routes open to any logged-in user (Authenticated).
    perm: Perm | None
    params: tuple[str, ...]
    #: Reachable by a user who must still change their password (own profile, logout).
    pending_ok: bool

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def _guards(dep: Dependant) -> list[object]:
    found: list[object] = []
    if isinstance(dep.call, RequirePermission | Authenticated):
        found.append(dep.call)
    for sub in dep.dependencies:
        found += _guards(sub)
    return found


def _walk() -> list[Guarded]:
    out: list[Guarded] = []
    for route in api_routes(create_app(settings_for("sqlite+aiosqlite:///:memory:"))):
        guards = _guards(route.dependant)
        if not guards:
            continue  # public or terminal-signed (tests/test_routes.py keeps that list short)
        perms = [g.perm for g in guards if isinstance(g, RequirePermission)]
        pending_ok = not perms and any(
            isinstance(g, Authenticated) and g.allow_pending_password_change for g in guards
        )
        out.append(
            Guarded(route.method, route.path, perms[0] if perms else None, route.params, pending_ok)
        )
    return out


ROUTES = _walk()
PROTECTED = [r for r in ROUTES if r.perm is not None]
PENDING_BLOCKED = [r for r in ROUTES if not r.pending_ok]
STORE_BOUND = [
    r for r in PROTECTED if any(p in ID_PARAMS and ID_PARAMS[p].store_bound for p in r.params)
]


def test_matrix_covers_the_routes_it_must() -> None:
    ids = {r.id for r in PROTECTED}
    assert "GET /api/v1/users/{user_id}" in ids
    assert "POST /api/v1/users/{user_id}/reset-password" in ids
    assert "DELETE /api/v1/roles/{role_id}" in ids
    assert "GET /api/v1/auth/me" not in ids
    assert "GET /api/v1/auth/me" in {r.id for r in ROUTES}
    assert "GET /api/v1/auth/me" not in {r.id for r in PENDING_BLOCKED}
    assert "POST /api/v1/auth/login" not in {r.id for r in ROUTES}
    assert "GET /api/v1/users/{user_id}" in {r.id for r in STORE_BOUND}
    assert "GET /api/v1/roles/{role_id}" not in {r.id for r in STORE_BOUND}


def test_every_path_parameter_has_a_factory() -> None:
    missing = sorted(
        {f"{p} (in {r.id})" for r in PROTECTED for p in r.params if p not in ID_PARAMS}
    )
    assert missing == [], (
        "path parameters without a factory in tests/matrix.py ID_PARAMS: " + ", ".join(missing)
    )


@dataclass
class World:
    store_a: Store
    store_b: Store


@pytest.fixture
async def world(session: AsyncSession) -> World:
    return World(await make_store(session, name="门店 A"), await make_store(session, name="门店 B"))


#: An id no factory ever makes: what a genuinely unknown resource answers.
UNKNOWN_ID = 2_000_000_000


async def _url(
    session: AsyncSession,
    route: Guarded,
    home: Store,
    other: Store | None,
    *,
    unknown: bool = False,
) -> str:
    """The route's URL, its ids made in `home` — or, for store-bound ones, in `other` (or an
    id that does not exist at all, with `unknown`)."""
    values: dict[str, Any] = {}
    for name in route.params:
        spec = ID_PARAMS.get(name)
        if spec is None and route.perm is None:
            # Self-service routes (own messages…) are only checked for 401 and the pending
            # password change, both decided before any id is looked at.
            values[name] = 1
            continue
        if spec is None:
            pytest.fail(f"{route.id}: no factory for path parameter {name!r} in tests/matrix.py")
        if unknown and spec.store_bound:
            values[name] = UNKNOWN_ID
            continue
        store = other if (other is not None and spec.store_bound) else home
        values[name] = await spec.factory(session, store)
    return route.path.format(**values)


async def _call(
    client: httpx.AsyncClient, route: Guarded, url: str, headers: dict[str, str]
) -> httpx.Response:
    body = BODIES.get((route.method, route.path), {}) if route.method in BODY_METHODS else None
    return await client.request(route.method, url, headers=headers, json=body)


async def _user_with(
    session: AsyncSession, perms: set[str], store: Store, *, must_change_password: bool = False
) -> tuple[User, Role]:
    role = await make_role(session, sorted(perms))
    user = await make_user(
        session, role=role, stores=[store], must_change_password=must_change_password
    )
    return user, role


ALL_PERMS = {p.value for p in Perm}


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.id)
async def test_no_credentials_is_401(
    client: httpx.AsyncClient, session: AsyncSession, world: World, route: Guarded
) -> None:
    url = await _url(session, route, world.store_a, None)
    r = await _call(client, route, url, {})
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "unauthorized"
    r = await _call(client, route, url, {"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401, r.text


def _missing_ids_url(route: Guarded) -> str:
    """The route's URL with an id that does not exist in every path parameter."""
    return route.path.format(**dict.fromkeys(route.params, UNKNOWN_ID))


ID_ROUTES = [r for r in ROUTES if r.params]


def test_the_id_walk_sees_the_routes_that_answered_404_to_strangers() -> None:
    ids = {r.id for r in ID_ROUTES}
    for method in ("GET", "PATCH", "DELETE"):
        assert f"{method} /api/v1/products/{{product_id}}" in ids


@pytest.mark.parametrize("route", ID_ROUTES, ids=lambda r: r.id)
async def test_no_credentials_answers_the_same_for_existing_and_missing_ids(
    client: httpx.AsyncClient, session: AsyncSession, world: World, route: Guarded
) -> None:
    """Auth comes before any look-up (iam.dependencies.guard_first): a stranger cannot tell
    an id that exists from one that does not, whatever order the route's parameters are in."""
    existing = await _call(client, route, await _url(session, route, world.store_a, None), {})
    missing = await _call(client, route, _missing_ids_url(route), {})
    assert (existing.status_code, existing.json()["error"]) == (401, "unauthorized")
    assert (missing.status_code, missing.json()["error"]) == (401, "unauthorized"), missing.text
    assert missing.json()["details"] == existing.json()["details"]


PROTECTED_ID_ROUTES = [r for r in PROTECTED if r.params]


@pytest.mark.parametrize("route", PROTECTED_ID_ROUTES, ids=lambda r: r.id)
async def test_without_the_permission_a_missing_id_is_403_too(
    client: httpx.AsyncClient, session: AsyncSession, world: World, route: Guarded
) -> None:
    """The permission, too, is checked before the id is looked up."""
    assert route.perm is not None
    user, _ = await _user_with(session, ALL_PERMS - {route.perm.value}, world.store_a)
    r = await _call(client, route, _missing_ids_url(route), await auth_headers(session, user))
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "forbidden"


@pytest.mark.parametrize("route", PROTECTED, ids=lambda r: r.id)
async def test_every_permission_but_the_routes_is_403(
    client: httpx.AsyncClient, session: AsyncSession, world: World, route: Guarded
) -> None:
    assert route.perm is not None
    user, _ = await _user_with(session, ALL_PERMS - {route.perm.value}, world.store_a)
    url = await _url(session, route, world.store_a, None)
    r = await _call(client, route, url, await auth_headers(session, user))
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "forbidden"


@pytest.mark.parametrize("route", STORE_BOUND, ids=lambda r: r.id)
async def test_another_stores_resource_is_404(
    client: httpx.AsyncClient, session: AsyncSession, world: World, route: Guarded
) -> None:
    user, _ = await _user_with(session, ALL_PERMS, world.store_a)
    headers = await auth_headers(session, user)
    r = await _call(
        client, route, await _url(session, route, world.store_a, world.store_b), headers
    )
    assert r.status_code == 404, r.text
    # Exactly what an id that does not exist answers: nothing tells the two apart.
    unknown = await _call(
        client, route, await _url(session, route, world.store_a, None, unknown=True), headers
    )
    assert unknown.status_code == 404, unknown.text
    assert r.json()["error"] == unknown.json()["error"]
    assert r.json()["details"] == unknown.json()["details"]
    # The control: the same caller reaches the same kind of resource in their own store,
    # so the 404 above came from the store scoping and nothing else.
    r = await _call(client, route, await _url(session, route, world.store_a, None), headers)
    assert r.status_code not in (401, 403, 404), r.text
    assert r.status_code < 500, r.text


@pytest.mark.parametrize("route", PENDING_BLOCKED, ids=lambda r: r.id)
async def test_pending_password_change_is_403(
    client: httpx.AsyncClient, session: AsyncSession, world: World, route: Guarded
) -> None:
    user, _ = await _user_with(session, ALL_PERMS, world.store_a, must_change_password=True)
    url = await _url(session, route, world.store_a, None)
    r = await _call(client, route, url, await auth_headers(session, user))
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "password_change_required"


async def test_auth_is_checked_before_the_query_and_body_are_validated(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """FastAPI solves dependencies (our auth) before it reports parameter or body errors."""
    r = await client.get("/api/v1/users", params={"size": "many", "store_id": "x"})
    assert r.status_code == 401
    r = await client.post("/api/v1/users", json={"username": 5, "nonsense": True})
    assert r.status_code == 401
    r = await client.get("/api/v1/users/not-a-number")
    assert r.status_code == 401
    cashier = await make_user(session, role="cashier")
    r = await client.post(
        "/api/v1/roles", headers=await auth_headers(session, cashier), json={"code": 5}
    )
    assert r.status_code == 403
    # Only a body that is not JSON at all is refused before auth runs (FastAPI parses it
    # first); the 422 says nothing about the resource or the caller.
    r = await client.post(
        "/api/v1/users", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert r.json()["details"][0]["reason"] == "json_invalid"

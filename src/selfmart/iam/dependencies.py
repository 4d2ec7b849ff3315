"""Authentication and the permission each route declares.

`RequirePermission(Perm.X)` is the only way a console route gets an Actor; the route walker
test (tests/test_routes.py) fails on any route that declares neither a permission, a
terminal signature, nor a place on PUBLIC_ROUTES.

FastAPI solves these dependencies before it reports path, query or body validation errors,
so a caller without credentials or without the permission always gets 401/403 first (only a
body that is not JSON at all is refused earlier, with a 422 that reveals nothing).

FastAPI solves a route's dependencies in the order its parameters are written, so a route
that names its resource (`product: ProductForUpdate`) before its permission would look the id
up first and answer 404 to a stranger. `guard_first`, included by create_app with every
console router, runs the route's own guard before anything else whatever the order: no id is
looked up for a caller who may not call the route.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from selfmart.deps import SessionDep
from selfmart.errors import Forbidden, Unauthorized
from selfmart.iam.actor import Actor
from selfmart.iam.exceptions import PasswordChangeRequired
from selfmart.iam.permissions import Perm
from selfmart.iam.tokens import decode_access_token
from selfmart.kit.time import utcnow
from selfmart.models import AuthSession, Role, RolePermission, User, UserRole, UserStore

#: (method, path) pairs that need no credentials.
PUBLIC_ROUTES: set[tuple[str, str]] = {
    ("GET", "/api/health"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    # Signed, expiring image links: the HMAC in the query is the credential.
    ("GET", "/api/v1/media/{key:path}"),
    # A new terminal has no key yet: it proves itself with the one-time activation code.
    ("POST", "/api/terminal/v1/activate"),
    # Customers: the receipt's signed link, and order no. + phone's last four (rate-limited).
    ("GET", "/api/v1/public/orders/receipt/{token}"),
    ("GET", "/api/v1/public/orders/lookup"),
    # Payment platforms' callbacks: believed only once their signature verifies.
    ("POST", "/api/payments/notify/{channel}/{account_id}"),
    # The phone page pays an unpaid order through the receipt's signed link (rate-limited).
    ("GET", "/api/v1/public/orders/receipt/{token}/payment"),
    ("POST", "/api/v1/public/orders/receipt/{token}/payments"),
    # A member's own page: an SMS code to sign in with, and the sign-in (rate-limited); the
    # page's other routes take the member session it gives (MemberSession).
    ("POST", "/api/v1/public/members/sms-code"),
    ("POST", "/api/v1/public/members/sign-in"),
    # Load balancers' probes; /metrics takes a bearer token or answers loopback only.
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
}

_bearer = HTTPBearer(auto_error=False, description="Access token from /api/v1/auth/login")


async def load_actor(session: SessionDep, user: User, session_id: str | None) -> Actor:
    rows = (
        await session.execute(
            select(Role.all_stores, Role.refund_limit_fen, Role.id)
            .join(UserRole, UserRole.role_id == Role.id)
            .where(UserRole.user_id == user.id)
        )
    ).all()
    role_ids = [r.id for r in rows]
    perms = set(
        (
            await session.scalars(
                select(RolePermission.permission).where(RolePermission.role_id.in_(role_ids))
            )
        ).all()
    )
    all_stores = any(r.all_stores for r in rows)
    store_ids: frozenset[int] | None = None
    if not all_stores:
        store_ids = frozenset(
            (
                await session.scalars(
                    select(UserStore.store_id).where(UserStore.user_id == user.id)
                )
            ).all()
        )
    limits = [r.refund_limit_fen for r in rows]
    refund_limit = (
        None
        if (not limits or any(lim is None for lim in limits))
        else max(lim for lim in limits if lim is not None)
    )
    return Actor(
        kind="user",
        id=user.id,
        name=user.username,
        permissions=frozenset(perms),
        store_ids=store_ids,
        session_id=session_id,
        refund_limit_fen=refund_limit,
        must_change_password=user.must_change_password,
    )


async def current_actor(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    known: Actor | None = getattr(request.state, "console_actor", None)
    if known is not None:  # guard_first authenticated this request already
        return known
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized()
    claims = decode_access_token(credentials.credentials)
    if claims is None:
        raise Unauthorized("The access token is invalid or expired", field="authorization")
    auth = await session.get(AuthSession, claims["sid"])
    now = utcnow()
    if auth is None or auth.revoked_at is not None or auth.expires_at <= now:
        raise Unauthorized("The session has ended; please log in again")
    user = await session.get(User, int(claims["sub"]))
    if user is None or not user.is_active or auth.user_id != user.id:
        raise Unauthorized("The account is not active")
    actor = await load_actor(session, user, auth.id)
    request.state.actor = request.state.console_actor = actor
    return actor


CurrentActor = Annotated[Actor, Depends(current_actor)]


class RequirePermission:
    """Dependency: the caller is logged in and holds `perm`; yields the Actor."""

    def __init__(self, perm: Perm) -> None:
        self.perm = perm

    async def __call__(self, actor: CurrentActor) -> Actor:
        self.check(actor)
        return actor

    def check(self, actor: Actor) -> None:
        if actor.must_change_password:
            raise PasswordChangeRequired()
        if not actor.can(self.perm):
            raise Forbidden(
                f"Permission {self.perm.value} is required", code_required=self.perm.value
            )


class Authenticated:
    """Dependency for routes any logged-in user may call (own profile, own messages).

    `allow_pending_password_change` is for the few routes a user who must change their
    password may still reach: their profile, the password change itself and logout.
    """

    def __init__(self, *, allow_pending_password_change: bool = False) -> None:
        self.allow_pending_password_change = allow_pending_password_change

    async def __call__(self, actor: CurrentActor) -> Actor:
        self.check(actor)
        return actor

    def check(self, actor: Actor) -> None:
        if actor.must_change_password and not self.allow_pending_password_change:
            raise PasswordChangeRequired()


Guard = RequirePermission | Authenticated


def declared_guards(dependant: Dependant) -> tuple[Guard, ...]:
    """Every RequirePermission / Authenticated in a route's dependency tree."""
    call: Any = dependant.call
    own: tuple[Guard, ...] = (call,) if isinstance(call, Guard) else ()
    return own + tuple(g for sub in dependant.dependencies for g in declared_guards(sub))


#: id(dependant) -> (dependant, its guards); the dependant is kept so that its id is never
#: reused for another (FastAPI's routes are not hashable).
_GUARDS: dict[int, tuple[Dependant, tuple[Guard, ...]]] = {}


async def guard_first(request: Request, session: SessionDep) -> None:
    """Run the matched route's guards before any of its other dependencies (create_app lists
    this one first on every console router). A public route declares none and passes.

    The bearer token is read here by calling the scheme, not by declaring it, so that the
    OpenAPI document does not claim public routes need one."""
    route = request.scope.get("route")
    dependant: Dependant | None = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = _GUARDS.get(id(dependant))
    if known is None or known[0] is not dependant:
        known = _GUARDS[id(dependant)] = (dependant, declared_guards(dependant))
    guards = known[1]
    if not guards:
        return
    actor = await current_actor(request, session, await _bearer(request))
    for guard in guards:
        guard.check(actor)


def require(perm: Perm) -> object:
    """`actor: Annotated[Actor, require(Perm.X)]` — the declaration the route walker finds."""
    return Depends(RequirePermission(perm))


def authenticated(*, allow_pending_password_change: bool = False) -> object:
    return Depends(Authenticated(allow_pending_password_change=allow_pending_password_change))

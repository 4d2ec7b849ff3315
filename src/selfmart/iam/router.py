"""HTTP routes of the iam domain: auth, the caller's profile, users, roles, the login log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime

from selfmart.deps import SessionDep
from selfmart.errors import ErrorBody, error_responses
from selfmart.iam import service, sessions
from selfmart.iam.actor import Actor
from selfmart.iam.dependencies import CurrentActor, authenticated, require
from selfmart.iam.permissions import Perm
from selfmart.iam.schemas import (
    LoginIn,
    LoginLogRead,
    Me,
    MeUpdate,
    PasswordChange,
    PasswordReset,
    PermissionInfo,
    RefreshIn,
    RoleCreate,
    RoleRead,
    RoleUpdate,
    TokenPair,
    UserCreate,
    UserRead,
    UserUpdate,
)
from selfmart.kit.context import current_request_id
from selfmart.kit.pagination import LOG_COUNT_CAP, Page, PageParams, page_of, page_params
from selfmart.kit.ratelimit import rate_limited
from selfmart.models import User

router = APIRouter(tags=["iam"])

PathId = Path(ge=1, le=2_147_483_647)
Pages = Annotated[PageParams, Depends(page_params)]
#: Routes a user who must change their password may still reach.
SelfService = Annotated[Actor, authenticated(allow_pending_password_change=True)]


def _refusal(denied: sessions.Denied) -> JSONResponse:
    """Render a refused login or refresh; unlike a raised error, its record commits."""
    exc = denied.error
    body = ErrorBody(
        error=exc.code, message=exc.message, details=exc.details, request_id=current_request_id()
    )
    return JSONResponse(body.model_dump(), exc.status, headers={"WWW-Authenticate": "Bearer"})


async def _user_in_scope(
    user_id: Annotated[int, PathId], session: SessionDep, actor: CurrentActor
) -> User:
    """The path's user, if the caller may see it. Routes list it after their permission, so
    a caller without the permission gets 403 before anything is looked up; and it is solved
    before the body is validated, so another store's user is a 404 whatever the body says."""
    return await service.get_user(session, user_id, actor=actor)


UserInScope = Annotated[User, Depends(_user_in_scope)]


# --- auth ---------------------------------------------------------------------------------


@router.post(
    "/auth/login",
    operation_id="login",
    response_model=TokenPair,
    responses=error_responses(401, 429),
    dependencies=[rate_limited("login")],
)
async def login(body: LoginIn, session: SessionDep) -> TokenPair | JSONResponse:
    result = await sessions.login(session, username=body.username, password=body.password)
    return _refusal(result) if isinstance(result, sessions.Denied) else result


@router.post(
    "/auth/refresh",
    operation_id="refresh",
    response_model=TokenPair,
    responses=error_responses(401, 429),
    dependencies=[rate_limited("refresh")],
)
async def refresh(body: RefreshIn, session: SessionDep) -> TokenPair | JSONResponse:
    result = await sessions.refresh(session, refresh_token=body.refresh_token)
    return _refusal(result) if isinstance(result, sessions.Denied) else result


@router.post(
    "/auth/logout",
    operation_id="logout",
    status_code=204,
    response_class=Response,
    responses=error_responses(401),
)
async def logout(actor: SelfService, session: SessionDep) -> None:
    await sessions.logout(session, actor=actor)


@router.get("/auth/me", operation_id="get_me", responses=error_responses(401))
async def get_me(actor: SelfService, session: SessionDep) -> Me:
    return await service.get_me(session, actor=actor)


@router.patch("/auth/me", operation_id="update_me", responses=error_responses(401))
async def update_me(body: MeUpdate, actor: SelfService, session: SessionDep) -> Me:
    return await service.update_me(session, body, actor=actor)


@router.post(
    "/auth/password",
    operation_id="change_password",
    status_code=204,
    response_class=Response,
    responses=error_responses(401),
)
async def change_password(body: PasswordChange, actor: SelfService, session: SessionDep) -> None:
    await sessions.change_password(
        session,
        actor=actor,
        current_password=body.current_password,
        new_password=body.new_password,
    )


@router.get(
    "/auth/permissions", operation_id="list_permissions", responses=error_responses(401, 403)
)
async def list_permissions(
    actor: Annotated[Actor, require(Perm.ROLE_READ)],
) -> list[PermissionInfo]:
    return service.permission_catalog()


# --- users --------------------------------------------------------------------------------


@router.get("/users", operation_id="list_users", responses=error_responses(401, 403))
async def list_users(
    actor: Annotated[Actor, require(Perm.USER_READ)],
    session: SessionDep,
    params: Pages,
    q: Annotated[str | None, Query(max_length=100)] = None,
    role_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    store_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    is_active: bool | None = None,
) -> Page[UserRead]:
    users, total = await service.list_users(
        session, params, actor=actor, q=q, role_id=role_id, store_id=store_id, is_active=is_active
    )
    return Page(
        items=[UserRead.of(u) for u in users], total=total, page=params.page, size=params.size
    )


@router.post(
    "/users",
    operation_id="create_user",
    status_code=201,
    responses=error_responses(401, 403, 409),
)
async def create_user(
    body: UserCreate, actor: Annotated[Actor, require(Perm.USER_WRITE)], session: SessionDep
) -> UserRead:
    return UserRead.of(await service.create_user(session, body, actor=actor))


@router.get("/users/{user_id}", operation_id="get_user", responses=error_responses(401, 403, 404))
async def get_user(actor: Annotated[Actor, require(Perm.USER_READ)], user: UserInScope) -> UserRead:
    return UserRead.of(user)


@router.patch(
    "/users/{user_id}", operation_id="update_user", responses=error_responses(401, 403, 404)
)
async def update_user(
    actor: Annotated[Actor, require(Perm.USER_WRITE)],
    user: UserInScope,
    body: UserUpdate,
    session: SessionDep,
) -> UserRead:
    return UserRead.of(await service.update_user(session, user, body, actor=actor))


@router.post(
    "/users/{user_id}/disable",
    operation_id="disable_user",
    responses=error_responses(401, 403, 404),
)
async def disable_user(
    actor: Annotated[Actor, require(Perm.USER_WRITE)], user: UserInScope, session: SessionDep
) -> UserRead:
    return UserRead.of(await service.disable_user(session, user, actor=actor))


@router.post(
    "/users/{user_id}/enable",
    operation_id="enable_user",
    responses=error_responses(401, 403, 404),
)
async def enable_user(
    actor: Annotated[Actor, require(Perm.USER_WRITE)], user: UserInScope, session: SessionDep
) -> UserRead:
    return UserRead.of(await service.enable_user(session, user, actor=actor))


@router.post(
    "/users/{user_id}/unlock",
    operation_id="unlock_user",
    responses=error_responses(401, 403, 404),
)
async def unlock_user(
    actor: Annotated[Actor, require(Perm.USER_WRITE)], user: UserInScope, session: SessionDep
) -> UserRead:
    return UserRead.of(await service.unlock_user(session, user, actor=actor))


@router.post(
    "/users/{user_id}/reset-password",
    operation_id="reset_user_password",
    responses=error_responses(401, 403, 404),
)
async def reset_user_password(
    actor: Annotated[Actor, require(Perm.USER_WRITE)],
    user: UserInScope,
    body: PasswordReset,
    session: SessionDep,
) -> UserRead:
    return UserRead.of(await service.reset_password(session, user, body.new_password, actor=actor))


# --- roles --------------------------------------------------------------------------------


@router.get("/roles", operation_id="list_roles", responses=error_responses(401, 403))
async def list_roles(
    actor: Annotated[Actor, require(Perm.ROLE_READ)],
    session: SessionDep,
    params: Pages,
    q: Annotated[str | None, Query(max_length=100)] = None,
) -> Page[RoleRead]:
    rows, total = await service.list_roles(session, params, actor=actor, q=q)
    return Page(
        items=[RoleRead.of(r, n) for r, n in rows], total=total, page=params.page, size=params.size
    )


@router.post(
    "/roles", operation_id="create_role", status_code=201, responses=error_responses(401, 403, 409)
)
async def create_role(
    body: RoleCreate, actor: Annotated[Actor, require(Perm.ROLE_WRITE)], session: SessionDep
) -> RoleRead:
    return RoleRead.of(await service.create_role(session, body, actor=actor), 0)


@router.get("/roles/{role_id}", operation_id="get_role", responses=error_responses(401, 403, 404))
async def get_role(
    actor: Annotated[Actor, require(Perm.ROLE_READ)],
    role_id: Annotated[int, PathId],
    session: SessionDep,
) -> RoleRead:
    return RoleRead.of(*await service.get_role(session, role_id, actor=actor))


@router.patch(
    "/roles/{role_id}",
    operation_id="update_role",
    responses=error_responses(401, 403, 404, 409),
)
async def update_role(
    actor: Annotated[Actor, require(Perm.ROLE_WRITE)],
    role_id: Annotated[int, PathId],
    body: RoleUpdate,
    session: SessionDep,
) -> RoleRead:
    return RoleRead.of(*await service.update_role(session, role_id, body, actor=actor))


@router.delete(
    "/roles/{role_id}",
    operation_id="delete_role",
    status_code=204,
    response_class=Response,
    responses=error_responses(401, 403, 404, 409),
)
async def delete_role(
    actor: Annotated[Actor, require(Perm.ROLE_WRITE)],
    role_id: Annotated[int, PathId],
    session: SessionDep,
) -> None:
    await service.delete_role(session, role_id, actor=actor)


# --- login log ----------------------------------------------------------------------------


@router.get("/login-logs", operation_id="list_login_logs", responses=error_responses(401, 403))
async def list_login_logs(
    actor: Annotated[Actor, require(Perm.LOGIN_LOG_READ)],
    session: SessionDep,
    params: Pages,
    username: Annotated[str | None, Query(max_length=64)] = None,
    success: bool | None = None,
    ip: Annotated[str | None, Query(max_length=64)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> Page[LoginLogRead]:
    rows, total = await service.list_login_logs(
        session,
        params,
        actor=actor,
        username=username,
        success=success,
        ip=ip,
        since=since,
        until=until,
    )
    items = [LoginLogRead.model_validate(r) for r in rows]
    return page_of(items, total, params, count_cap=LOG_COUNT_CAP)

"""People and roles: the caller's own profile, users, roles, the permission catalog, the login log.

Two rules keep delegation safe. An admin sees only the users who share a store with them.
And nobody hands out, takes away or acts on access they do not hold themselves: granting a
role needs every permission it carries (and all stores for an all-stores role, and a refund
limit no higher than one's own); assigning a store needs that store; managing a user needs
to hold everything that user holds, so that a store admin can neither disable nor take over
(by resetting the password of) someone more powerful.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import ColumnElement, delete, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from selfmart.audit import service as audit
from selfmart.errors import AlreadyExists, ErrorDetail, NotFound, ValidationFailed
from selfmart.iam import sessions
from selfmart.iam.actor import SYSTEM, Actor
from selfmart.iam.dependencies import load_actor
from selfmart.iam.exceptions import (
    BeyondYourReach,
    BuiltinRoleFixed,
    CannotDisableSelf,
    RoleInUse,
)
from selfmart.iam.passwords import hash_password_async, policy_problems
from selfmart.iam.permissions import BUILTIN_ROLES, GROUPS, Perm
from selfmart.iam.schemas import (
    Me,
    MeUpdate,
    PermissionInfo,
    RoleCreate,
    RoleRef,
    RoleUpdate,
    UserCreate,
    Username,
    UserUpdate,
)
from selfmart.kit.pagination import LOG_COUNT_CAP, PageParams, paginate
from selfmart.kit.time import utcnow
from selfmart.models import (
    LoginLog,
    Role,
    RolePermission,
    Store,
    User,
    UserRole,
    UserStore,
)

USER_FIELDS = ["username", "display_name", "email", "phone", "is_active", "must_change_password"]
ROLE_FIELDS = ["code", "name", "description", "refund_limit_fen"]


# --- the caller ---------------------------------------------------------------------------


async def get_me(session: AsyncSession, *, actor: Actor) -> Me:
    user = await _load_user(session, _own_id(actor))
    return Me(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        email=user.email,
        phone=user.phone,
        locale=user.locale,
        roles=[RoleRef.model_validate(r) for r in sorted(user.roles, key=lambda r: r.id)],
        permissions=sorted(actor.permissions),
        store_ids=None if actor.store_ids is None else sorted(actor.store_ids),
        must_change_password=user.must_change_password,
        refund_limit_fen=actor.refund_limit_fen,
    )


async def update_me(session: AsyncSession, changes: MeUpdate, *, actor: Actor) -> Me:
    user = await _load_user(session, _own_id(actor))
    fields = changes.model_dump(exclude_unset=True)
    before = audit.snapshot(user, fields)
    for name, value in fields.items():
        setattr(user, name, value)
    await session.flush()
    await audit.record(
        session,
        actor,
        "user.update_profile",
        "user",
        user.id,
        store_id=await sessions.audit_store_id(session, user.id),
        before=before,
        after=audit.snapshot(user, fields),
    )
    return await get_me(session, actor=actor)


def _own_id(actor: Actor) -> int:
    assert actor.kind == "user"
    assert actor.id is not None
    return actor.id


def permission_catalog() -> list[PermissionInfo]:
    grouped = {p: group for group, perms in GROUPS.items() for p in perms}
    return [PermissionInfo(code=p.value, group=grouped.get(p, "other")) for p in Perm]


# --- users --------------------------------------------------------------------------------


def _visible_users(actor: Actor) -> ColumnElement[bool] | None:
    """Users who share a store with the actor; None when the actor sees every store."""
    if actor.store_ids is None:
        return None
    return exists().where(UserStore.user_id == User.id, UserStore.store_id.in_(actor.store_ids))


def _with_access() -> tuple[Any, ...]:
    return (selectinload(User.roles), selectinload(User.stores))


async def _load_user(session: AsyncSession, user_id: int) -> User:
    user = await session.scalar(
        select(User)
        .where(User.id == user_id)
        .options(*_with_access())
        .execution_options(populate_existing=True)
    )
    if user is None:
        raise NotFound("No such user")
    return user


async def list_users(
    session: AsyncSession,
    params: PageParams,
    *,
    actor: Actor,
    q: str | None = None,
    role_id: int | None = None,
    store_id: int | None = None,
    is_active: bool | None = None,
) -> tuple[list[User], int]:
    stmt = select(User).options(*_with_access()).order_by(User.id)
    visible = _visible_users(actor)
    if visible is not None:
        stmt = stmt.where(visible)
    if q:
        stmt = stmt.where(
            or_(
                User.username.contains(q.lower(), autoescape=True),
                User.display_name.contains(q, autoescape=True),
                User.phone.contains(q, autoescape=True),
                User.email.contains(q, autoescape=True),
            )
        )
    if role_id is not None:
        stmt = stmt.where(exists().where(UserRole.user_id == User.id, UserRole.role_id == role_id))
    if store_id is not None:
        stmt = stmt.where(
            exists().where(UserStore.user_id == User.id, UserStore.store_id == store_id)
        )
    if is_active is not None:
        stmt = stmt.where(User.is_active == is_active)
    return await paginate(session, stmt, params)


async def get_user(session: AsyncSession, user_id: int, *, actor: Actor) -> User:
    """A user the actor may see (one sharing a store with them), else NotFound."""
    stmt = select(User).where(User.id == user_id).options(*_with_access())
    visible = _visible_users(actor)
    if visible is not None:
        stmt = stmt.where(visible)
    user = await session.scalar(stmt)
    if user is None:
        raise NotFound("No such user", field="user_id")
    return user


def _refund_above(actor: Actor, perms: Iterable[str], limit: int | None) -> bool:
    """Would `limit` let someone refund more than the actor may?"""
    if Perm.ORDER_REFUND.value not in perms or actor.refund_limit_fen is None:
        return False
    return limit is None or limit > actor.refund_limit_fen


def _check_grantable(actor: Actor, role: Role) -> None:
    perms = {p.permission for p in role.permissions}
    missing = sorted(perms - actor.permissions)
    if missing:
        raise BeyondYourReach(
            f"Role {role.code} carries permissions you do not hold: {', '.join(missing)}",
            field="role_ids",
        )
    if role.all_stores and actor.store_ids is not None:
        raise BeyondYourReach(f"Role {role.code} covers every store; you do not", field="role_ids")
    if _refund_above(actor, perms, role.refund_limit_fen):
        raise BeyondYourReach(f"Role {role.code} may refund more than you may", field="role_ids")


def _check_stores_grantable(actor: Actor, store_ids: Iterable[int]) -> None:
    if actor.store_ids is None:
        return
    outside = sorted(set(store_ids) - actor.store_ids)
    if outside:
        raise BeyondYourReach(
            f"You are not assigned to store(s) {', '.join(map(str, outside))}",
            field="store_ids",
        )


async def _check_reach(session: AsyncSession, actor: Actor, user: User) -> None:
    """The actor holds everything `user` holds (permissions, stores, refund limit)."""
    target = await load_actor(session, user, None)
    missing = target.permissions - actor.permissions
    if missing:
        raise BeyondYourReach(
            f"{user.username} holds permissions you do not: {', '.join(sorted(missing))}"
        )
    if actor.store_ids is not None and (
        target.store_ids is None or not target.store_ids <= actor.store_ids
    ):
        raise BeyondYourReach(f"{user.username} works in stores you are not assigned to")
    if _refund_above(actor, target.permissions, target.refund_limit_fen):
        raise BeyondYourReach(f"{user.username} may refund more than you may")


async def _roles_by_id(session: AsyncSession, role_ids: Sequence[int]) -> list[Role]:
    wanted = sorted(set(role_ids))
    roles = list(
        (
            await session.scalars(
                select(Role)
                .where(Role.id.in_(wanted))
                .options(selectinload(Role.permissions))
                .order_by(Role.id)
            )
        ).all()
    )
    unknown = sorted(set(wanted) - {r.id for r in roles})
    if unknown:
        raise ValidationFailed(
            details=[
                ErrorDetail(field="role_ids", reason="not_found", message=f"No role with id {i}")
                for i in unknown
            ]
        )
    return roles


async def _check_stores_exist(session: AsyncSession, store_ids: Sequence[int]) -> None:
    wanted = set(store_ids)
    found = set((await session.scalars(select(Store.id).where(Store.id.in_(wanted)))).all())
    unknown = sorted(wanted - found)
    if unknown:
        raise ValidationFailed(
            details=[
                ErrorDetail(field="store_ids", reason="not_found", message=f"No store with id {i}")
                for i in unknown
            ]
        )


async def _check_stores(session: AsyncSession, actor: Actor, store_ids: Sequence[int]) -> None:
    # Reach first, so that a store admin cannot probe which other store ids exist.
    _check_stores_grantable(actor, store_ids)
    await _check_stores_exist(session, store_ids)


def _user_snapshot(user: User, role_ids: Iterable[int], store_ids: Iterable[int]) -> dict[str, Any]:
    snap = audit.snapshot(user, USER_FIELDS)
    snap["role_ids"] = sorted(role_ids)
    snap["store_ids"] = sorted(store_ids)
    return snap


async def create_user(session: AsyncSession, data: UserCreate, *, actor: Actor) -> User:
    store_ids = sorted(set(data.store_ids))
    if actor.store_ids is not None and not store_ids:
        # A user of none of your stores would vanish from your view the moment it exists.
        raise ValidationFailed(
            "Assign the user to at least one of your stores",
            details=[ErrorDetail(field="store_ids", reason="required")],
        )
    await _check_stores(session, actor, store_ids)
    roles = await _roles_by_id(session, data.role_ids)
    for role in roles:
        _check_grantable(actor, role)
    problems = policy_problems(data.password, username=data.username)
    if problems:
        raise ValidationFailed(
            "The password breaks the password policy",
            details=sessions.policy_error(problems, "password"),
        )
    if await session.scalar(select(User.id).where(User.username == data.username)):
        raise AlreadyExists(f"The username {data.username} is taken", field="username")
    now = utcnow()
    user = User(
        username=data.username,
        display_name=data.display_name,
        email=data.email,
        phone=data.phone,
        password_hash=await hash_password_async(data.password),
        password_changed_at=now,
        # Whoever set this password knows it: the owner picks their own at first login.
        must_change_password=True,
        is_active=True,
        failed_logins=0,
    )
    try:
        async with session.begin_nested():
            session.add(user)
            await session.flush()
    except IntegrityError as exc:  # lost a race for the same username
        raise AlreadyExists(f"The username {data.username} is taken", field="username") from exc
    session.add_all([UserRole(user_id=user.id, role_id=r.id) for r in roles])
    session.add_all([UserStore(user_id=user.id, store_id=s) for s in store_ids])
    await session.flush()
    await audit.record(
        session,
        actor,
        "user.create",
        "user",
        user.id,
        store_id=store_ids[0] if store_ids else None,
        after=_user_snapshot(user, [r.id for r in roles], store_ids),
    )
    return await _load_user(session, user.id)


async def update_user(
    session: AsyncSession, user: User, changes: UserUpdate, *, actor: Actor
) -> User:
    await _check_reach(session, actor, user)
    old_roles = {r.id for r in user.roles}
    old_stores = {s.store_id for s in user.stores}
    before = _user_snapshot(user, old_roles, old_stores)
    fields = changes.model_dump(exclude_unset=True)
    new_roles = old_roles
    if changes.role_ids is not None:
        new_roles = set(changes.role_ids)
        changed = await _roles_by_id(session, sorted(new_roles ^ old_roles))
        for role in changed:  # granting and taking away alike
            _check_grantable(actor, role)
    new_stores = old_stores
    if changes.store_ids is not None:
        new_stores = set(changes.store_ids)
        await _check_stores(session, actor, sorted(new_stores ^ old_stores))
    for name in ("display_name", "email", "phone"):
        if name in fields:
            setattr(user, name, fields[name])
    if new_roles != old_roles:
        await session.execute(
            delete(UserRole).where(
                UserRole.user_id == user.id, UserRole.role_id.in_(old_roles - new_roles)
            )
        )
        session.add_all([UserRole(user_id=user.id, role_id=r) for r in new_roles - old_roles])
    if new_stores != old_stores:
        await session.execute(
            delete(UserStore).where(
                UserStore.user_id == user.id, UserStore.store_id.in_(old_stores - new_stores)
            )
        )
        session.add_all([UserStore(user_id=user.id, store_id=s) for s in new_stores - old_stores])
    await session.flush()
    user = await _load_user(session, user.id)
    await audit.record(
        session,
        actor,
        "user.update",
        "user",
        user.id,
        store_id=min(old_stores | new_stores, default=None),
        before=before,
        after=_user_snapshot(user, new_roles, new_stores),
    )
    return user


async def _set_state(
    session: AsyncSession,
    user: User,
    action: str,
    fields: dict[str, Any],
    *,
    actor: Actor,
    end_sessions: str | None = None,
    note: str | None = None,
    reach_checked: bool = False,
) -> User:
    if not reach_checked:
        await _check_reach(session, actor, user)
    before = audit.snapshot(user, fields)
    for name, value in fields.items():
        setattr(user, name, value)
    await session.flush()
    if end_sessions is not None:
        ended = await sessions.revoke_user_sessions(session, user.id, reason=end_sessions)
        note = f"{ended} session(s) ended"
    await audit.record(
        session,
        actor,
        action,
        "user",
        user.id,
        store_id=min((s.store_id for s in user.stores), default=None),
        before=before,
        after=audit.snapshot(user, fields),
        note=note,
    )
    return await _load_user(session, user.id)


async def disable_user(session: AsyncSession, user: User, *, actor: Actor) -> User:
    """Users are never deleted (their names stay on orders and audit entries): disabled."""
    if user.id == actor.id:
        raise CannotDisableSelf()
    return await _set_state(
        session, user, "user.disable", {"is_active": False}, actor=actor, end_sessions="disabled"
    )


async def enable_user(session: AsyncSession, user: User, *, actor: Actor) -> User:
    return await _set_state(session, user, "user.enable", {"is_active": True}, actor=actor)


async def unlock_user(session: AsyncSession, user: User, *, actor: Actor) -> User:
    return await _set_state(
        session, user, "user.unlock", {"locked_until": None, "failed_logins": 0}, actor=actor
    )


async def reset_password(
    session: AsyncSession, user: User, new_password: str, *, actor: Actor
) -> User:
    """Set a password the owner must replace at next login; ends their sessions and lockout."""
    await _check_reach(session, actor, user)
    problems = policy_problems(new_password, username=user.username)
    if problems:
        raise ValidationFailed(
            "The password breaks the password policy",
            details=sessions.policy_error(problems, "new_password"),
        )
    return await _set_state(
        session,
        user,
        "user.reset_password",
        {
            "password_hash": await hash_password_async(new_password),
            "password_changed_at": utcnow(),
            "must_change_password": True,
            "locked_until": None,
            "failed_logins": 0,
        },
        actor=actor,
        end_sessions="password_reset",
        reach_checked=True,
    )


async def create_super_admin(
    session: AsyncSession, *, username: str, password: str, display_name: str | None = None
) -> User:
    """The first account of a fresh install (`selfmart create-admin`). Its password was typed
    on a console, perhaps shared: the owner must pick a new one at first login."""
    name = TypeAdapter(Username).validate_python(username)
    problems = policy_problems(password, username=name)
    if problems:
        raise ValidationFailed(
            "The password breaks the password policy",
            details=sessions.policy_error(problems, "password"),
        )
    if await session.scalar(select(User.id).where(User.username == name)):
        raise AlreadyExists(f"The username {name} is taken", field="username")
    roles = await sync_builtin_roles(session)
    now = utcnow()
    user = User(
        username=name,
        display_name=display_name or name,
        password_hash=await hash_password_async(password),
        password_changed_at=now,
        must_change_password=True,
        is_active=True,
        failed_logins=0,
    )
    session.add(user)
    await session.flush()
    session.add(UserRole(user_id=user.id, role_id=roles["super_admin"].id))
    await session.flush()
    await audit.record(
        session,
        SYSTEM,
        "user.create",
        "user",
        user.id,
        after=_user_snapshot(user, [roles["super_admin"].id], []),
        note="selfmart create-admin",
    )
    return user


# --- roles --------------------------------------------------------------------------------


async def _user_counts(session: AsyncSession, role_ids: Sequence[int]) -> dict[int, int]:
    rows = await session.execute(
        select(UserRole.role_id, func.count())
        .where(UserRole.role_id.in_(role_ids))
        .group_by(UserRole.role_id)
    )
    return {role_id: int(n) for role_id, n in rows.all()}


async def list_roles(
    session: AsyncSession, params: PageParams, *, actor: Actor, q: str | None = None
) -> tuple[list[tuple[Role, int]], int]:
    stmt = select(Role).options(selectinload(Role.permissions)).order_by(Role.id)
    if q:
        stmt = stmt.where(
            or_(Role.code.contains(q, autoescape=True), Role.name.contains(q, autoescape=True))
        )
    roles, total = await paginate(session, stmt, params)
    counts = await _user_counts(session, [r.id for r in roles])
    return [(r, counts.get(r.id, 0)) for r in roles], total


async def get_role(session: AsyncSession, role_id: int, *, actor: Actor) -> tuple[Role, int]:
    role = await session.scalar(
        select(Role)
        .where(Role.id == role_id)
        .options(selectinload(Role.permissions))
        .execution_options(populate_existing=True)
    )
    if role is None:
        raise NotFound("No such role", field="role_id")
    return role, (await _user_counts(session, [role.id])).get(role.id, 0)


def _check_permission_codes(actor: Actor, codes: Iterable[str], changed: Iterable[str]) -> None:
    known = {p.value for p in Perm}
    unknown = sorted(set(codes) - known)
    if unknown:
        raise ValidationFailed(
            "Unknown permission codes",
            details=[
                ErrorDetail(
                    field="permissions",
                    reason="unknown_permission",
                    message=f"Unknown permission code: {code}",
                )
                for code in unknown
            ],
        )
    missing = sorted(set(changed) - actor.permissions)
    if missing:
        raise BeyondYourReach(f"You do not hold: {', '.join(missing)}", field="permissions")


def _role_snapshot(role: Role, perms: Iterable[str]) -> dict[str, Any]:
    snap = audit.snapshot(role, ROLE_FIELDS)
    snap["permissions"] = sorted(perms)
    return snap


async def _set_codes(session: AsyncSession, role: Role, have: set[str], want: set[str]) -> None:
    """Give `role` (holding `have`) exactly the permission codes `want`."""
    if have - want:
        await session.execute(
            delete(RolePermission).where(
                RolePermission.role_id == role.id, RolePermission.permission.in_(have - want)
            )
        )
    session.add_all([RolePermission(role_id=role.id, permission=p) for p in sorted(want - have)])


async def sync_builtin_roles(session: AsyncSession) -> dict[str, Role]:
    """Make every built-in role exactly what `BUILTIN_ROLES` defines: created when missing,
    given the codes it lacks and stripped of codes it no longer has (a database made before a
    role was narrowed keeps them otherwise). Custom roles are not touched. A change to an
    existing role is audited as the system's `role.update`."""
    roles: dict[str, Role] = {}
    for code, spec in BUILTIN_ROLES.items():
        want = {str(p) for p in spec["perms"]}  # type: ignore[attr-defined]
        all_stores = bool(spec["all_stores"])
        role = await session.scalar(select(Role).where(Role.code == code))
        if role is None:
            role = Role(
                code=code,
                name=str(spec["name"]),
                is_builtin=True,
                all_stores=all_stores,
                refund_limit_fen=spec.get("refund_limit_fen"),
            )
            session.add(role)
            await session.flush()
            session.add_all([RolePermission(role_id=role.id, permission=p) for p in sorted(want)])
            roles[code] = role
            continue
        have = set(
            (
                await session.scalars(
                    select(RolePermission.permission).where(RolePermission.role_id == role.id)
                )
            ).all()
        )
        if have == want and role.is_builtin and role.all_stores == all_stores:
            roles[code] = role
            continue
        before = _role_snapshot(role, have)
        before["all_stores"] = role.all_stores
        await _set_codes(session, role, have, want)
        role.is_builtin = True
        role.all_stores = all_stores
        after = _role_snapshot(role, want)
        after["all_stores"] = all_stores
        await audit.record(
            session,
            SYSTEM,
            "role.update",
            "role",
            role.id,
            before=before,
            after=after,
            note="built-in role set to its definition",
        )
        roles[code] = role
    await session.flush()
    return roles


async def create_role(session: AsyncSession, data: RoleCreate, *, actor: Actor) -> Role:
    perms = set(data.permissions)
    _check_permission_codes(actor, perms, perms)
    if _refund_above(actor, perms, data.refund_limit_fen):
        raise BeyondYourReach("The role may refund more than you may", field="refund_limit_fen")
    if await session.scalar(select(Role.id).where(Role.code == data.code)):
        raise AlreadyExists(f"A role with code {data.code} exists", field="code")
    role = Role(
        code=data.code,
        name=data.name,
        description=data.description,
        is_builtin=False,
        all_stores=False,
        refund_limit_fen=data.refund_limit_fen,
    )
    try:
        async with session.begin_nested():
            session.add(role)
            await session.flush()
    except IntegrityError as exc:
        raise AlreadyExists(f"A role with code {data.code} exists", field="code") from exc
    session.add_all([RolePermission(role_id=role.id, permission=p) for p in sorted(perms)])
    await session.flush()
    await audit.record(
        session, actor, "role.create", "role", role.id, after=_role_snapshot(role, perms)
    )
    return (await get_role(session, role.id, actor=actor))[0]


async def update_role(
    session: AsyncSession, role_id: int, changes: RoleUpdate, *, actor: Actor
) -> tuple[Role, int]:
    role, _ = await get_role(session, role_id, actor=actor)
    old_perms = {p.permission for p in role.permissions}
    before = _role_snapshot(role, old_perms)
    fields = changes.model_dump(exclude_unset=True)
    new_perms = old_perms
    if changes.permissions is not None:
        new_perms = set(changes.permissions)
        if role.is_builtin and new_perms != old_perms:
            raise BuiltinRoleFixed(field="permissions")
        _check_permission_codes(actor, new_perms, new_perms ^ old_perms)
    if "refund_limit_fen" in fields and _refund_above(actor, new_perms, changes.refund_limit_fen):
        raise BeyondYourReach("The role may refund more than you may", field="refund_limit_fen")
    for name in ("name", "description", "refund_limit_fen"):
        if name in fields:
            setattr(role, name, fields[name])
    if new_perms != old_perms:
        await _set_codes(session, role, old_perms, new_perms)
    await session.flush()
    await audit.record(
        session,
        actor,
        "role.update",
        "role",
        role.id,
        before=before,
        after=_role_snapshot(role, new_perms),
    )
    return await get_role(session, role.id, actor=actor)


async def delete_role(session: AsyncSession, role_id: int, *, actor: Actor) -> None:
    role, user_count = await get_role(session, role_id, actor=actor)
    if role.is_builtin:
        raise BuiltinRoleFixed("Built-in roles cannot be deleted")
    if user_count:
        raise RoleInUse(f"The role is assigned to {user_count} user(s)")
    before = _role_snapshot(role, [p.permission for p in role.permissions])
    await session.delete(role)
    await session.flush()
    await audit.record(session, actor, "role.delete", "role", role_id, before=before)


# --- login log ----------------------------------------------------------------------------


async def list_login_logs(
    session: AsyncSession,
    params: PageParams,
    *,
    actor: Actor,
    username: str | None = None,
    success: bool | None = None,
    ip: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[LoginLog], int]:
    """Newest first. An admin of some stores sees the attempts on accounts of their stores;
    attempts on unknown usernames only show to those who see every store."""
    stmt = select(LoginLog).order_by(LoginLog.created_at.desc(), LoginLog.id.desc())
    if actor.store_ids is not None:
        stmt = stmt.where(
            LoginLog.user_id.in_(
                select(UserStore.user_id).where(UserStore.store_id.in_(actor.store_ids))
            )
        )
    if username:
        stmt = stmt.where(LoginLog.username.contains(username.lower(), autoescape=True))
    if success is not None:
        stmt = stmt.where(LoginLog.success == success)
    if ip:
        stmt = stmt.where(LoginLog.ip == ip)
    if since is not None:
        stmt = stmt.where(LoginLog.created_at >= since)
    if until is not None:
        stmt = stmt.where(LoginLog.created_at < until)
    return await paginate(session, stmt, params, count_cap=LOG_COUNT_CAP)


async def active_users_in_roles(session: AsyncSession, role_ids: Sequence[int]) -> list[int]:
    """The active users holding any of `role_ids` (for notifying "everyone with this role")."""
    if not role_ids:
        return []
    rows = await session.scalars(
        select(User.id)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role_id.in_(list(role_ids)), User.is_active.is_(True))
        .distinct()
    )
    return sorted(int(x) for x in rows.all())


async def existing_role_ids(session: AsyncSession, role_ids: Sequence[int]) -> set[int]:
    rows = await session.scalars(select(Role.id).where(Role.id.in_(list(role_ids))))
    return {int(x) for x in rows.all()}


async def existing_user_ids(session: AsyncSession, user_ids: Sequence[int]) -> set[int]:
    rows = await session.scalars(select(User.id).where(User.id.in_(list(user_ids))))
    return {int(x) for x in rows.all()}


@dataclass(frozen=True)
class Holder:
    """An active user holding a permission, with what a mailing to them needs."""

    user_id: int
    email: str | None
    locale: str
    #: None for every store (an all-stores role); otherwise the stores assigned to them
    store_ids: frozenset[int] | None


async def active_holders(session: AsyncSession, perm: Perm) -> list[Holder]:
    """The active users whose roles grant `perm`, with their stores (for reports mailed to
    "everyone who may read this", each scoped as they would be in the console)."""
    grants = (
        await session.execute(
            select(UserRole.user_id, Role.all_stores)
            .join(Role, Role.id == UserRole.role_id)
            .join(RolePermission, RolePermission.role_id == Role.id)
            .join(User, User.id == UserRole.user_id)
            .where(RolePermission.permission == str(perm), User.is_active.is_(True))
        )
    ).all()
    # As load_actor: any all-stores role (granting perm or not) gives every store.
    ids = sorted({int(g.user_id) for g in grants})
    if not ids:
        return []
    everywhere = {
        int(x)
        for x in (
            await session.scalars(
                select(UserRole.user_id)
                .join(Role, Role.id == UserRole.role_id)
                .where(UserRole.user_id.in_(ids), Role.all_stores.is_(True))
            )
        ).all()
    }
    assigned: dict[int, set[int]] = {}
    for user_id, store_id in (
        await session.execute(
            select(UserStore.user_id, UserStore.store_id).where(UserStore.user_id.in_(ids))
        )
    ).all():
        assigned.setdefault(int(user_id), set()).add(int(store_id))
    users = (
        await session.execute(
            select(User.id, User.email, User.locale).where(User.id.in_(ids)).order_by(User.id)
        )
    ).all()
    return [
        Holder(
            user_id=int(u.id),
            email=(u.email or "").strip() or None,
            locale=u.locale,
            store_ids=None if u.id in everywhere else frozenset(assigned.get(int(u.id), ())),
        )
        for u in users
    ]

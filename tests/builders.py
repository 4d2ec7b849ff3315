"""Builders: small typed helpers that say exactly what they create."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.passwords import hash_password
from selfmart.iam.service import sync_builtin_roles
from selfmart.iam.tokens import hash_token, issue_access_token, new_refresh_token
from selfmart.kit.time import utcnow
from selfmart.models import AuthSession, Role, RolePermission, Store, User, UserRole, UserStore

DEFAULT_PASSWORD = "Passw0rd!x"
_PASSWORD_HASH = hash_password(DEFAULT_PASSWORD)  # hashed once: argon2 is slow on purpose


async def make_store(session: AsyncSession, code: str | None = None, **fields: object) -> Store:
    store = Store(
        code=code or f"S{uuid.uuid4().hex[:6].upper()}",
        name=str(fields.pop("name", "测试门店")),
        city=str(fields.pop("city", "上海")),
        **fields,
    )
    session.add(store)
    await session.flush()
    return store


async def make_role(session: AsyncSession, perms: list[str], *, code: str | None = None) -> Role:
    role = Role(code=code or f"custom_{uuid.uuid4().hex[:6]}", name="custom role")
    session.add(role)
    await session.flush()
    for p in perms:
        session.add(RolePermission(role_id=role.id, permission=p))
    await session.flush()
    return role


async def builtin_role(session: AsyncSession, code: str) -> Role:
    role = await session.scalar(select(Role).where(Role.code == code))
    if role is None:
        role = (await sync_builtin_roles(session))[code]
    return role


async def make_user(
    session: AsyncSession,
    *,
    role: str | Role = "super_admin",
    stores: list[Store] | None = None,
    username: str | None = None,
    **fields: object,
) -> User:
    user = User(
        username=username or f"u{uuid.uuid4().hex[:8]}",
        display_name=str(fields.pop("display_name", "Test User")),
        password_hash=_PASSWORD_HASH,
        **fields,
    )
    session.add(user)
    await session.flush()
    role_obj = role if isinstance(role, Role) else await builtin_role(session, role)
    session.add(UserRole(user_id=user.id, role_id=role_obj.id))
    for store in stores or []:
        session.add(UserStore(user_id=user.id, store_id=store.id))
    await session.flush()
    return user


async def auth_headers(session: AsyncSession, user: User) -> dict[str, str]:
    """Bearer headers for `user`, with a real session row (no password round trip)."""
    now = utcnow()
    sid = str(uuid.uuid4())
    session.add(
        AuthSession(
            id=sid,
            user_id=user.id,
            refresh_hash=hash_token(new_refresh_token()),
            created_at=now,
            last_used_at=now,
            expires_at=now + timedelta(days=1),
        )
    )
    await session.flush()
    return {"Authorization": f"Bearer {issue_access_token(user.id, sid)}"}

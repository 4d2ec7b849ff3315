"""Logging in and out: sessions with rotating refresh tokens, lockout, the login log.

A refused login or refresh still changes the database (a login-log row, a failure count, a
session revoked because a refresh token was reused), and that change must survive the
refusal. So these functions *return* a `Denied` instead of raising: the request's
transaction commits and the route renders the error.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.audit import security
from selfmart.audit import service as audit
from selfmart.config import get_settings
from selfmart.errors import AppError, ErrorDetail, ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.iam.exceptions import (
    AccountDisabled,
    AccountLocked,
    InvalidCredentials,
    InvalidRefreshToken,
    RefreshTokenReused,
)
from selfmart.iam.passwords import (
    hash_password_async,
    needs_rehash,
    policy_problems,
    verify_password_async,
)
from selfmart.iam.schemas import TokenPair
from selfmart.iam.tokens import hash_token, issue_access_token, new_refresh_token
from selfmart.kit import prune as prune_rows
from selfmart.kit.context import current_ip, current_user_agent
from selfmart.kit.time import utcnow
from selfmart.models import AuthSession, LoginLog, LoginThrottle, User, UserStore


@dataclass(frozen=True, slots=True)
class Denied:
    """A refused attempt, to be rendered as `error` after the transaction commits."""

    error: AppError


#: Stable reasons in the login log.
OK = "ok"
BAD_PASSWORD = "bad_password"
UNKNOWN_USER = "unknown_user"
LOCKED = "locked"
DISABLED = "disabled"
LOGOUT = "logout"
REFRESH_REUSE = "refresh_reuse"
SESSION_REVOKED = "session_revoked"
SESSION_EXPIRED = "session_expired"

POLICY_MESSAGES = {
    "password_too_short": "The password is too short",
    "password_too_long": "The password is longer than 128 characters",
    "password_too_simple": "Use at least three of: lower case, upper case, digits, symbols",
    "password_contains_username": "The password may not contain the username",
    "password_unchanged": "The new password must differ from the current one",
}


_dummy: list[str] = []


async def _dummy_hash() -> str:
    """A real hash to verify against when the username is unknown (made once, lazily)."""
    if not _dummy:
        _dummy.append(await hash_password_async("selfmart-timing-equaliser"))
    return _dummy[0]


async def log_attempt(
    session: AsyncSession, username: str, user_id: int | None, success: bool, reason: str
) -> None:
    session.add(
        LoginLog(
            created_at=utcnow(),
            username=username[:64],
            user_id=user_id,
            success=success,
            reason=reason,
            ip=current_ip(),
            user_agent=current_user_agent(),
        )
    )
    await session.flush()


def _token_pair(user: User, session_id: str, refresh_token: str, now: datetime) -> TokenPair:
    return TokenPair(
        access_token=issue_access_token(user.id, session_id, now),
        refresh_token=refresh_token,
        expires_in=get_settings().access_token_ttl_seconds,
        must_change_password=user.must_change_password,
    )


async def login(session: AsyncSession, *, username: str, password: str) -> TokenPair | Denied:
    """Check a username and password; open a session, or refuse and say why (login log)."""
    settings = get_settings()
    now = utcnow()
    name = username.strip().lower()
    user = await session.scalar(select(User).where(User.username == name))
    if user is None:
        return await _unknown_user(session, name, password, now)
    if user.locked_until is not None and user.locked_until > now:
        # Refused without looking at the password: a locked account gives no oracle.
        await log_attempt(session, user.username, user.id, False, LOCKED)
        return Denied(AccountLocked(locked_until=user.locked_until))
    if not await verify_password_async(user.password_hash, password):
        failures = await session.scalar(
            update(User)
            .where(User.id == user.id)
            .values(failed_logins=User.failed_logins + 1)
            .returning(User.failed_logins)
            .execution_options(synchronize_session=False)
        )
        await log_attempt(session, user.username, user.id, False, BAD_PASSWORD)
        if (failures or 0) >= settings.login_max_failures:
            until = now + timedelta(minutes=settings.login_lockout_minutes)
            await session.execute(
                update(User)
                .where(User.id == user.id)
                .values(failed_logins=0, locked_until=until)
                .execution_options(synchronize_session=False)
            )
            await _record_lockout(session, "user", user.id, user.username, until, failures or 0)
            return Denied(AccountLocked(locked_until=until))
        return Denied(InvalidCredentials())
    if not user.is_active:
        # Said only to someone who knows the password.
        await log_attempt(session, user.username, user.id, False, DISABLED)
        return Denied(AccountDisabled())
    if needs_rehash(user.password_hash):
        user.password_hash = await hash_password_async(password)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    refresh_token = new_refresh_token()
    auth = AuthSession(
        id=str(uuid.uuid4()),
        user_id=user.id,
        refresh_hash=hash_token(refresh_token),
        created_at=now,
        last_used_at=now,
        expires_at=now + timedelta(seconds=settings.refresh_token_ttl_seconds),
        ip=current_ip(),
        user_agent=current_user_agent(),
    )
    session.add(auth)
    await log_attempt(session, user.username, user.id, True, OK)
    return _token_pair(user, auth.id, refresh_token, now)


async def _unknown_user(session: AsyncSession, name: str, password: str, now: datetime) -> Denied:
    """A username no account has goes through the same steps as a wrong password for one
    that exists (the same count, the same lockout, the same work): a brute force learns
    nothing from `account_locked` about which usernames are real."""
    settings = get_settings()
    throttle = await session.get(LoginThrottle, name)
    if throttle is not None and throttle.locked_until is not None and throttle.locked_until > now:
        await log_attempt(session, name, None, False, LOCKED)
        return Denied(AccountLocked(locked_until=throttle.locked_until))
    await verify_password_async(await _dummy_hash(), password)  # as for a real account
    insert = (
        postgresql.insert(LoginThrottle)
        if session.get_bind().dialect.name == "postgresql"
        else sqlite.insert(LoginThrottle)
    )
    failures = await session.scalar(
        insert.values(username=name, failed_logins=1, locked_until=None)
        .on_conflict_do_update(
            index_elements=[LoginThrottle.username],
            set_={"failed_logins": LoginThrottle.failed_logins + 1},
        )
        .returning(LoginThrottle.failed_logins)
    )
    await log_attempt(session, name, None, False, UNKNOWN_USER)
    if (failures or 0) >= settings.login_max_failures:
        until = now + timedelta(minutes=settings.login_lockout_minutes)
        await session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.username == name)
            .values(failed_logins=0, locked_until=until)
            .execution_options(synchronize_session=False)
        )
        await _record_lockout(session, "username", None, name, until, failures or 0)
        return Denied(AccountLocked(locked_until=until))
    return Denied(InvalidCredentials())


async def _record_lockout(
    session: AsyncSession,
    entity_type: str,
    user_id: int | None,
    name: str,
    until: datetime,
    failures: int,
) -> None:
    """A lockout is a security event of the operation log (committed with the login log: a
    refused login's records commit). A name no account has is logged as such, as it was
    typed, so an operator sees the guessing whichever names it tries."""
    await audit.record(
        session,
        security.LOGIN,
        security.LOCKOUT,
        entity_type,
        user_id,
        store_id=await audit_store_id(session, user_id) if user_id is not None else None,
        after={"locked_until": until, "failures": failures},
        note=f"{failures} failed logins",
        label=name,
    )


async def refresh(session: AsyncSession, *, refresh_token: str) -> TokenPair | Denied:
    """Swap a refresh token for a new pair. The old token dies; presenting it again ends the
    session (whoever holds a copy of it is locked out along with the owner)."""
    settings = get_settings()
    now = utcnow()
    presented = hash_token(refresh_token)
    auth = await session.scalar(select(AuthSession).where(AuthSession.refresh_hash == presented))
    if auth is None:
        stale = await session.scalar(
            select(AuthSession).where(AuthSession.previous_refresh_hash == presented)
        )
        if stale is None:
            return Denied(InvalidRefreshToken())  # nobody to name in the login log
        return await _reused(session, stale, now)
    user = await session.get(User, auth.user_id)
    assert user is not None  # the foreign key cascades
    if auth.revoked_at is not None:
        await log_attempt(session, user.username, user.id, False, SESSION_REVOKED)
        return Denied(InvalidRefreshToken())
    if auth.expires_at <= now:
        await log_attempt(session, user.username, user.id, False, SESSION_EXPIRED)
        return Denied(InvalidRefreshToken())
    if not user.is_active:
        await _revoke(session, auth, DISABLED, now)
        await log_attempt(session, user.username, user.id, False, DISABLED)
        return Denied(AccountDisabled())
    new_token = new_refresh_token()
    rotated = await session.execute(
        update(AuthSession)
        .where(
            AuthSession.id == auth.id,
            AuthSession.refresh_hash == presented,
            AuthSession.revoked_at.is_(None),
        )
        .values(
            refresh_hash=hash_token(new_token),
            previous_refresh_hash=presented,
            last_used_at=now,
            expires_at=now + timedelta(seconds=settings.refresh_token_ttl_seconds),
            ip=current_ip(),
            user_agent=current_user_agent(),
        )
        .execution_options(synchronize_session=False)
    )
    if rotated.rowcount != 1:  # type: ignore[attr-defined]
        # Another request rotated this very token first: the same token was used twice.
        return await _reused(session, auth, now)
    # A refresh is not a login: the console refreshes on every page load, and a row each
    # time buried the real logins. The session's last_used_at records it instead; refused
    # refreshes (a reused token, an ended session) are still logged above.
    return _token_pair(user, auth.id, new_token, now)


async def _reused(session: AsyncSession, auth: AuthSession, now: datetime) -> Denied:
    await _revoke(session, auth, REFRESH_REUSE, now)
    user = await session.get(User, auth.user_id)
    assert user is not None
    await log_attempt(session, user.username, user.id, False, REFRESH_REUSE)
    return Denied(RefreshTokenReused())


async def _revoke(session: AsyncSession, auth: AuthSession, reason: str, now: datetime) -> None:
    await session.execute(
        update(AuthSession)
        .where(AuthSession.id == auth.id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )


async def revoke_user_sessions(
    session: AsyncSession, user_id: int, *, reason: str, keep: str | None = None
) -> int:
    """End every open session of a user (but `keep`); their access tokens stop working at
    once, since every request checks its session. Returns how many were ended."""
    stmt = (
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if keep is not None:
        stmt = stmt.where(AuthSession.id != keep)
    result = await session.execute(stmt)
    return int(result.rowcount)  # type: ignore[attr-defined]


async def logout(session: AsyncSession, *, actor: Actor) -> None:
    """End the caller's session."""
    assert actor.id is not None
    assert actor.session_id is not None
    auth = await session.get(AuthSession, actor.session_id)
    if auth is not None:
        await _revoke(session, auth, LOGOUT, utcnow())
    await log_attempt(session, actor.name, actor.id, True, LOGOUT)


def policy_error(problems: list[str], field: str) -> list[ErrorDetail]:
    return [ErrorDetail(field=field, reason=p, message=POLICY_MESSAGES.get(p, p)) for p in problems]


async def audit_store_id(session: AsyncSession, user_id: int) -> int | None:
    """The store an audit entry about a user is filed under: the lowest of their stores, so
    an admin of that store finds it (None for users of no store)."""
    return await session.scalar(
        select(UserStore.store_id)
        .where(UserStore.user_id == user_id)
        .order_by(UserStore.store_id)
        .limit(1)
    )


async def change_password(
    session: AsyncSession, *, actor: Actor, current_password: str, new_password: str
) -> None:
    """The caller changes their own password; every other session of theirs ends."""
    assert actor.id is not None
    user = await session.get(User, actor.id)
    assert user is not None
    details: list[ErrorDetail] = []
    if not await verify_password_async(user.password_hash, current_password):
        details.append(
            ErrorDetail(
                field="current_password",
                reason="password_incorrect",
                message="The current password is wrong",
            )
        )
    problems = policy_problems(new_password, username=user.username)
    if new_password == current_password:
        problems.append("password_unchanged")
    details += policy_error(problems, "new_password")
    if details:
        raise ValidationFailed("The password was not changed", details=details)
    before = audit.snapshot(user, ["password_hash", "must_change_password"])
    user.password_hash = await hash_password_async(new_password)
    user.password_changed_at = utcnow()
    user.must_change_password = False
    await session.flush()
    ended = await revoke_user_sessions(
        session, user.id, reason="password_changed", keep=actor.session_id
    )
    await audit.record(
        session,
        actor,
        "user.change_password",
        "user",
        user.id,
        store_id=await audit_store_id(session, user.id),
        before=before,
        after=audit.snapshot(user, ["password_hash", "must_change_password"]),
        note=f"{ended} other session(s) ended",
    )


async def prune_login_log(
    sessionmaker: async_sessionmaker[AsyncSession], *, before: datetime, batch: int
) -> int:
    """Delete login-log rows written before `before`, in batches (kit.prune)."""
    table = cast(Table, LoginLog.__table__)
    deleted, _ = await prune_rows.delete_older(
        sessionmaker, table, "created_at", before, batch=batch
    )
    return deleted

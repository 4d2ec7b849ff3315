"""People and what they may do: users, roles, permissions, store assignments, sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from selfmart.db import Base, BigIntId
from selfmart.models.mixins import Timestamps


class User(Timestamps, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    must_change_password: Mapped[bool] = mapped_column(default=False)
    password_changed_at: Mapped[datetime | None]
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    locale: Mapped[str] = mapped_column(String(16), default="zh-CN")

    roles: Mapped[list[Role]] = relationship(secondary="user_roles", lazy="raise")
    stores: Mapped[list[UserStore]] = relationship(
        lazy="raise", cascade="all, delete-orphan", back_populates="user"
    )


class Role(Timestamps, Base):
    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(500), default="")
    is_builtin: Mapped[bool] = mapped_column(default=False)
    #: Super admin: every store, present and future, without assignment.
    all_stores: Mapped[bool] = mapped_column(default=False)
    #: Largest refund one person with this role may issue, in fen; None means no limit.
    refund_limit_fen: Mapped[int | None]

    permissions: Mapped[list[RolePermission]] = relationship(
        lazy="raise", cascade="all, delete-orphan", back_populates="role"
    )


class RolePermission(Base):
    __tablename__ = "role_permissions"

    role_id: Mapped[int] = mapped_column(
        ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True
    )
    permission: Mapped[str] = mapped_column(String(64), primary_key=True)

    role: Mapped[Role] = relationship(lazy="raise", back_populates="permissions")


class UserRole(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role_id: Mapped[int] = mapped_column(
        ForeignKey("roles.id", ondelete="RESTRICT"), primary_key=True
    )


class UserStore(Base):
    __tablename__ = "user_stores"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    store_id: Mapped[int] = mapped_column(
        ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True, index=True
    )

    user: Mapped[User] = relationship(lazy="raise", back_populates="stores")


class AuthSession(Base):
    """One login: refresh tokens rotate within it; revoking it ends every token it issued."""

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    refresh_hash: Mapped[str] = mapped_column(String(128), unique=True)
    previous_refresh_hash: Mapped[str | None] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(500))


class LoginThrottle(Base):
    """Failed logins of a username no account has: counted and locked out exactly as an
    account's (User.failed_logins / locked_until), so the answer never tells the two apart."""

    __tablename__ = "login_throttles"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]


class LoginLog(Base):
    __tablename__ = "login_logs"
    __table_args__ = (Index("ix_login_logs_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    created_at: Mapped[datetime]
    username: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    success: Mapped[bool]
    #: ok | bad_password | unknown_user | locked | disabled | logout | refresh | refresh_reuse
    #: | session_revoked | session_expired  (see selfmart.iam.sessions)
    reason: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(500))

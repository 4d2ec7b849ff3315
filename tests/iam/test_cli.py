"""`selfmart create-admin`: a super admin who must change the password at first login; and
`selfmart migrate` bringing the built-in roles in line."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from selfmart.cli import main
from selfmart.config import get_settings
from selfmart.db import make_engine, make_sessionmaker
from selfmart.iam.passwords import verify_password
from selfmart.iam.permissions import BUILTIN_ROLES, Perm
from selfmart.migrate import upgrade
from selfmart.models import AuditLog, Role, RolePermission, User, UserRole


@pytest.fixture
def db_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("SELFMART_DATABASE_URL", url)
    get_settings.cache_clear()
    upgrade(url)
    yield url
    get_settings.cache_clear()


def _read(url: str) -> tuple[User | None, list[str], list[str]]:
    async def run() -> tuple[User | None, list[str], list[str]]:
        engine = make_engine(url)
        try:
            async with make_sessionmaker(engine)() as session:
                user = await session.scalar(select(User).where(User.username == "root"))
                roles = await session.scalars(
                    select(Role.code)
                    .join(UserRole, UserRole.role_id == Role.id)
                    .join(User, User.id == UserRole.user_id)
                    .where(User.username == "root")
                )
                actions = await session.scalars(select(AuditLog.action))
                return user, list(roles.all()), list(actions.all())
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_create_admin_with_password_option(db_file: str) -> None:
    result = CliRunner().invoke(
        main, ["create-admin", "--username", "Root", "--password", "Str0ng-Pass!"]
    )
    assert result.exit_code == 0, result.output
    assert "root" in result.output
    user, roles, actions = _read(db_file)
    assert user is not None
    assert user.must_change_password is True
    assert user.is_active is True
    assert verify_password(user.password_hash, "Str0ng-Pass!")
    assert roles == ["super_admin"]
    assert actions == ["user.create"]

    again = CliRunner().invoke(
        main, ["create-admin", "--username", "root", "--password", "Str0ng-Pass!"]
    )
    assert again.exit_code != 0
    assert "taken" in again.output


def test_create_admin_prompts_and_enforces_the_policy(db_file: str) -> None:
    weak = CliRunner().invoke(main, ["create-admin", "--username", "root"], input="short\nshort\n")
    assert weak.exit_code != 0
    assert "password_too_short" in weak.output or "too short" in weak.output
    assert _read(db_file)[0] is None
    ok = CliRunner().invoke(
        main, ["create-admin", "--username", "root"], input="Prompted-Pass1\nPrompted-Pass1\n"
    )
    assert ok.exit_code == 0, ok.output
    user = _read(db_file)[0]
    assert user is not None
    assert verify_password(user.password_hash, "Prompted-Pass1")


def test_create_admin_refuses_a_bad_username(db_file: str) -> None:
    result = CliRunner().invoke(
        main, ["create-admin", "--username", "no spaces", "--password", "Str0ng-Pass!"]
    )
    assert result.exit_code != 0
    assert "username" in result.output


def _codes(url: str, role: str) -> set[str]:
    async def run() -> set[str]:
        engine = make_engine(url)
        try:
            async with make_sessionmaker(engine)() as session:
                found = await session.scalar(select(Role).where(Role.code == role))
                assert found is not None
                codes = await session.scalars(
                    select(RolePermission.permission).where(RolePermission.role_id == found.id)
                )
                return set(codes.all())
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _grant(url: str, role: str, code: str) -> None:
    async def run() -> None:
        engine = make_engine(url)
        try:
            async with make_sessionmaker(engine)() as session:
                found = await session.scalar(select(Role).where(Role.code == role))
                assert found is not None
                session.add(RolePermission(role_id=found.id, permission=code))
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_migrate_makes_the_builtin_roles_what_this_version_defines(db_file: str) -> None:
    """A database whose built-in role holds a code this version no longer gives it (as after
    an upgrade that narrowed the role) is put right by `selfmart migrate` itself."""
    first = CliRunner().invoke(main, ["migrate"])
    assert first.exit_code == 0, first.output
    assert "built-in roles in sync" in first.output
    defined = {str(p) for p in BUILTIN_ROLES["cashier"]["perms"]}  # type: ignore[attr-defined]
    assert _codes(db_file, "cashier") == defined
    extra = next(str(p) for p in Perm if str(p) not in defined)
    _grant(db_file, "cashier", extra)
    assert extra in _codes(db_file, "cashier")
    again = CliRunner().invoke(main, ["migrate"])
    assert again.exit_code == 0, again.output
    assert _codes(db_file, "cashier") == defined

"""Seeded accounts: the demo's printed passwords force a change unless in demo mode."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.config import get_settings
from selfmart.demo import DEMO_LOGINS, seed_demo
from selfmart.models import User


@pytest.fixture
def demo_mode(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    yield monkeypatch
    get_settings.cache_clear()


@pytest.mark.parametrize(("demo", "forced"), [("true", False), ("false", True)])
async def test_seeded_demo_accounts(
    session: AsyncSession, demo_mode: pytest.MonkeyPatch, demo: str, forced: bool
) -> None:
    demo_mode.setenv("SELFMART_DEMO", demo)
    get_settings.cache_clear()
    await seed_demo(session)
    users = (
        await session.scalars(
            select(User).where(User.username.in_([d.username for d in DEMO_LOGINS]))
        )
    ).all()
    assert len(users) == len(DEMO_LOGINS)
    assert {u.must_change_password for u in users} == {forced}

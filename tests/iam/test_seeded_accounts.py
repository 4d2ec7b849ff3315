"""Seeded accounts: the demo's printed passwords force a change unless in demo mode."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select, update
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
    demo_session: AsyncSession, demo_mode: pytest.MonkeyPatch, demo: str, forced: bool
) -> None:
    # On the demo seeded once per run, the accounts are put out of the way (renamed), so that
    # seeding again creates them the way this mode does.
    names = [d.username for d in DEMO_LOGINS]
    await demo_session.execute(
        update(User).where(User.username.in_(names)).values(username=User.username + "-was")
    )
    demo_mode.setenv("SELFMART_DEMO", demo)
    get_settings.cache_clear()
    await seed_demo(demo_session)
    users = (await demo_session.scalars(select(User).where(User.username.in_(names)))).all()
    assert len(users) == len(DEMO_LOGINS)
    assert {u.must_change_password for u in users} == {forced}

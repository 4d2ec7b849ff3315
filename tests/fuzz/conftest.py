"""The fuzz's app: the suite's, with limits on the public endpoints high enough that the
fuzz reaches their validation instead of meeting 429 after a few cases
(tests/test_rate_limit.py tests the limits themselves)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ..support import shared_app

UNLIMITED = {
    "login": "100000/minute",
    "refresh": "100000/minute",
    "terminal_activate": "100000/minute",
}


@pytest.fixture
def app(db_url: str, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]) -> Any:
    return shared_app(db_url, engine, sessionmaker, rate_limits=UNLIMITED)

"""`selfmart rebuild-analytics` and `selfmart check-analytics` on a database of their own:
the check exits 0 when every summary is what the orders say, 1 naming each difference."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from selfmart.cli import main
from selfmart.config import get_settings
from selfmart.db import make_engine, make_sessionmaker
from selfmart.migrate import upgrade
from selfmart.models import SalesDay
from tests.analytics.builders import sale
from tests.analytics.test_statistics import utc
from tests.builders import make_store
from tests.orders.builders import make_product


@pytest.fixture
def db_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'analytics.db'}"
    monkeypatch.setenv("SELFMART_DATABASE_URL", url)
    get_settings.cache_clear()
    upgrade(url)
    yield url
    get_settings.cache_clear()


def _run(url: str, tamper: bool = False) -> int:
    async def run() -> int:
        engine = make_engine(url)
        try:
            async with make_sessionmaker(engine)() as session:
                if tamper:
                    await session.execute(update(SalesDay).values(items=SalesDay.items + 2))
                    await session.commit()
                    return 0
                store = await make_store(session, timezone="Asia/Urumqi")
                cola = await make_product(session, stores=[store], price_fen=350)
                await sale(session, store, [(cola, 2)], paid_at=utc(2025, 12, 31, 17, 59))
                await session.commit()
                return store.id
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_rebuild_then_check_then_a_tampered_summary(db_file: str) -> None:
    store_id = _run(db_file)
    runner = CliRunner()
    result = runner.invoke(main, ["check-analytics"])
    # Nothing summarised yet: the raw day is missing from the summaries.
    assert result.exit_code == 1, result.output
    result = runner.invoke(main, ["rebuild-analytics"])
    assert result.exit_code == 0, result.output
    assert "1 store day(s)" in result.output
    result = runner.invoke(main, ["check-analytics"])
    assert result.exit_code == 0, result.output
    assert "match" in result.output

    _run(db_file, tamper=True)
    result = runner.invoke(main, ["check-analytics"])
    assert result.exit_code == 1
    # 23:59 UTC+6 in Urumqi on New Year's Eve: still 2025 there.
    assert (
        f"MISMATCH analytics_sales_days store={store_id} day=2025-12-31 items: stored=4 raw=2"
        in result.output
    )

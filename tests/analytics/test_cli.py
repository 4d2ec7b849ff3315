"""`selfmart rebuild-analytics` and `selfmart check-analytics` on a database of their own:
the check exits 0 when every summary is what the orders say, 1 naming each difference."""

from __future__ import annotations

import asyncio
import sqlite3
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


def test_upgrading_a_summarised_database_asks_for_a_rebuild(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration ana_0007 leaves the category and product member tables empty on a database
    that already had summaries; the check says to rebuild (exit 1) until it is done."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    monkeypatch.setenv("SELFMART_DATABASE_URL", url)
    get_settings.cache_clear()
    upgrade(url, "ana_0006")
    store_id = _run(url)
    # A summary the old version wrote (the day's other rows are not needed to say so).
    with sqlite3.connect(tmp_path / "old.db") as db:
        db.execute(
            "INSERT INTO analytics_sales_days (store_id, day, orders, sales_fen, items,"
            " member_orders, member_sales_fen, refunds, refunds_fen)"
            " VALUES (?, '2025-12-31', 1, 700, 2, 0, 0, 0, 0)",
            (store_id,),
        )
    upgrade(url)
    runner = CliRunner()
    result = runner.invoke(main, ["check-analytics"])
    assert result.exit_code == 1, result.output
    assert "run selfmart rebuild-analytics" in result.output
    assert runner.invoke(main, ["rebuild-analytics"]).exit_code == 0
    result = runner.invoke(main, ["check-analytics"])
    assert result.exit_code == 0, result.output
    get_settings.cache_clear()

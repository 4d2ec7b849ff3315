"""`selfmart partition-order-lines` (orders/partitioning.py): on PostgreSQL the order lines become
monthly partitions with every line kept, in its month; intake, refunds and the analytics rebuild
and check work on them as before; run again, it only adds the months ahead; a line that landed
in the default partition moves into its month when that month is made. SQLite is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import refresh
from selfmart.cli import main as cli
from selfmart.db import make_engine, make_sessionmaker
from selfmart.errors import AppError
from selfmart.iam.actor import SYSTEM, Actor
from selfmart.jobs import runtime
from selfmart.kit.time import utcnow
from selfmart.models import Order, OrderLine
from selfmart.orders import intake, refunds, tasks
from selfmart.orders import partitioning as parts
from selfmart.orders.schemas import IntakeLine, OrderIn, RefundBody
from selfmart.terminals.service import SignedStore
from tests.builders import make_store
from tests.conftest import _fresh_database
from tests.orders.builders import make_order, make_product, stock
from tests.support import settings_for
from tests.terminals.builders import make_terminal

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


@pytest.fixture
async def pg_session(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AsyncSession]:
    """A database of its own: the conversion changes the table for good."""
    async with _fresh_database("postgresql", tmp_path_factory, "partition") as url:
        engine = make_engine(url)
        try:
            async with make_sessionmaker(engine)() as session:
                yield session
        finally:
            await engine.dispose()


async def _where(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        text("SELECT tableoid::regclass::text, count(*) FROM order_lines GROUP BY 1")
    )
    return {str(name): int(n) for name, n in rows.all()}


async def test_lines_move_into_their_months_and_everything_works_on_them(
    pg_session: AsyncSession,
) -> None:
    session = pg_session
    store = await make_store(session)
    cola, chips = (
        await make_product(session, stores=[store]),
        await make_product(session, stores=[store]),
    )
    for product in (cola, chips):
        await stock(session, store, product, 100)
    end_of_september = datetime(2026, 9, 30, 23, 59, tzinfo=UTC)
    september = await make_order(
        session,
        store,
        [(cola, 2), (chips, 1)],
        created_at=end_of_september,
        status="paid",
        paid=True,
    )
    await make_order(session, store, [(cola, 1)], created_at=datetime(2026, 10, 1, tzinfo=UTC))
    await make_order(session, store, [(chips, 3)], created_at=NOW - timedelta(hours=1))
    await session.commit()
    before = await session.scalar(select(func.count()).select_from(OrderLine))

    out = await parts.partition(session, now=NOW)
    await session.commit()

    assert out.converted
    assert out.lines == before == 4
    assert out.dropped_foreign_keys == ["refund_lines.fk_refund_lines_order_line_id_order_lines"]
    assert await parts.is_partitioned(session)
    # every month from the oldest line's to twelve months ahead, and nothing else
    assert out.created[0] == "order_lines_2026_09"
    assert out.created[-1] == "order_lines_2027_12"
    assert len(out.created) == 4 + parts.MONTHS_AHEAD
    assert await _where(session) == {
        "order_lines_2026_09": 2,
        "order_lines_2026_10": 1,
        "order_lines_2026_12": 1,
    }
    keys = (
        await session.execute(
            text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'order_lines'::regclass ORDER BY conname"
            )
        )
    ).all()
    assert {str(name): str(definition) for name, definition in keys} == {
        "fk_order_lines_order_id_orders": "FOREIGN KEY (order_id) REFERENCES orders(id) "
        "ON DELETE CASCADE",
        "fk_order_lines_product_id_products": "FOREIGN KEY (product_id) REFERENCES "
        "products(id) ON DELETE RESTRICT",
        "pk_order_lines": "PRIMARY KEY (id, created_at)",
        "uq_order_lines_order_id_line_no": "UNIQUE (order_id, line_no, created_at)",
    }

    # Intake writes a line (PostgreSQL's one-statement path), into this month's partition.
    terminal = await make_terminal(session, store, status="active")
    term = intake.Terminal(
        terminal_id=terminal.id,
        store=SignedStore(
            id=store.id, code=store.code, timezone=store.timezone, allow_negative_stock=False
        ),
        actor=Actor(kind="terminal", id=terminal.id, name=terminal.code, store_ids=None),
    )
    body = OrderIn(
        client_order_id="P-1",
        purchased_at=datetime.now(UTC) - timedelta(minutes=1),
        lines=[IntakeLine(product_id=cola.id, quantity=2)],
    )
    taken = await intake.accept(session, term, body)
    await session.commit()
    line = await session.scalar(select(OrderLine).where(OrderLine.order_id == taken["order_id"]))
    assert line is not None
    assert line.quantity == 2
    line_id = line.id
    ids = await session.scalars(select(OrderLine.id).order_by(OrderLine.id))
    assert len(set(ids.all())) == 5  # the id sequence carried over: no clash

    # A refund of the September order's line (its foreign key gone, the service still checks).
    order = await session.get_one(Order, september.id)
    first = await session.scalar(
        select(OrderLine).where(OrderLine.order_id == order.id, OrderLine.line_no == 1)
    )
    assert first is not None
    refund = await refunds.refund(
        session,
        order,
        RefundBody.model_validate(
            {"reason": "damaged", "lines": [{"line_id": first.id, "quantity": 1}]}
        ),
        actor=SYSTEM,
    )
    await session.commit()
    assert refund.amount_fen == cola.price_fen
    with pytest.raises(AppError):  # the service refuses another order's line
        await refunds.refund(
            session,
            order,
            RefundBody.model_validate(
                {"reason": "x", "lines": [{"line_id": line.id, "quantity": 1}]}
            ),
            actor=SYSTEM,
        )
    await session.rollback()

    # The summaries rebuild from the partitioned lines and check clean.
    await refresh.rebuild(session)
    await session.commit()
    result = await refresh.check(session)
    assert result.differences == []

    # Run again: nothing to convert; a year on, the months ahead are added.
    again = await parts.partition(session, now=NOW)
    assert (again.converted, again.created) == (False, [])
    # A line written past the months made lands in the default partition ...
    late = datetime(2028, 3, 10, tzinfo=UTC)
    await session.execute(
        text("UPDATE order_lines SET created_at = :at WHERE id = :id"), {"at": late, "id": line_id}
    )
    assert (await _where(session)).get("order_lines_default") == 1
    # ... and moves into its month when the months ahead are made.
    ahead = await parts.partition(session, now=datetime(2027, 6, 1, tzinfo=UTC))
    await session.commit()
    assert ahead.created[0] == "order_lines_2028_01"
    assert "order_lines_2028_03" in ahead.created
    assert ahead.created[-1] == "order_lines_2028_06"
    assert (await _where(session)).get("order_lines_2028_03") == 1
    assert "order_lines_default" not in await _where(session)
    assert await session.scalar(select(func.count()).select_from(OrderLine)) == 5


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_the_nightly_job_keeps_a_year_of_months_ahead_once_partitioned(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    async with _fresh_database(backend, tmp_path_factory, "partjob") as url:
        engine = make_engine(url)
        factory = make_sessionmaker(engine)
        try:
            # Not partitioned (and never on SQLite): the job makes nothing and changes nothing.
            async with runtime.running(settings_for(url), factory):
                assert await tasks.partitions_ahead() == []
            if backend == "sqlite":
                return
            # Partitioned seven months ago: the months ahead end seven months too early.
            then = utcnow() - timedelta(days=210)
            async with factory() as session:
                await parts.partition(session, now=then)
                await session.commit()
            async with runtime.running(settings_for(url), factory):
                made = await tasks.partitions_ahead()
                again = await tasks.partitions_ahead()
            horizon = utcnow().date().replace(day=1)
            for _ in range(parts.MONTHS_AHEAD):
                horizon = (horizon + timedelta(days=32)).replace(day=1)
            assert made, "the job made no months"
            assert made[-1] == parts.partition_name(horizon)
            assert len(made) == len(set(made))
            assert again == []  # run twice on a night: nothing more
            async with factory() as session:
                assert await parts.is_partitioned(session)
                months = await session.scalar(
                    text(
                        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'order_lines'::regclass"
                    )
                )
            # from the month it was partitioned in to a year ahead of today, and the default
            first = then.date().replace(day=1)
            expected = (horizon.year - first.year) * 12 + horizon.month - first.month + 1
            assert months == expected + 1
        finally:
            await engine.dispose()


async def test_sqlite_is_refused_with_a_reason(tmp_path: Path) -> None:
    async with _fresh_database_sqlite(tmp_path) as session:
        with pytest.raises(parts.PartitioningUnsupported, match="PostgreSQL only"):
            await parts.partition(session)


def test_the_command_says_why_on_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from selfmart.config import get_settings

    monkeypatch.setenv("SELFMART_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["partition-order-lines"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "PostgreSQL only" in result.output


class _fresh_database_sqlite:  # noqa: N801 - used as a context manager like _fresh_database
    def __init__(self, tmp_path: Path) -> None:
        self.engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")

    async def __aenter__(self) -> AsyncSession:
        self.session = make_sessionmaker(self.engine)()
        return self.session

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()
        await self.engine.dispose()

"""Two approvals of one statement at once approve it once (the other is a 409), and two
statements generated at once for overlapping periods of one supplier make one: real
concurrent PostgreSQL connections, data committed and removed afterwards."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import date

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from selfmart.db import make_sessionmaker
from selfmart.errors import AppError
from selfmart.kit.time import utcnow
from selfmart.models import AuditLog, Supplier, SupplierStatement
from selfmart.settlement import statements
from tests.settlement.builders import FINANCE

pytestmark = pytest.mark.postgres_only


async def _race(
    engine: AsyncEngine, work: Callable[[AsyncSession], Awaitable[object]]
) -> list[str]:
    """Run `work` twice at once, each in its own connection and transaction: 'ok' or the
    error code of each."""
    factory = make_sessionmaker(engine)

    async def one() -> str:
        async with factory() as s:
            try:
                await work(s)
                await s.commit()
                return "ok"
            except AppError as e:
                await s.rollback()
                return e.code

    return sorted(await asyncio.gather(one(), one()))


async def _cleanup(engine: AsyncEngine, supplier_id: int) -> None:
    async with make_sessionmaker(engine)() as s:
        ids = [
            str(i)
            for i in await s.scalars(
                select(SupplierStatement.id).where(SupplierStatement.supplier_id == supplier_id)
            )
        ]
        await s.execute(
            delete(AuditLog).where(
                AuditLog.entity_type == "supplier_statement", AuditLog.entity_id.in_(ids)
            )
        )
        await s.execute(
            delete(SupplierStatement).where(SupplierStatement.supplier_id == supplier_id)
        )
        await s.execute(delete(Supplier).where(Supplier.id == supplier_id))
        await s.commit()


async def _supplier(engine: AsyncEngine, status: str | None = None) -> tuple[int, int | None]:
    async with make_sessionmaker(engine)() as s:
        supplier = Supplier(code=f"C{uuid.uuid4().hex[:8]}", name="并发供应商")
        s.add(supplier)
        await s.flush()
        statement_id = None
        if status is not None:
            stmt = SupplierStatement(
                number=f"ST{uuid.uuid4().hex[:12]}", supplier_id=supplier.id,
                period_start=date(2026, 10, 1), period_end=date(2026, 10, 31), status=status,
                basis="received", total_fen=1234, created_at=utcnow(), generated_at=utcnow(),
            )  # fmt: skip
            s.add(stmt)
            await s.flush()
            statement_id = stmt.id
        await s.commit()
        return supplier.id, statement_id


async def test_two_approvals_at_once_approve_once(engine: AsyncEngine, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("needs real concurrent connections: PostgreSQL only")
    supplier_id, statement_id = await _supplier(engine, "reviewed")
    assert statement_id is not None
    try:
        outcomes = await _race(engine, lambda s: statements.approve(s, statement_id, actor=FINANCE))
        assert outcomes == ["illegal_transition", "ok"]
        async with make_sessionmaker(engine)() as s:
            stmt = await s.get(SupplierStatement, statement_id)
            assert stmt is not None
            assert stmt.status == "approved"
            approvals = await s.scalars(
                select(AuditLog.action).where(
                    AuditLog.entity_type == "supplier_statement",
                    AuditLog.entity_id == str(statement_id),
                )
            )
            assert list(approvals) == ["supplier_statement.approved"]
    finally:
        await _cleanup(engine, supplier_id)


async def test_two_overlapping_statements_at_once_make_one(
    engine: AsyncEngine, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("needs real concurrent connections: PostgreSQL only")
    supplier_id, _ = await _supplier(engine)
    try:
        outcomes = await _race(
            engine,
            lambda s: statements.generate(
                s, supplier_id, date(2026, 11, 1), date(2026, 11, 30), actor=FINANCE
            ),
        )
        assert outcomes == ["ok", "statement_overlaps"]
        async with make_sessionmaker(engine)() as s:
            count = len(
                (
                    await s.scalars(
                        select(SupplierStatement.id).where(
                            SupplierStatement.supplier_id == supplier_id
                        )
                    )
                ).all()
            )
            assert count == 1
    finally:
        await _cleanup(engine, supplier_id)

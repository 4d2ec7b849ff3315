"""The ledger: every change is a movement with its balance after, and balances equal sums."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.errors import InsufficientStock, ValidationFailed
from selfmart.inventory import service as inventory
from selfmart.inventory.checks import find_mismatches
from selfmart.models import StockDiscrepancy, StockLevel, StockMovement

from ..builders import make_store
from .builders import CLERK, make_product, stock


async def _movements(session: AsyncSession, store_id: int) -> list[StockMovement]:
    return list(
        (
            await session.scalars(
                select(StockMovement)
                .where(StockMovement.store_id == store_id)
                .order_by(StockMovement.id)
            )
        ).all()
    )


async def _level(session: AsyncSession, store_id: int, product_id: int) -> int:
    return (await inventory.balances(session, store_id, [product_id]))[product_id]


async def test_receipt_books_a_movement_with_balance_document_and_actor(
    session: AsyncSession,
) -> None:
    store = await make_store(session)
    p = await make_product(session)
    await stock(session, store.id, p.id, 12)
    await stock(session, store.id, p.id, 8)
    moves = await _movements(session, store.id)
    assert [(m.kind, m.quantity, m.balance_after) for m in moves] == [
        ("purchase_receipt", 12, 12),
        ("purchase_receipt", 8, 20),
    ]
    assert moves[0].document_type == "test_receipt"
    assert (moves[0].actor_type, moves[0].actor_id, moves[0].actor_name) == ("user", "1", "clerk")
    assert moves[0].occurred_at.tzinfo is not None
    assert await _level(session, store.id, p.id) == 20
    assert await find_mismatches(session, store.id) == []


async def test_sale_with_refusal_books_every_line_when_stock_suffices(
    session: AsyncSession,
) -> None:
    store = await make_store(session, allow_negative_stock=False)
    a, b = await make_product(session), await make_product(session)
    await stock(session, store.id, a.id, 5)
    await stock(session, store.id, b.id, 3)
    result = await inventory.deduct_for_sale(
        session,
        store_id=store.id,
        lines=[(b.id, 1), (a.id, 2), (b.id, 2)],  # b twice: summed
        document=("order", 77),
        actor=CLERK,
        allow_negative=False,
    )
    assert result.ok
    assert {
        (ln.product_id, ln.requested, ln.booked, ln.short_by, ln.balance_after)
        for ln in result.lines
    } == {
        (a.id, 2, 2, 0, 3),
        (b.id, 3, 3, 0, 0),
    }
    sales = [m for m in await _movements(session, store.id) if m.kind == "sale"]
    assert sorted((m.product_id, m.quantity, m.document_id) for m in sales) == [
        (a.id, -2, "77"),
        (b.id, -3, "77"),
    ]
    assert await find_mismatches(session, store.id) == []


async def test_sale_with_refusal_books_nothing_when_one_line_is_short(
    session: AsyncSession,
) -> None:
    store = await make_store(session, allow_negative_stock=False)
    a, b = await make_product(session), await make_product(session)
    await stock(session, store.id, a.id, 5)
    await stock(session, store.id, b.id, 1)
    before = len(await _movements(session, store.id))
    result = await inventory.deduct_for_sale(
        session,
        store_id=store.id,
        lines=[(a.id, 2), (b.id, 4)],
        document=("order", 78),
        actor=CLERK,
        allow_negative=False,
    )
    assert not result.ok
    short = {ln.product_id: ln for ln in result.lines}
    assert (short[a.id].booked, short[a.id].short_by) == (0, 0)
    assert (short[b.id].booked, short[b.id].short_by) == (0, 3)
    assert result.short_lines == [short[b.id]]
    # nothing stayed booked: balances untouched, no movement written
    assert await _level(session, store.id, a.id) == 5
    assert await _level(session, store.id, b.id) == 1
    assert len(await _movements(session, store.id)) == before
    with pytest.raises(InsufficientStock) as err:
        result.raise_if_refused()
    assert err.value.status == 409
    assert err.value.details[0].field == f"product:{b.id}"


async def test_sale_of_a_product_never_stocked_is_refused(session: AsyncSession) -> None:
    store = await make_store(session, allow_negative_stock=False)
    p = await make_product(session)
    result = await inventory.deduct_for_sale(
        session,
        store_id=store.id,
        lines=[(p.id, 1)],
        document=("order", 1),
        actor=CLERK,
        allow_negative=False,
    )
    assert not result.ok
    assert result.lines[0].short_by == 1


async def test_sale_past_the_shelf_is_booked_and_raises_a_discrepancy_when_allowed(
    session: AsyncSession,
) -> None:
    store = await make_store(session, allow_negative_stock=True)
    a, b, c = [await make_product(session) for _ in range(3)]
    await stock(session, store.id, a.id, 2)
    await stock(session, store.id, b.id, 10)
    result = await inventory.deduct_for_sale(
        session,
        store_id=store.id,
        lines=[(a.id, 5), (b.id, 1), (c.id, 2)],
        document=("order", 90),
        actor=CLERK,
        allow_negative=await inventory.store_allows_negative(session, store.id),
    )
    assert result.ok
    lines = {ln.product_id: ln for ln in result.lines}
    assert (lines[a.id].booked, lines[a.id].short_by, lines[a.id].balance_after) == (5, 3, -3)
    assert (lines[b.id].booked, lines[b.id].short_by, lines[b.id].balance_after) == (1, 0, 9)
    # never stocked here: the balance row is created below zero
    assert (lines[c.id].booked, lines[c.id].short_by, lines[c.id].balance_after) == (2, 2, -2)
    found = (
        await session.scalars(
            select(StockDiscrepancy)
            .where(StockDiscrepancy.store_id == store.id)
            .order_by(StockDiscrepancy.product_id)
        )
    ).all()
    assert [(d.product_id, d.requested, d.short_by, d.document_id, d.status) for d in found] == [
        (a.id, 5, 3, "90", "open"),
        (c.id, 2, 2, "90", "open"),
    ]
    assert await find_mismatches(session, store.id) == []


@pytest.mark.parametrize("qty", [0, -1, 1.5, True])
async def test_sale_quantities_must_be_whole_and_positive(
    session: AsyncSession, qty: object
) -> None:
    store = await make_store(session)
    p = await make_product(session)
    with pytest.raises(ValidationFailed) as err:
        await inventory.deduct_for_sale(
            session,
            store_id=store.id,
            lines=[(p.id, qty)],  # type: ignore[list-item]
            document=("order", 1),
            actor=CLERK,
            allow_negative=True,
        )
    assert err.value.details[0].field == "lines[0].quantity"
    assert await _movements(session, store.id) == []


async def test_return_puts_goods_back(session: AsyncSession) -> None:
    store = await make_store(session)
    p = await make_product(session)
    await stock(session, store.id, p.id, 3)
    await inventory.deduct_for_sale(
        session,
        store_id=store.id,
        lines=[(p.id, 2)],
        document=("order", 5),
        actor=CLERK,
        allow_negative=False,
    )
    booked = await inventory.restock_for_return(
        session, store_id=store.id, lines=[(p.id, 1)], document=("refund", 9), actor=CLERK
    )
    assert [(b.delta, b.balance_after) for b in booked] == [(1, 2)]
    kinds = [m.kind for m in await _movements(session, store.id)]
    assert kinds == ["purchase_receipt", "sale", "customer_return"]


async def test_adjust_sets_or_adds_with_a_reason_and_an_audit_entry(
    session: AsyncSession,
) -> None:
    store = await make_store(session)
    p = await make_product(session)
    await stock(session, store.id, p.id, 10)
    booked = await inventory.adjust(
        session, store_id=store.id, product_id=p.id, actor=CLERK, reason="recount", set_to=7
    )
    assert booked is not None
    assert (booked.delta, booked.balance_after) == (-3, 7)
    booked = await inventory.adjust(
        session, store_id=store.id, product_id=p.id, actor=CLERK, reason="found", delta=2
    )
    assert booked is not None
    assert booked.balance_after == 9
    unchanged = await inventory.adjust(
        session, store_id=store.id, product_id=p.id, actor=CLERK, reason="same", set_to=9
    )
    assert unchanged is None
    moves = await _movements(session, store.id)
    assert [(m.kind, m.quantity, m.reason) for m in moves[1:]] == [
        ("adjustment", -3, "recount"),
        ("adjustment", 2, "found"),
    ]
    with pytest.raises(ValidationFailed) as err:
        await inventory.adjust(
            session, store_id=store.id, product_id=p.id, actor=CLERK, reason="  ", delta=1
        )
    assert err.value.details[0].field == "reason"


async def test_write_off_never_goes_below_zero(session: AsyncSession) -> None:
    store = await make_store(session)
    p = await make_product(session)
    await stock(session, store.id, p.id, 4)
    await inventory.write_off(
        session, store_id=store.id, product_id=p.id, quantity=3, reason="crushed", actor=CLERK
    )
    with pytest.raises(InsufficientStock):
        await inventory.write_off(
            session, store_id=store.id, product_id=p.id, quantity=2, reason="more", actor=CLERK
        )
    assert await _level(session, store.id, p.id) == 1
    assert await find_mismatches(session, store.id) == []


async def test_database_refuses_an_adjustment_without_reason(session: AsyncSession) -> None:
    store = await make_store(session)
    p = await make_product(session)
    await stock(session, store.id, p.id, 1)
    move = (await _movements(session, store.id))[0]
    session.add(
        StockMovement(
            store_id=store.id,
            product_id=p.id,
            kind="adjustment",
            quantity=1,
            balance_after=2,
            actor_type="user",
            actor_name="x",
            occurred_at=move.occurred_at,
        )
    )
    with pytest.raises(IntegrityError):
        await session.flush()
    await session.rollback()


async def test_mismatch_finder_reports_a_corrupted_balance(session: AsyncSession) -> None:
    store = await make_store(session)
    a, b = await make_product(session), await make_product(session)
    await stock(session, store.id, a.id, 6)
    await stock(session, store.id, b.id, 2)
    assert await find_mismatches(session, store.id) == []
    await session.execute(
        update(StockLevel)
        .where(StockLevel.store_id == store.id, StockLevel.product_id == a.id)
        .values(quantity=99)
    )
    found = await find_mismatches(session, store.id)
    assert [(m.product_id, m.balance, m.ledger_sum) for m in found] == [(a.id, 99, 6)]

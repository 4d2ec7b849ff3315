"""Transfers received in parts: what is in transit per line, one ledger row per receipt and
product, refusal of more than is in transit, and two receipts racing on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from selfmart.db import make_engine, make_sessionmaker
from selfmart.errors import ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.inventory import service as inventory
from selfmart.inventory.checks import find_mismatches
from selfmart.models import (
    AuditLog,
    OutboxEvent,
    Product,
    StockAlert,
    StockLevel,
    StockMovement,
    StockTransfer,
    Store,
)
from selfmart.purchasing import transfers
from selfmart.purchasing.schemas import TransferCreate, TransferReceive

from ..builders import auth_headers, make_store, make_user
from ..inventory.builders import CLERK, make_product, stock

TRANSFERS = "/api/v1/transfers"


async def _shipped(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    src: Store,
    dst: Store,
    lines: list[tuple[int, int]],
) -> int:
    r = await client.post(
        TRANSFERS,
        json={
            "from_store_id": src.id,
            "to_store_id": dst.id,
            "lines": [{"product_id": pid, "quantity": q} for pid, q in lines],
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    tid = int(r.json()["id"])
    r = await client.post(f"{TRANSFERS}/{tid}/ship", headers=headers)
    assert r.json()["status"] == "in_transit", r.text
    return tid


def _lines(body: dict[str, object]) -> list[tuple[int, int | None, int, int]]:
    return [
        (ln["quantity"], ln["quantity_received"], ln["quantity_in_transit"], ln["quantity_lost"])
        for ln in body["lines"]  # type: ignore[attr-defined]
    ]


async def _transfer_in(session: AsyncSession, tid: int) -> list[tuple[int, int]]:
    rows = await session.execute(
        select(StockMovement.product_id, StockMovement.quantity)
        .where(
            StockMovement.document_type == "transfer",
            StockMovement.document_id == str(tid),
            StockMovement.kind == "transfer_in",
        )
        .order_by(StockMovement.id)
    )
    return [(int(p), int(q)) for p, q in rows.all()]


async def test_receive_in_parts_until_everything_has_arrived(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    src, dst = await make_store(session), await make_store(session)
    a, b = await make_product(session), await make_product(session)
    await stock(session, src.id, a.id, 10)
    await stock(session, src.id, b.id, 10)
    headers = await auth_headers(session, await make_user(session, role="admin", stores=[src, dst]))
    tid = await _shipped(client, headers, src, dst, [(a.id, 6), (b.id, 4)])
    r = await client.get(f"{TRANSFERS}/{tid}", headers=headers)
    assert _lines(r.json()) == [(6, None, 6, 0), (4, None, 4, 0)]

    # First delivery: 2 of a, nothing of b yet.
    r = await client.post(
        f"{TRANSFERS}/{tid}/receive",
        json={"partial": True, "lines": [{"product_id": a.id, "quantity": 2}]},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "partially_received"
    assert _lines(r.json()) == [(6, 2, 4, 0), (4, 0, 4, 0)]
    assert await inventory.balances(session, dst.id, [a.id, b.id]) == {a.id: 2, b.id: 0}
    r = await client.get(TRANSFERS, params={"status": "partially_received"}, headers=headers)
    assert [t["id"] for t in r.json()["items"]] == [tid]

    # More than is still in transit on a line: refused, naming the line; nothing booked.
    r = await client.post(
        f"{TRANSFERS}/{tid}/receive",
        json={
            "partial": True,
            "lines": [{"product_id": b.id, "quantity": 1}, {"product_id": a.id, "quantity": 5}],
        },
        headers=headers,
    )
    assert r.status_code == 422
    assert [(d["field"], d["reason"]) for d in r.json()["details"]] == [
        ("lines[1].quantity", "more_than_in_transit")
    ]
    assert await inventory.balances(session, dst.id, [a.id, b.id]) == {a.id: 2, b.id: 0}

    # A partial receipt of nothing is refused too.
    r = await client.post(
        f"{TRANSFERS}/{tid}/receive",
        json={"partial": True, "lines": [{"product_id": a.id, "quantity": 0}]},
        headers=headers,
    )
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "lines"

    # Second delivery brings the rest: the transfer is received, nothing lost.
    r = await client.post(
        f"{TRANSFERS}/{tid}/receive",
        json={
            "partial": True,
            "lines": [{"product_id": a.id, "quantity": 4}, {"product_id": b.id, "quantity": 4}],
            "note": "second van",
        },
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "received"
    assert _lines(r.json()) == [(6, 6, 0, 0), (4, 4, 0, 0)]
    assert await _transfer_in(session, tid) == [(a.id, 2), (a.id, 4), (b.id, 4)]
    assert await inventory.balances(session, dst.id, [a.id, b.id]) == {a.id: 6, b.id: 4}

    # Received is the end: another receipt is a 409 naming both states.
    r = await client.post(f"{TRANSFERS}/{tid}/receive", json={}, headers=headers)
    assert r.status_code == 409
    assert [d["message"] for d in r.json()["details"]] == ["received", "received"]
    actions = (
        await session.scalars(
            select(AuditLog.action)
            .where(AuditLog.entity_type == "stock_transfer", AuditLog.entity_id == str(tid))
            .order_by(AuditLog.id)
        )
    ).all()
    assert actions == [
        "transfer.create",
        "transfer.in_transit",
        "transfer.partially_received",
        "transfer.received",
    ]
    assert await find_mismatches(session) == []


async def test_final_receipt_after_a_partial_one_records_the_loss(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    src, dst = await make_store(session), await make_store(session)
    a, b = await make_product(session), await make_product(session)
    await stock(session, src.id, a.id, 10)
    await stock(session, src.id, b.id, 10)
    headers = await auth_headers(session, await make_user(session, role="admin", stores=[src, dst]))
    tid = await _shipped(client, headers, src, dst, [(a.id, 6), (b.id, 5)])
    r = await client.post(
        f"{TRANSFERS}/{tid}/receive",
        json={"partial": True, "lines": [{"product_id": b.id, "quantity": 3}]},
        headers=headers,
    )
    assert r.json()["status"] == "partially_received"
    # Final: a arrives in full (left out), b brings 1 more and the last one is lost.
    r = await client.post(
        f"{TRANSFERS}/{tid}/receive",
        json={"lines": [{"product_id": b.id, "quantity": 1}]},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "received"
    assert _lines(r.json()) == [(6, 6, 0, 0), (5, 4, 0, 1)]
    assert await _transfer_in(session, tid) == [(b.id, 3), (a.id, 6), (b.id, 1)]
    assert await inventory.balances(session, dst.id, [a.id, b.id]) == {a.id: 6, b.id: 4}
    assert await find_mismatches(session) == []


# --- two receipts racing on PostgreSQL -----------------------------------------------------


@pytest.fixture
async def racers(engine: AsyncEngine, backend: str) -> AsyncIterator[tuple[AsyncEngine, int, int]]:
    """A committed transfer of 10 units in transit between two fresh stores; removed after."""
    if backend != "postgresql":
        pytest.skip("needs real concurrent connections (PostgreSQL); SQLite serialises writers")
    url = engine.url.render_as_string(hide_password=False)
    eng = make_engine(url, pool_size=4, max_overflow=0)
    factory = make_sessionmaker(eng)
    tag = uuid.uuid4().hex[:6].upper()
    actor = Actor(kind="user", id=1, name="racer", store_ids=None)
    async with factory() as s:
        src = Store(code=f"TRR{tag}A", name="race source")
        dst = Store(code=f"TRR{tag}B", name="race target")
        product = Product(name=f"race transfer {tag}", price_fen=100)
        s.add_all([src, dst, product])
        await s.flush()
        await inventory.receive(
            s,
            store_id=src.id,
            lines=[inventory.ReceiptLine(product.id, 10)],
            document=("race", tag),
            actor=CLERK,
        )
        transfer = await transfers.create_transfer(
            s,
            TransferCreate.model_validate(
                {
                    "from_store_id": src.id,
                    "to_store_id": dst.id,
                    "lines": [{"product_id": product.id, "quantity": 10}],
                }
            ),
            actor=actor,
        )
        await transfers.ship(s, transfer.id, actor=actor)
        await s.commit()
        ids = (src.id, dst.id, product.id, transfer.id)
    try:
        yield eng, ids[3], ids[2]
    finally:
        async with factory() as s:
            for model in (StockMovement, StockAlert, StockLevel):
                await s.execute(delete(model).where(model.store_id.in_(ids[:2])))
            await s.execute(delete(StockTransfer).where(StockTransfer.id == ids[3]))
            await s.execute(delete(OutboxEvent).where(OutboxEvent.topic.like("inventory.%")))
            await s.execute(delete(Product).where(Product.id == ids[2]))
            await s.execute(delete(Store).where(Store.id.in_(ids[:2])))
            await s.commit()
        await eng.dispose()


@pytest.mark.postgres_only
async def test_concurrent_partial_receipts_never_receive_more_than_shipped(
    racers: tuple[AsyncEngine, int, int],
) -> None:
    """Six receipts of 3 race for the 10 units in transit: exactly three succeed (9 units),
    the others are refused naming the line, and the ledger holds one transfer_in per success."""
    eng, tid, pid = racers
    factory = make_sessionmaker(eng)
    actor = Actor(kind="user", id=1, name="racer", store_ids=None)
    body = TransferReceive.model_validate(
        {"partial": True, "lines": [{"product_id": pid, "quantity": 3}]}
    )

    async def one() -> str:
        async with factory() as s:
            try:
                await transfers.receive(s, tid, body, actor=actor)
            except ValidationFailed as exc:
                return f"refused {exc.details[0].field}"
            await s.commit()
            return "ok"

    outcomes = await asyncio.gather(*(one() for _ in range(6)))
    assert sorted(outcomes) == ["ok"] * 3 + ["refused lines[0].quantity"] * 3
    async with factory() as s:
        transfer = await transfers.get_transfer(s, tid, actor=actor)
        assert transfer.status == "partially_received"
        assert transfer.lines[0].quantity_received == 9
        booked = await s.scalar(
            select(func.count()).where(
                StockMovement.document_type == "transfer",
                StockMovement.document_id == str(tid),
                StockMovement.kind == "transfer_in",
            )
        )
        assert booked == 3
        assert await find_mismatches(s) == []

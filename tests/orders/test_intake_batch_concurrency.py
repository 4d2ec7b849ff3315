"""Real concurrent connections on PostgreSQL: several terminals of one store coming back online
at once upload their offline batches over the same products, while another terminal keeps
selling online, and not one request is refused for a deadlock (issue 8, item 2): in a store
that refuses to oversell (one product runs out mid-way) and in one that sells past an empty
shelf (one product was never stocked, so its balance row is created by the sales)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from selfmart.app import create_app
from selfmart.db import make_engine, make_sessionmaker
from selfmart.iam.actor import SYSTEM
from selfmart.inventory import service as inventory
from selfmart.kit.time import utcnow
from selfmart.models import (
    AuditLog,
    Order,
    OrderEvent,
    OrderIssue,
    OrderLine,
    OutboxEvent,
    Product,
    ProductBarcode,
    StockAlert,
    StockDiscrepancy,
    StockMovement,
    Store,
    StoreProduct,
    Terminal,
    TerminalKey,
    TerminalNonce,
)
from selfmart.models import StockLevel as Level
from tests.orders.builders import make_product
from tests.support import settings_for
from tests.terminals.builders import Credentials, make_active_terminal

pytestmark = pytest.mark.postgres_only

#: Terminals uploading at once, batches each, orders per batch.
TERMINALS, BATCHES, ORDERS = 3, 20, 50
#: Products on the shelf (every order takes from a few of them); the first runs out (a store
#: that refuses to oversell) or was never stocked (a store that sells past an empty shelf).
PRODUCTS, PLENTY, SCARCE = 12, 1_000_000, 60


@dataclass
class Shop:
    store_id: int
    negative: bool
    product_ids: list[int]
    barcodes: list[str]
    batch_terminals: list[Credentials]
    online_terminal: Credentials
    client: httpx.AsyncClient
    engine: AsyncEngine


@pytest.fixture(params=[False, True], ids=["refuses", "oversells"])
async def shop(db_url: str, backend: str, request: pytest.FixtureRequest) -> AsyncIterator[Shop]:
    negative: bool = request.param
    if backend != "postgresql":
        pytest.skip("needs real concurrent connections: PostgreSQL only")
    # Its own pool, large enough for every upload at once and patient with a busy machine: a
    # request waiting for a connection is not what this test is about.
    engine = make_engine(db_url, pool_size=24, max_overflow=0, pool_timeout=600)
    factory = make_sessionmaker(engine)
    async with factory() as s:
        store = Store(
            code=f"B{uuid.uuid4().hex[:6].upper()}",
            name="批量并发店",
            city="上海",
            allow_negative_stock=negative,
        )
        s.add(store)
        await s.flush()
        products = [
            await make_product(s, stores=[store], price_fen=100 + i) for i in range(PRODUCTS)
        ]
        for i, product in enumerate(products):
            if i == 0 and negative:
                continue  # never stocked: no balance row until the first sale
            await inventory.adjust(
                s,
                store_id=store.id,
                product_id=product.id,
                actor=SYSTEM,
                reason="test",
                set_to=SCARCE if i == 0 else PLENTY,
                audit_action=None,
            )
        terminals = [await make_active_terminal(s, store) for _ in range(TERMINALS + 1)]
        barcodes = [
            str(
                await s.scalar(select(ProductBarcode.code).where(ProductBarcode.product_id == p.id))
            )
            for p in products
        ]
        await s.commit()
        store_id, product_ids = store.id, [p.id for p in products]
    app = create_app(settings_for(db_url), engine=engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", timeout=600
    ) as client:
        yield Shop(
            store_id, negative, product_ids, barcodes, terminals[:-1], terminals[-1], client, engine
        )
    async with factory() as s:
        alert_ids = [
            int(i)
            for i in await s.scalars(select(StockAlert.id).where(StockAlert.store_id == store_id))
        ]
        for event in await s.scalars(
            select(OutboxEvent).where(OutboxEvent.topic == "inventory.alerts_opened")
        ):
            if set(event.payload.get("alert_ids", [])) & set(alert_ids):
                await s.delete(event)
        order_ids = select(Order.id).where(Order.store_id == store_id)
        await s.execute(delete(OrderEvent).where(OrderEvent.order_id.in_(order_ids)))
        await s.execute(delete(OrderIssue).where(OrderIssue.order_id.in_(order_ids)))
        await s.execute(delete(OrderLine).where(OrderLine.order_id.in_(order_ids)))
        await s.execute(delete(AuditLog).where(AuditLog.store_id == store_id))
        await s.execute(delete(Order).where(Order.store_id == store_id))
        await s.execute(delete(StockAlert).where(StockAlert.store_id == store_id))
        await s.execute(delete(StockDiscrepancy).where(StockDiscrepancy.store_id == store_id))
        await s.execute(delete(StockMovement).where(StockMovement.store_id == store_id))
        await s.execute(delete(Level).where(Level.store_id == store_id))
        terminal_ids = select(Terminal.id).where(Terminal.store_id == store_id)
        await s.execute(delete(TerminalNonce).where(TerminalNonce.terminal_id.in_(terminal_ids)))
        await s.execute(delete(TerminalKey).where(TerminalKey.terminal_id.in_(terminal_ids)))
        await s.execute(delete(Terminal).where(Terminal.store_id == store_id))
        await s.execute(delete(StoreProduct).where(StoreProduct.store_id == store_id))
        await s.execute(delete(ProductBarcode).where(ProductBarcode.product_id.in_(product_ids)))
        await s.execute(delete(Product).where(Product.id.in_(product_ids)))
        await s.execute(delete(Store).where(Store.id == store_id))
        await s.commit()
    await engine.dispose()


def _order(rng: random.Random, shop: Shop, client_id: str) -> dict[str, Any]:
    """An order of one to five lines over the shared products, in the order the customer
    scanned them (not sorted), each named by barcode or by id."""
    picks = rng.sample(range(PRODUCTS), rng.randint(1, 5))
    lines: list[dict[str, Any]] = []
    for i in picks:
        line: dict[str, Any] = {"quantity": rng.randint(1, 3)}
        if rng.random() < 0.5:
            line["barcode"] = shop.barcodes[i]
        else:
            line["product_id"] = shop.product_ids[i]
        lines.append(line)
    return {
        "client_order_id": client_id,
        "purchased_at": (utcnow() - timedelta(minutes=rng.randint(5, 600))).isoformat(),
        "lines": lines,
    }


async def _post(shop: Shop, creds: Credentials, target: str, payload: Any) -> httpx.Response:
    body, headers = creds.signed_json("POST", target, payload)
    return await shop.client.post(target, content=body, headers=headers)


async def test_terminals_uploading_batches_at_once_are_never_refused(shop: Shop) -> None:
    rng = random.Random(8_2)
    batches = [
        (creds, [_order(rng, shop, f"T{t}-B{b}-O{o}") for o in range(ORDERS)])
        for t, creds in enumerate(shop.batch_terminals)
        for b in range(BATCHES)
    ]
    online = [_order(rng, shop, f"ON-{o}") for o in range(20)]
    rng.shuffle(batches)

    responses = await asyncio.gather(
        *(
            _post(shop, creds, "/api/terminal/v1/orders/batch", {"orders": orders})
            for creds, orders in batches
        ),
        *(_post(shop, shop.online_terminal, "/api/terminal/v1/orders", o) for o in online),
    )

    batch_answers, online_answers = responses[: len(batches)], responses[len(batches) :]
    refused = [r.text for r in responses if r.status_code >= 300]
    assert refused == [], f"{len(refused)} of {len(responses)} refused: {refused[:3]}"
    assert {r.status_code for r in online_answers} == {201}
    for r in batch_answers:
        body = r.json()
        assert (body["created"], body["duplicates"], body["rejected"]) == (ORDERS, 0, 0)

    # Every order landed once; what was sold left the shelf, and nothing was oversold.
    sent = [o for _, orders in batches for o in orders] + online
    factory = make_sessionmaker(shop.engine)
    async with factory() as s:
        rows = (
            await s.execute(
                select(Order.client_order_id, Order.status).where(Order.store_id == shop.store_id)
            )
        ).all()
        assert len(rows) == len(sent) == TERMINALS * BATCHES * ORDERS + 20
        status_of: dict[str, str] = {str(cid): str(st) for cid, st in rows}
        booked: Counter[int] = Counter()
        index = dict(zip(shop.barcodes, shop.product_ids, strict=True))
        for o in sent:
            if status_of[o["client_order_id"]] == "out_of_stock":
                continue
            assert status_of[o["client_order_id"]] == "awaiting_payment"
            for line in o["lines"]:
                pid = line.get("product_id") or index[line["barcode"]]
                booked[pid] += line["quantity"]
        first = shop.product_ids[0]
        if shop.negative:
            assert "out_of_stock" not in status_of.values()
            start = {first: 0}
        else:
            assert 0 < booked[first] <= SCARCE
            assert "out_of_stock" in status_of.values()
            start = {first: SCARCE}
        balances = await inventory.balances(s, shop.store_id, shop.product_ids)
        for pid in shop.product_ids:
            assert balances[pid] == start.get(pid, PLENTY) - booked[pid]
        sold = await s.scalar(
            select(func.coalesce(func.sum(StockMovement.quantity), 0)).where(
                StockMovement.store_id == shop.store_id, StockMovement.kind == "sale"
            )
        )
        assert -int(sold or 0) == sum(booked.values())

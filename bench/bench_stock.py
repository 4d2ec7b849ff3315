"""Stock deduction throughput on PostgreSQL: 32 concurrent sales of the same product.

selfmart's path is `inventory.deduct_for_sale` in a session per sale (on PostgreSQL one
statement for every line: the balance rows locked in product order, the conditional UPDATE
... RETURNING and the ledger INSERT in data-modifying CTEs; then commit), exactly as order
intake calls it. The baseline sends the same statement with raw asyncpg, in a transaction per
sale. Both run in the same process against the same scratch database, dropped afterwards.

    SELFMART_BENCH_DATABASE_URL  server to use (default: the test server)
    SELFMART_BENCH_SALES         sales per measured run (default 3000)
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from selfmart.db import admin_execute, make_engine, make_sessionmaker
from selfmart.iam.actor import Actor
from selfmart.inventory import service as inventory
from selfmart.inventory.ledger import sell_pg_sql
from selfmart.kit.time import utcnow
from selfmart.migrate import upgrade_connection
from selfmart.models import Product, Store

CONCURRENCY = 32
ACTOR = Actor(kind="terminal", id=1, name="bench terminal", store_ids=None)
DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _server_url() -> str:
    return os.environ.get(
        "SELFMART_BENCH_DATABASE_URL", os.environ.get("SELFMART_TEST_DATABASE_URL", DEFAULT_URL)
    )


async def _run(total: int, sale: Callable[[int], Awaitable[None]]) -> float:
    """`total` sales by CONCURRENCY workers; returns sales per second."""
    counter = iter(range(total))

    async def worker() -> None:
        for n in counter:
            await sale(n)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return total / (time.perf_counter() - start)


async def main() -> None:
    base = _server_url()
    total = int(os.environ.get("SELFMART_BENCH_SALES", "3000"))
    name = f"selfmart_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        await admin_execute(base, f'CREATE DATABASE "{name}"')
    except Exception as exc:  # no server: say so, measure nothing
        print(f"bench_stock: skipped, PostgreSQL not reachable at {base} ({exc})")
        return
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url, pool_size=CONCURRENCY, max_overflow=0)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(upgrade_connection)
            await conn.commit()
        factory = make_sessionmaker(engine)
        async with factory() as s:
            store = Store(code="BENCH", name="bench", allow_negative_stock=False)
            product = Product(name="bench cola", price_fen=300, low_stock_threshold=5)
            s.add_all([store, product])
            await s.flush()
            await inventory.receive(
                s,
                store_id=store.id,
                lines=[inventory.ReceiptLine(product.id, 100_000_000)],
                document=("bench", 0),
                actor=ACTOR,
            )
            await s.commit()
            store_id, product_id = store.id, product.id

        async def service_sale(n: int) -> None:
            async with factory() as session:
                result = await inventory.deduct_for_sale(
                    session,
                    store_id=store_id,
                    lines=[(product_id, 1)],
                    document=("order", n),
                    actor=ACTOR,
                    allow_negative=False,
                )
                result.raise_if_refused()
                await session.commit()

        raw_dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        pool = await asyncpg.create_pool(raw_dsn, min_size=CONCURRENCY, max_size=CONCURRENCY)
        # The same statement selfmart runs on PostgreSQL, with $n placeholders.
        names: list[str] = []

        def placeholder(m: re.Match[str]) -> str:
            if m.group(1) not in names:
                names.append(m.group(1))
            return f"${names.index(m.group(1)) + 1}"

        sell = re.sub(r":(\w+)", placeholder, sell_pg_sql(refuse=True))

        async def raw_sale(n: int) -> None:
            values = {
                "products": [product_id],
                "quantities": [1],
                "store": store_id,
                "now": utcnow(),
                "doc_type": "order",
                "doc_id": str(n),
                "actor_type": ACTOR.kind,
                "actor_id": ACTOR.audit_id,
                "actor_name": ACTOR.name,
            }
            async with pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(sell, *(values[k] for k in names))
                if row is None:
                    raise RuntimeError("out of stock")

        try:
            warm = max(total // 10, CONCURRENCY)
            await _run(warm, service_sale)
            await _run(warm, raw_sale)
            service_rate = await _run(total, service_sale)
            raw_rate = await _run(total, raw_sale)
        finally:
            await pool.close()
        async with factory() as s:
            from selfmart.inventory.checks import find_mismatches

            assert await find_mismatches(s) == [], "ledger and balance disagree after the bench"
        print(
            f"stock deduction, {CONCURRENCY} concurrent sales of one product, {total} each: "
            f"selfmart {service_rate:,.0f} sales/s "
            f"(raw asyncpg {raw_rate:,.0f} sales/s, ratio {service_rate / raw_rate:.2f})"
        )
    finally:
        await engine.dispose()
        await admin_execute(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())

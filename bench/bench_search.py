"""Order search on a million orders: the console's searches through selfmart (filters, store
scope, count and one sorted page) beside the same SQL run raw with asyncpg, in the same run.

    SELFMART_BENCH_DATABASE_URL names the PostgreSQL server (the benchmark makes and drops its
    own database); SELFMART_BENCH_SEARCH_ORDERS sets how many orders (default 1,000,000).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench.common import asyncpg_url, scratch_database, timed  # noqa: E402
from selfmart.db import make_engine, make_sessionmaker  # noqa: E402
from selfmart.iam.actor import Actor  # noqa: E402
from selfmart.kit.pagination import PageParams  # noqa: E402
from selfmart.models import Order  # noqa: E402
from selfmart.orders import search  # noqa: E402
from selfmart.orders.search import OrderFilters  # noqa: E402
from selfmart.orders.statemachine import OrderStatus  # noqa: E402

REPEAT = 20

SEED = """
INSERT INTO stores (code, name, address, city, timezone, opening_hours, status,
  allow_negative_stock, created_at, updated_at)
SELECT 'B' || i, '门店' || i, '', '上海', 'Asia/Shanghai', '24h', 'active', true, now(), now()
FROM generate_series(1, 20) i;
INSERT INTO terminals (code, store_id, name, model, status, activation_failed_attempts,
  created_at, updated_at)
SELECT 'T-' || s.id, s.id, '', '', 'active', 0, now(), now() FROM stores s;
INSERT INTO products (name, brand, spec, unit, price_fen, cost_fen, track_batches,
  low_stock_threshold, status, pinyin_full, pinyin_initials, created_at, updated_at)
SELECT '商品' || i, '', '', '件', 100 + i, 0, false, 0, 'on_sale', '', '', now(), now()
FROM generate_series(1, 500) i;
INSERT INTO orders (order_no, store_id, terminal_id, client_order_id, source, status,
  purchased_at, created_at, updated_at, member_no, customer_phone, phone_last4, item_count,
  subtotal_fen, discount_fen, total_fen, paid_fen, refunded_fen, payment_method, stock_booked,
  price_mismatch, stock_short, open_issues)
SELECT lpad(g::text, 16, '0'), s, s, 'c' || g, 'terminal',
  (ARRAY['awaiting_payment','paid','completed','closed','refunded'])[1 + g % 5],
  now() - (g || ' seconds')::interval * 30, now() - (g || ' seconds')::interval * 30, now(),
  CASE WHEN g % 7 = 0 THEN 'M' || (g % 50000) END,
  CASE WHEN g % 3 = 0 THEN '139' || lpad((g % 100000000)::text, 8, '0') END,
  CASE WHEN g % 3 = 0 THEN right(lpad((g % 100000000)::text, 8, '0'), 4) END,
  2, 200 + g % 9000, 0, 200 + g % 9000, 200 + g % 9000, 0,
  CASE WHEN g % 5 IN (1, 2) THEN 'manual' END, true, false, false,
  CASE WHEN g % 97 = 0 THEN 1 ELSE 0 END
FROM generate_series(1, :n) g, LATERAL (SELECT 1 + g % 20 AS s) x;
INSERT INTO order_lines (order_id, line_no, product_id, name, spec, list_price_fen,
  unit_price_fen, quantity, discount_fen, amount_fen, price_source, refunded_qty, refunded_fen,
  cancelled_qty, cancelled_fen)
SELECT o.id, l, 1 + (o.id * 7 + l) % 500, '商品', '', 100, 100, 1, 0, 100, 'store', 0, 0, 0, 0
FROM orders o, generate_series(1, 2) l;
ANALYZE;
"""


def _queries(now: datetime) -> dict[str, OrderFilters]:
    return {
        "first page, newest first": OrderFilters(),
        "by order number": OrderFilters(order_no=f"{123457:016d}"),
        "by phone": OrderFilters(phone="13900012345"),
        "quick search, part of an order no.": OrderFilters(q="234571"),
        "by a phone's last 4 digits": OrderFilters(phone="2345"),
        "store + last day + paid, by amount": OrderFilters(
            store_id=[3],
            time_from=now - timedelta(days=1),
            status=[OrderStatus.PAID],
            sort="-total_fen",
        ),
        "containing a product": OrderFilters(product_id=42, store_id=[5]),
        "abnormal only": OrderFilters(abnormal=True),
        "amount range, a week": OrderFilters(
            amount_min_fen=5000, amount_max_fen=5100, time_from=now - timedelta(days=7)
        ),
    }


def _sql(stmt: Any) -> str:
    dialect: Any = postgresql.dialect()  # type: ignore[no-untyped-call]
    return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


async def main() -> None:
    n = int(os.environ.get("SELFMART_BENCH_SEARCH_ORDERS", "1000000"))
    async with scratch_database("search") as url:
        if url is None:
            return
        engine = make_engine(url)
        t0 = time.perf_counter()
        raw = await asyncpg.connect(asyncpg_url(url))
        await raw.execute(SEED.replace(":n", str(n)))
        print(f"search: seeded {n:,} orders ({2 * n:,} lines) in {time.perf_counter() - t0:.0f} s")
        actor = Actor(kind="user", id=None, name="bench", store_ids=None)
        params = PageParams(page=1, size=20)
        factory = make_sessionmaker(engine)
        now = datetime.now(UTC)
        ratios = []
        for label, filters in _queries(now).items():

            async def via_selfmart(f: OrderFilters = filters) -> Any:
                async with factory() as session:
                    return await search.search(session, f, params, actor)

            count_sql = _sql(search.apply_filters(select(func.count(Order.id)), filters, actor))
            page_sql = _sql(search.list_statement(filters, actor).limit(20).offset(0))

            async def via_raw(c: str = count_sql, p: str = page_sql) -> Any:
                return await raw.fetchval(c), await raw.fetch(p)

            ours, _ = await timed(via_selfmart, REPEAT)
            theirs, _ = await timed(via_raw, REPEAT)
            ratios.append(theirs / ours)
            print(
                f"  {label:38s} selfmart {ours:7.1f} ms   raw SQL {theirs:7.1f} ms   "
                f"ratio {theirs / ours:.2f}"
            )
        await raw.close()
        await engine.dispose()
        print(
            f"search: median ratio {statistics.median(ratios):.2f} (raw time / selfmart time) "
            f"over {len(ratios)} searches of {n:,} orders; count + one page of 20 each"
        )


if __name__ == "__main__":
    asyncio.run(main())

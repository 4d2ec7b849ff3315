"""The rebuild's PostgreSQL path: every summary row of every store day written by a few
set-based INSERT … SELECT statements, instead of reading every order and line into Python.

The rows are those `summaries.compute` defines (see its docstring for what counts), worked out
by the database in each store's zone; `selfmart check-analytics` recomputes them with
`summaries.compute` and names any difference, and the tests run it after this rebuild.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics.summaries import NOT_SALES, Key

_ZONE = "COALESCE(NULLIF(z.timezone, ''), 'Asia/Shanghai')"
_NOT_SALES = ", ".join(f"'{s}'" for s in NOT_SALES)

_STATEMENTS = [
    # The orders that count as sales, with their local moment; then the refunds that count.
    f"""
    CREATE TEMPORARY TABLE ana_sold ON COMMIT DROP AS
    SELECT o.id, o.store_id, (o.paid_at AT TIME ZONE {_ZONE}) AS local, o.total_fen,
      o.member_id, COALESCE(NULLIF(o.payment_method, ''), 'unknown') AS method
    FROM orders o JOIN stores z ON z.id = o.store_id
    WHERE o.paid_at IS NOT NULL AND o.status NOT IN ({_NOT_SALES})
    """,
    f"""
    CREATE TEMPORARY TABLE ana_refunds ON COMMIT DROP AS
    SELECT r.id, r.store_id,
      (COALESCE(r.completed_at, r.created_at) AT TIME ZONE {_ZONE})::date AS day, r.amount_fen
    FROM refunds r JOIN orders o ON o.id = r.order_id JOIN stores z ON z.id = r.store_id
    WHERE r.status = 'succeeded' AND o.status NOT IN ({_NOT_SALES})
    """,
    "ANALYZE ana_sold",
    """
    INSERT INTO analytics_sales_days (store_id, day, orders, sales_fen, items, member_orders,
      member_sales_fen, refunds, refunds_fen)
    SELECT store_id, day, sum(orders), sum(sales), sum(items), sum(member_orders),
      sum(member_sales), sum(refunds), sum(refunds_fen)
    FROM (
      SELECT store_id, local::date AS day, count(*) AS orders, sum(total_fen) AS sales,
        0 AS items, count(member_id) AS member_orders,
        sum(CASE WHEN member_id IS NOT NULL THEN total_fen ELSE 0 END) AS member_sales,
        0 AS refunds, 0 AS refunds_fen
      FROM ana_sold GROUP BY 1, 2
      UNION ALL
      SELECT s.store_id, s.local::date, 0, 0, sum(l.quantity - l.cancelled_qty), 0, 0, 0, 0
      FROM ana_sold s JOIN order_lines l ON l.order_id = s.id GROUP BY 1, 2
      UNION ALL
      SELECT store_id, day, 0, 0, 0, 0, 0, count(*), sum(amount_fen)
      FROM ana_refunds GROUP BY 1, 2
    ) x
    GROUP BY 1, 2
    """,
    """
    INSERT INTO analytics_product_days (store_id, day, product_id, category_id, orders,
      quantity, sales_fen, refund_qty, refunds_fen, refunds)
    SELECT x.store_id, x.day, x.product_id, p.category_id, sum(x.orders), sum(x.quantity),
      sum(x.sales), sum(x.refund_qty), sum(x.refunds_fen), sum(x.refunds)
    FROM (
      SELECT s.store_id, s.local::date AS day, l.product_id,
        count(DISTINCT l.order_id) AS orders, sum(l.quantity - l.cancelled_qty) AS quantity,
        sum(l.amount_fen - l.cancelled_fen) AS sales, 0 AS refund_qty, 0 AS refunds_fen,
        0 AS refunds
      FROM ana_sold s JOIN order_lines l ON l.order_id = s.id GROUP BY 1, 2, 3
      UNION ALL
      SELECT r.store_id, r.day, ol.product_id, 0, 0, 0, sum(rl.quantity), sum(rl.amount_fen),
        count(DISTINCT r.id)
      FROM ana_refunds r
      JOIN refund_lines rl ON rl.refund_id = r.id
      JOIN order_lines ol ON ol.id = rl.order_line_id
      GROUP BY 1, 2, 3
    ) x
    LEFT JOIN products p ON p.id = x.product_id
    GROUP BY 1, 2, 3, 4
    """,
    """
    INSERT INTO analytics_member_days (store_id, day, member_id, orders, sales_fen)
    SELECT store_id, local::date, member_id, count(*), sum(total_fen)
    FROM ana_sold WHERE member_id IS NOT NULL
    GROUP BY 1, 2, 3
    """,
    # A product's paying members: one row per member, store day and product.
    """
    INSERT INTO analytics_product_members (store_id, day, product_id, member_id, orders)
    SELECT s.store_id, s.local::date, l.product_id, s.member_id, count(DISTINCT s.id)
    FROM ana_sold s JOIN order_lines l ON l.order_id = s.id
    WHERE s.member_id IS NOT NULL
    GROUP BY 1, 2, 3, 4
    """,
    # Each product with its category and every category above it (scoped_days): the ids of
    # the category's path, "/1/5/9/".
    """
    CREATE TEMPORARY TABLE ana_paths ON COMMIT DROP AS
    SELECT p.id AS product_id, a.id::int AS category_id
    FROM products p JOIN categories c ON c.id = p.category_id
    CROSS JOIN LATERAL unnest(string_to_array(trim(both '/' from c.path), '/')) AS a(id)
    WHERE a.id <> ''
    """,
    # Each sold order once per category on its products' paths, with its lines' figures
    # there: the category days and the category members are sums of these rows.
    """
    CREATE TEMPORARY TABLE ana_order_categories ON COMMIT DROP AS
    SELECT s.store_id, s.local::date AS day, a.category_id, s.id AS order_id, s.member_id,
      sum(l.quantity - l.cancelled_qty) AS items, sum(l.amount_fen - l.cancelled_fen) AS sales
    FROM ana_sold s
    JOIN order_lines l ON l.order_id = s.id
    JOIN ana_paths a ON a.product_id = l.product_id
    GROUP BY 1, 2, 3, 4, 5
    """,
    "ANALYZE ana_order_categories",
    """
    INSERT INTO analytics_category_days (store_id, day, category_id, orders, items, sales_fen,
      refunds, refunds_fen)
    SELECT store_id, day, category_id, sum(orders), sum(items), sum(sales), sum(refunds),
      sum(refunds_fen)
    FROM (
      SELECT store_id, day, category_id, count(*) AS orders, sum(items) AS items,
        sum(sales) AS sales, 0 AS refunds, 0 AS refunds_fen
      FROM ana_order_categories GROUP BY 1, 2, 3
      UNION ALL
      SELECT r.store_id, r.day, a.category_id, 0, 0, 0, count(DISTINCT r.id),
        sum(rl.amount_fen)
      FROM ana_refunds r
      JOIN refund_lines rl ON rl.refund_id = r.id
      JOIN order_lines ol ON ol.id = rl.order_line_id
      JOIN ana_paths a ON a.product_id = ol.product_id
      GROUP BY 1, 2, 3
    ) x
    GROUP BY 1, 2, 3
    """,
    """
    INSERT INTO analytics_category_members (store_id, day, category_id, member_id, orders)
    SELECT store_id, day, category_id, member_id, count(*)
    FROM ana_order_categories WHERE member_id IS NOT NULL
    GROUP BY 1, 2, 3, 4
    """,
    """
    INSERT INTO analytics_hour_cells (store_id, day, hour, payment_method, orders, sales_fen)
    SELECT store_id, local::date, extract(hour FROM local)::int, method, count(*),
      sum(total_fen)
    FROM ana_sold
    GROUP BY 1, 2, 3, 4
    """,
]

# Every store day with a sale or a refund (what `summaries.all_days` reads in Python).
_DAYS = f"""
SELECT DISTINCT store_id, day FROM (
  SELECT store_id, local::date AS day FROM ana_sold
  UNION ALL
  SELECT r.store_id, (COALESCE(r.completed_at, r.created_at) AT TIME ZONE {_ZONE})::date
  FROM refunds r JOIN stores z ON z.id = r.store_id
  WHERE r.status = 'succeeded'
) d
"""


async def write_all(session: AsyncSession) -> set[Key]:
    """Insert every summary row (the tables must be empty); returns every store day with a
    sale or a refund. PostgreSQL only."""
    for stmt in _STATEMENTS:
        await session.execute(text(stmt))
    keys = {(r.store_id, r.day) for r in (await session.execute(text(_DAYS))).all()}
    for table in ("ana_sold", "ana_refunds", "ana_paths", "ana_order_categories"):
        await session.execute(text(f"DROP TABLE {table}"))
    return keys

"""The operation log stays fast with a year of entries (issue 13, "Logs"): the console's log page
over a year of a chain's audit entries, beside the same page over one week of them, in the
same run, on PostgreSQL.

Two scratch databases: one holds a week of entries, the other a year (52 times as many, the
same mix). Each page load is what the console's operation-log page asks for, through the audit
service: one page of entries and its total, newest first, unfiltered (what the page opens on),
for one store, for one action, for the last seven days, for one store's last week, a free-text
search over the last seven days, and the action filter's list. The ratio is the year's time
over the week's: near 1 means the page does not slow down as the log grows (goal ≤ 2).

    SELFMART_BENCH_DATABASE_URL   server to use (default: the test server)
    SELFMART_BENCH_LOG_ROWS       entries in the year (default 5,000,000: 50 stores, ~270 a
                                  store a day)
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from bench.common import scratch_database, timed  # noqa: E402
from selfmart.audit import service as audit  # noqa: E402
from selfmart.audit.schemas import AuditFilter  # noqa: E402
from selfmart.db import make_engine, make_sessionmaker  # noqa: E402
from selfmart.iam.actor import Actor  # noqa: E402
from selfmart.kit.pagination import PageParams  # noqa: E402
from selfmart.kit.time import utcnow  # noqa: E402

STORES = 50
ACTIONS = 60
REPEAT = 5

#: A year's (or a week's) entries: spread evenly back from now, 50 stores (one entry in 20
#: has none: chain-wide changes), 60 actions (a few frequent, most rare), a name and a label.
SEED = """
INSERT INTO audit_logs (id, occurred_at, actor_type, actor_id, actor_name, action, entity_type,
                        entity_id, entity_label, store_id, changes, note, ip, request_id)
SELECT g,
       now() - (g::float8 / :rows) * (:days * interval '1 day'),
       CASE WHEN g % 3 = 0 THEN 'user' ELSE 'terminal' END,
       (g % 400)::text,
       'actor ' || (g % 400),
       'action.' || (CASE WHEN g % 4 > 0 THEN g % 6 ELSE g % :actions END),
       'order',
       g::text,
       'SO' || lpad(g::text, 12, '0'),
       CASE WHEN g % 20 = 0 THEN NULL ELSE 1 + g % :stores END,
       '{}'::jsonb,
       NULL,
       '10.0.' || (g % 250) || '.1',
       md5(g::text)
FROM generate_series(1::bigint, :rows) g
"""

ALL = Actor(kind="user", id=None, name="bench", store_ids=None)


def _pages(week_start: Any) -> dict[str, Callable[[Any], Awaitable[Any]]]:
    page = PageParams(page=1, size=20)

    def search(f: AuditFilter) -> Callable[[Any], Awaitable[Any]]:
        return lambda s: audit.search(s, ALL, f, page)

    return {
        "unfiltered (the page as it opens)": search(AuditFilter()),
        "one store": search(AuditFilter(store_id=7)),
        "one action": search(AuditFilter(action="action.17")),
        "the last 7 days": search(AuditFilter(since=week_start)),
        "one store, last 7 days": search(AuditFilter(store_id=7, since=week_start)),
        "free text, last 7 days": search(AuditFilter(q="actor 39", since=week_start)),
        "the action list": lambda s: audit.actions(s, ALL),
    }


async def _measure(url: str, rows: int, days: int) -> dict[str, float]:
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    try:
        async with factory() as s:
            t0 = time.perf_counter()
            params = {"rows": rows, "days": days, "stores": STORES, "actions": ACTIONS}
            await s.execute(text(SEED), params)
            await s.commit()
        async with engine.connect() as conn:
            await conn.execute(text("COMMIT"))
            await conn.execute(text("VACUUM ANALYZE audit_logs"))
        print(f"  {rows:,} entries over {days} days seeded in {time.perf_counter() - t0:.1f} s")
        week_start = utcnow() - timedelta(days=7)
        out: dict[str, float] = {}
        for name, fn in _pages(week_start).items():

            async def once(fn: Callable[[Any], Awaitable[Any]] = fn) -> Any:
                async with factory() as s:
                    return await fn(s)

            await once()  # warm
            out[name], _ = await timed(once, REPEAT)
        return out
    finally:
        await engine.dispose()


async def main() -> None:
    year_rows = int(os.environ.get("SELFMART_BENCH_LOG_ROWS", "5000000"))
    week_rows = max(1, year_rows * 7 // 365)
    async with scratch_database("logs_week") as week_url:
        if week_url is None:
            return
        week = await _measure(week_url, week_rows, 7)
    async with scratch_database("logs_year") as year_url:
        assert year_url is not None
        year = await _measure(year_url, year_rows, 365)
    worst = 0.0
    print(f"operation log page, a year ({year_rows:,}) beside a week ({week_rows:,}), median ms:")
    for name, w in week.items():
        ratio = year[name] / w if w else float("inf")
        worst = max(worst, ratio)
        print(f"  {name:36} year {year[name]:8.1f}   week {w:7.1f}   ratio {ratio:6.2f}")
    print(
        f"bench_logs: worst ratio {worst:.2f} (goal ≤ 2: the page keeps its speed as the log grows)"
    )


if __name__ == "__main__":
    asyncio.run(main())

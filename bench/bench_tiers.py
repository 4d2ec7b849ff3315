"""The nightly tier re-evaluation on PostgreSQL: N members and 10 x N paid orders of theirs
(default 500,000 and 5,000,000), timed beside one SQL aggregate over the same data (net spend
and orders with money kept, per member, over the tier window) in the same run.

selfmart's path is what the nightly job runs (`members.tasks.nightly`): `tiers.reevaluate_all`
batch after batch, each batch in its own transaction, committed. The data: four tiers by spend
(and orders), each member's orders spread over 400 days (the window is 365), and every member
already in the tier their orders give them except one in a hundred, who has none: a night with
about 1% of the members moving up, each move written with its history row, audit entry, page
message and SMS. The job reads the programme's record of paid orders (`member_orders`), not
the orders themselves, so the bench generates those rows (generate_series, one statement).

    SELFMART_BENCH_DATABASE_URL   server to use (default: the test server)
    SELFMART_BENCH_TIER_MEMBERS   members (default 500000); orders are ten times as many
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from selfmart.db import admin_execute, make_engine, make_sessionmaker  # noqa: E402
from selfmart.iam.actor import job_actor  # noqa: E402
from selfmart.jobs.registry import discover  # noqa: E402
from selfmart.kit.time import utcnow  # noqa: E402
from selfmart.members import tiers  # noqa: E402
from selfmart.migrate import upgrade_connection  # noqa: E402

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
WINDOW_DAYS = 365

#: The aggregate the job's answer rests on, alone: spend and counted orders per member.
AGGREGATE = text(
    "SELECT member_id, sum(net_fen), sum(CASE WHEN net_fen > 0 THEN 1 ELSE 0 END) "
    "FROM member_orders WHERE paid_at >= :since GROUP BY member_id"
)


def _server_url() -> str:
    return os.environ.get(
        "SELFMART_BENCH_DATABASE_URL", os.environ.get("SELFMART_TEST_DATABASE_URL", DEFAULT_URL)
    )


SEED = [
    # tiers: entry, then by spend over the window (gold also needs 12 orders)
    """INSERT INTO member_tiers (code, name, rank, min_spend_fen, min_orders, match, discount_bp,
       points_multiplier_pct, birthday_points, birthday_benefit, is_active, created_at,
       updated_at) VALUES
       ('base', 'Base', 0, NULL, NULL, 'all', 0, 100, 0, '', true, now(), now()),
       ('silver', 'Silver', 1, 50000, NULL, 'all', 200, 100, 0, '', true, now(), now()),
       ('gold', 'Gold', 2, 100000, 12, 'all', 500, 150, 0, '', true, now(), now()),
       ('platinum', 'Platinum', 3, 150000, NULL, 'all', 800, 200, 0, '', true, now(), now())""",
    """UPDATE member_program SET tier_window_days = 365, downgrades_enabled = true""",
    """INSERT INTO members (id, member_no, name, mobile, gender, tags, status, points_balance,
       marketing_consent, channel, registered_at, updated_at)
       SELECT g, 'B' || lpad(g::text, 10, '0'), 'bench', '139' || lpad(g::text, 8, '0'),
              'unknown', '[]', 'active', 0, false, 'console', now(), now()
       FROM generate_series(1, :members) g""",
    """INSERT INTO member_orders (id, member_id, order_id, store_id, paid_at, net_fen, rate_pct,
       points_earned, updated_at)
       SELECT g, 1 + (g * 7919) % :members, g, 1, now() - ((g * 13) % 400) * interval '1 day',
              CASE WHEN g % 50 = 0 THEN 0 ELSE 500 + (g * 31) % 19000 END, 100, 0, now()
       FROM generate_series(1::bigint, :orders) g""",
]


async def _seed(factory: object, members: int) -> None:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    assert isinstance(factory, async_sessionmaker)
    async with factory() as s:
        params = {"members": members, "orders": members * 10}
        for sql in SEED:
            await s.execute(text(sql), params if ":" in sql else {})
        await s.commit()
    # Every member in the tier their orders give them (set-based, untimed), then one in a
    # hundred without one: what tonight's job has to find and move.
    async with factory() as s:
        since = utcnow() - timedelta(days=WINDOW_DAYS)
        await s.execute(
            text(
                """UPDATE members m SET tier_id = (
                     SELECT t.id FROM member_tiers t
                     WHERE coalesce(a.spend, 0) >= coalesce(t.min_spend_fen, 0)
                       AND coalesce(a.n, 0) >= coalesce(t.min_orders, 0)
                     ORDER BY t.rank DESC LIMIT 1)
                   FROM (SELECT mm.id, x.spend, x.n FROM members mm LEFT JOIN (
                           SELECT member_id, sum(net_fen) AS spend,
                                  sum(CASE WHEN net_fen > 0 THEN 1 ELSE 0 END) AS n
                           FROM member_orders WHERE paid_at >= :since GROUP BY member_id) x
                         ON x.member_id = mm.id) a
                   WHERE a.id = m.id"""
            ),
            {"since": since},
        )
        await s.execute(text("UPDATE members SET tier_id = NULL WHERE id % 100 = 0"))
        await s.commit()
    async with factory() as s:
        await s.execute(text("ANALYZE"))
        await s.commit()


async def _aggregate(factory: object) -> tuple[float, int]:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    assert isinstance(factory, async_sessionmaker)
    since = utcnow() - timedelta(days=WINDOW_DAYS)
    start = time.perf_counter()
    async with factory() as s:
        rows = (await s.execute(AGGREGATE, {"since": since})).all()
    return time.perf_counter() - start, len(rows)


async def _job(factory: object) -> tuple[float, int]:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    assert isinstance(factory, async_sessionmaker)
    actor = job_actor("members.nightly")
    changed = after_id = 0
    start = time.perf_counter()
    while True:
        async with factory() as s:
            after_id, n = await tiers.reevaluate_all(s, actor=actor, after_id=after_id)
            await s.commit()
        changed += n
        if after_id == 0:
            break
    return time.perf_counter() - start, changed


async def main() -> None:
    base = _server_url()
    members = int(os.environ.get("SELFMART_BENCH_TIER_MEMBERS", "500000"))
    name = f"selfmart_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        await admin_execute(base, f'CREATE DATABASE "{name}"')
    except Exception as exc:  # no server: say so, measure nothing
        print(f"bench_tiers: skipped, PostgreSQL not reachable at {base} ({exc})")
        return
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url, pool_size=2, max_overflow=0)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(upgrade_connection)
            await conn.commit()
        factory = make_sessionmaker(engine)
        discover()  # a worker has every task module loaded before its first job
        start = time.perf_counter()
        await _seed(factory, members)
        seeded = time.perf_counter() - start
        await _aggregate(factory)  # warm the cache for both
        agg_before, groups = await _aggregate(factory)
        job_s, changed = await _job(factory)
        agg_after, _ = await _aggregate(factory)
        agg_s = min(agg_before, agg_after)
        again_s, again = await _job(factory)  # a second night: nothing left to move
        print(
            f"tier re-evaluation, {members:,} members, {members * 10:,} orders "
            f"(seeded in {seeded:.1f} s): nightly job {job_s:.2f} s, {changed:,} moved "
            f"(one SQL aggregate {agg_s:.2f} s over {groups:,} members, ratio "
            f"{job_s / agg_s:.2f}); a second night {again_s:.2f} s, {again} moved "
            f"(ratio {again_s / agg_s:.2f})"
        )
    finally:
        await engine.dispose()
        await admin_execute(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())

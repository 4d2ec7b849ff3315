"""Product import of a 50,000-row xlsx: rows/s, beside merely reading the same file.

The baseline is openpyxl reading every cell of the same file (read-only mode, values only),
in the same run; the import reads it the same way, then validates every row, resolves
barcodes, categories and tags, writes products, barcodes and one audit entry per product
in one transaction. It runs on a fresh SQLite file, then on a fresh PostgreSQL database
(created and dropped on the server of SELFMART_BENCH_DATABASE_URL, default the local test
server) when that server is reachable. Set BENCH_IMPORT_ROWS to change the size.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path

from openpyxl import Workbook, load_workbook
from sqlalchemy import text
from sqlalchemy.engine import make_url

from selfmart.catalog import importer
from selfmart.catalog.barcodes import with_check_digit
from selfmart.db import make_engine, make_sessionmaker
from selfmart.iam.actor import SYSTEM
from selfmart.migrate import upgrade_connection

ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "50000"))
PG_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
BRANDS = ["可口可乐", "农夫山泉", "康师傅", "统一", "旺旺", "乐事", "蒙牛", "伊利", "雀巢", "洽洽"]
CATEGORIES = [
    "饮料/碳酸饮料",
    "饮料/饮用水",
    "零食/膨化食品",
    "零食/坚果炒货",
    "粮油/方便面",
    "乳品/纯牛奶",
]


def make_file(path: Path, rows: int) -> None:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("商品")
    ws.append([c.label for c in importer.COLUMNS])
    for i in range(rows):
        brand = BRANDS[i % len(BRANDS)]
        ws.append(
            [
                with_check_digit(f"69{i:010d}"),
                f"{brand} 测试商品 {i}",
                brand,
                f"{100 + i % 900}ml",
                "瓶",
                CATEGORIES[i % len(CATEGORIES)],
                f"{1 + i % 50}.{i % 100:02d}",
                f"{i % 30}.50",
                None,
                180 + i % 200,
                "否",
                i % 20,
                "在售",
                "热销" if i % 7 == 0 else None,
            ]
        )
    wb.save(path)


def read_only_rate(path: Path) -> tuple[int, float]:
    start = time.perf_counter()
    wb = load_workbook(path, read_only=True, data_only=True)
    n = 0
    for _row in wb.worksheets[0].iter_rows(values_only=True):
        n += 1
    wb.close()
    return n - 1, time.perf_counter() - start


async def import_rate(data: bytes, name: str, url: str) -> tuple[int, float, float]:
    """(rows created, wall seconds, CPU seconds of this process), migrations not counted."""
    engine = make_engine(url)
    async with engine.connect() as conn:
        await conn.run_sync(upgrade_connection)
        await conn.commit()
    factory = make_sessionmaker(engine)
    options = importer.ImportOptions(
        mode="all_or_nothing", create_categories=True, create_tags=True, max_rows=ROWS + 1
    )
    start, cpu = time.perf_counter(), time.process_time()
    async with factory() as session:
        report = await importer.import_file(session, data, name, options, actor=SYSTEM)
        await session.commit()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    await engine.dispose()
    if report.status != "imported" or report.created != ROWS:
        raise SystemExit(f"import did not import every row: {report.status} {report.errors[:3]}")
    return report.created, elapsed, cpu


async def _pg_admin(url: str, sql: str) -> bool:
    engine = make_engine(url, isolation_level="AUTOCOMMIT", pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
        return True
    except OSError:
        return False
    finally:
        await engine.dispose()


async def run(path: Path, url: str) -> None:
    # The baseline is read right before and right after the import and averaged, so both sides
    # see the same machine (other work on a shared machine slows both alike). CPU seconds of
    # this process are printed too: on SQLite they are the whole import's work and hardly move
    # with the machine's load; on PostgreSQL the server's share is not in them.
    c0 = time.process_time()
    n_read, t_before = read_only_rate(path)
    c_read = time.process_time() - c0
    n_imp, t_imp, c_imp = await import_rate(path.read_bytes(), path.name, url)  # noqa: ASYNC240
    _, t_after = read_only_rate(path)
    t_read = (t_before + t_after) / 2
    read_rate = n_read / t_read
    imp_rate = n_imp / t_imp
    backend = url.split(":", 1)[0]
    print(
        f"import_xlsx_{ROWS // 1000}k ({backend}): {imp_rate:,.0f} rows/s "
        f"(openpyxl read only: {read_rate:,.0f} rows/s, ratio {imp_rate / read_rate:.2f}; "
        f"{t_imp:.1f}s vs {t_before:.1f}/{t_after:.1f}s; "
        f"CPU {c_imp:.1f}s vs {c_read:.1f}s, ratio {c_read / c_imp:.2f})"
    )


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="selfmart-bench-") as tmp:
        path = Path(tmp) / "products.xlsx"
        make_file(path, ROWS)
        await run(path, f"sqlite+aiosqlite:///{tmp}/bench.db")
        base = os.environ.get("SELFMART_BENCH_DATABASE_URL", PG_DEFAULT)
        name = f"selfmart_bench_import_{uuid.uuid4().hex[:8]}"
        if not await _pg_admin(base, f'CREATE DATABASE "{name}"'):
            print(f"PostgreSQL not reachable at {base}: skipped")
            return
        try:
            await run(path, make_url(base).set(database=name).render_as_string(False))
        finally:
            await _pg_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    import asyncio

    asyncio.run(main())

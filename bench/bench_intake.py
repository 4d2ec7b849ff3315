"""Intake throughput and latency: signed orders over real HTTP into selfmart (one uvicorn
worker) on PostgreSQL, beside a raw-SQL baseline doing the same reads and writes with asyncpg
and no framework, measured in the same run. Prints orders/s, p50 and p99 of each and the ratio.

Each order has 5 lines. Both sides run 8 concurrent clients/connections. The baseline reads
and writes what intake does on PostgreSQL, row for row, column for column and statement for
statement, in one transaction: find the terminal key (with its terminal and store) and burn
the nonce (one statement), price the lines, the header and its lines (one statement), the
stock of every line with its ledger movements (the very statement intake runs, from
`selfmart.inventory.ledger`), and the timeline (the same JSON) with the audit entry (the same
changes) in one statement. It leaves out only what no SQL client can: HTTP, the signature
check and pricing logic in Python. Both sides share the machine's cores with the PostgreSQL
server, so the CPU each costs per order is printed too. The HTTP client is a few lines over
asyncio streams (keep-alive HTTP/1.1, one connection per concurrent client) rather than a
general client library, so that what it costs the shared cores stays small beside the
server's.

    SELFMART_BENCH_DATABASE_URL (default: the test server) names the PostgreSQL server; the
    benchmark creates and drops its own database there. SELFMART_BENCH_ORDERS sets the count.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import socket
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from selfmart.db import admin_execute, make_engine, make_sessionmaker  # noqa: E402
from selfmart.inventory.ledger import sell_pg_sql  # noqa: E402
from selfmart.terminals import signing  # noqa: E402

PG_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
SECRET_KEY = "bench-secret-key-0123456789abcdef0123456789"
CONCURRENCY = 8
LINES = 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _seed(url: str) -> dict[str, Any]:
    """Migrate the database and make a store, 5 stocked products and an active terminal."""
    os.environ["SELFMART_SECRET_KEY"] = SECRET_KEY
    from selfmart.config import get_settings

    get_settings.cache_clear()
    from selfmart.migrate import upgrade_connection
    from selfmart.models import Product, ProductBarcode, StockLevel, Store, StoreProduct, Terminal
    from selfmart.terminals import service as terminals

    engine = make_engine(url)
    async with engine.connect() as conn:
        await conn.run_sync(upgrade_connection)
        await conn.commit()
    now = datetime.now(UTC)
    async with make_sessionmaker(engine)() as s:
        store = Store(code="BENCH", name="压测店", city="上海")
        s.add(store)
        await s.flush()
        barcodes = []
        for i in range(LINES):
            product = Product(name=f"商品{i}", price_fen=100 + i, spec="瓶")
            s.add(product)
            await s.flush()
            code = f"69{i:011d}"
            barcodes.append(code)
            s.add(ProductBarcode(product_id=product.id, code=code, kind="internal"))
            s.add(StoreProduct(store_id=store.id, product_id=product.id))
            s.add(
                StockLevel(store_id=store.id, product_id=product.id, quantity=10**9, updated_at=now)
            )
        terminal = Terminal(code="T-BENCH", store_id=store.id, status="active")
        s.add(terminal)
        await s.flush()
        key, secret = await terminals.create_key(s, terminal.id, now=now)
        await s.commit()
        seeded = {
            "store_id": store.id,
            "terminal_id": terminal.id,
            "key_id": key.key_id,
            "secret": secret,
            "barcodes": barcodes,
        }
    await engine.dispose()
    return seeded


def _order_body(barcodes: list[str]) -> bytes:
    return json.dumps(
        {
            "client_order_id": uuid.uuid4().hex,
            "purchased_at": datetime.now(UTC).isoformat(),
            "lines": [{"barcode": b, "quantity": 1} for b in barcodes],
        }
    ).encode()


async def _drive(
    n: int, one: Callable[[], Awaitable[None]], workers: int = CONCURRENCY
) -> tuple[float, list[float]]:
    """Run `one` n times over `workers` workers; (orders/s, latencies in ms)."""
    latencies: list[float] = []
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            t0 = time.perf_counter()
            await one()
            latencies.append((time.perf_counter() - t0) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return n / (time.perf_counter() - started), latencies


class _Conn:
    """One keep-alive HTTP/1.1 connection, written by hand: the benchmark's client should cost
    the machine (whose cores the server shares) as little as it can, so the figure is the
    server's. It speaks just what this benchmark needs: a request with a body, and an answer
    with a Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, host: str, port: int) -> _Conn:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, f"{host}:{port}")

    async def post(self, target: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(
            f"POST {target} HTTP/1.1\r\nhost: {self.host}\r\n{head}"
            f"content-length: {len(body)}\r\n\r\n".encode("latin-1")
            + body
        )
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"intake answered {status} without a Content-Length")
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def _http(port: int, seeded: dict[str, Any], n: int) -> tuple[float, list[float]]:
    target = "/api/terminal/v1/orders"
    idle: asyncio.Queue[_Conn] = asyncio.Queue()
    for _ in range(CONCURRENCY):
        idle.put_nowait(await _Conn.open("127.0.0.1", port))

    async def one() -> None:
        body = _order_body(seeded["barcodes"])
        headers = signing.sign(
            key_id=seeded["key_id"],
            secret=seeded["secret"],
            method="POST",
            target=target,
            body=body,
        )
        headers["content-type"] = "application/json"
        conn = await idle.get()
        try:
            status, answer = await conn.post(target, headers, body)
        finally:
            idle.put_nowait(conn)
        if status != 201:
            raise RuntimeError(f"intake answered {status}: {answer[:300]!r}")

    try:
        await _drive(min(200, n), one)  # warm up
        return await _drive(n, one)
    finally:
        while not idle.empty():
            idle.get_nowait().close()


RAW_KEY_AND_NONCE = """WITH k AS (SELECT k.secret_encrypted, k.expires_at, k.revoked_at, t.id,
 t.code, t.store_id, t.status, t.app_version, t.last_ip, s.code AS store_code, s.timezone,
 s.allow_negative_stock FROM terminal_keys k JOIN terminals t ON t.id = k.terminal_id
 JOIN stores s ON s.id = t.store_id WHERE k.key_id = $1),
 n AS (INSERT INTO terminal_nonces (terminal_id, nonce, seen_at) SELECT k.id, $2, $3 FROM k
 ON CONFLICT (terminal_id, nonce) DO NOTHING RETURNING nonce)
 SELECT k.*, EXISTS (SELECT 1 FROM n) AS fresh FROM k"""
RAW_PRICE = """SELECT p.id, p.name, p.spec, p.price_fen, p.member_price_fen, b.code,
 sp.store_price_fen, sp.is_listed FROM products p
 LEFT JOIN product_barcodes b ON b.product_id = p.id
 LEFT JOIN store_products sp ON sp.product_id = p.id AND sp.store_id = $1
 WHERE b.code = ANY($2::varchar[]) OR p.id = ANY($3::bigint[])"""
RAW_HEADER_AND_LINES = """WITH h AS (INSERT INTO orders (order_no, store_id, terminal_id,
 client_order_id, request_hash, source, status, purchased_at, created_at, updated_at, expires_at,
 member_id, member_no, customer_name, customer_phone, phone_last4, item_count, subtotal_fen,
 discount_fen, total_fen, terminal_total_fen, paid_fen, refunded_fen, stock_booked,
 price_mismatch, stock_short, open_issues) VALUES ($1, $2, $3, $4, $5, 'terminal',
 'awaiting_payment', $6, $7, $7, $8, NULL, NULL, NULL, NULL, NULL, $9, $10, 0, $10, NULL, 0, 0,
 true, false, false, 0) ON CONFLICT DO NOTHING RETURNING id),
 ln AS (INSERT INTO order_lines (order_id, line_no, product_id, barcode, name, spec,
 list_price_fen, unit_price_fen, quantity, discount_fen, amount_fen, price_source,
 terminal_unit_price_fen, refunded_qty, refunded_fen, cancelled_qty, cancelled_fen)
 SELECT h.id, l.no, l.pid, l.code, l.name, l.spec, l.price, l.price, 1, 0, l.price, 'retail',
 NULL, 0, 0, 0, 0 FROM h, unnest($11::int[], $12::bigint[], $13::varchar[], $14::varchar[],
 $15::varchar[], $16::int[]) AS l(no, pid, code, name, spec, price))
 SELECT id FROM h"""
RAW_EVENTS_AND_AUDIT = """WITH ev AS (INSERT INTO order_events (order_id, store_id, occurred_at,
 kind, from_status, to_status, actor_type, actor_id, actor_name, reason, note, data) VALUES
 ($1, $2, $3, 'transition', NULL, 'created', 'terminal', $4, $5, 'received', NULL, $6),
 ($1, $2, $3, 'transition', 'created', 'awaiting_payment', 'terminal', $4, $5,
  'priced_and_booked', NULL, $7))
 INSERT INTO audit_logs (occurred_at, actor_type, actor_id, actor_name, action, entity_type,
 entity_id, store_id, changes, note, ip, request_id) VALUES ($3, 'terminal', $4, $5,
 'order.create', 'order', $8, $2, $9, NULL, '127.0.0.1', $10)"""


def _raw_sell_sql() -> tuple[str, list[str]]:
    """The stock statement selfmart runs on PostgreSQL (balances and movements of every line in
    one statement), with $n placeholders, and the parameter names in their order."""
    names: list[str] = []

    def placeholder(m: re.Match[str]) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    return re.sub(r":(\w+)", placeholder, sell_pg_sql(refuse=False)), names


async def _raw(dsn: str, seeded: dict[str, Any], n: int) -> tuple[float, list[float]]:
    """The same reads and writes as intake, row for row, with asyncpg and no framework."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=CONCURRENCY,
        max_size=CONCURRENCY,
        init=lambda conn: conn.set_type_codec(
            "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        ),
    )
    assert pool is not None
    store_id, terminal_id = seeded["store_id"], seeded["terminal_id"]
    tid = str(terminal_id)
    sell, sell_names = _raw_sell_sql()

    async def one() -> None:
        now = datetime.now(UTC)
        client_order_id = uuid.uuid4().hex
        async with pool.acquire() as conn, conn.transaction():
            key = await conn.fetchrow(
                RAW_KEY_AND_NONCE, seeded["key_id"], secrets.token_urlsafe(24), now
            )
            if not key["fresh"]:
                raise RuntimeError("the baseline's nonce was taken")
            name = key["code"]
            rows = await conn.fetch(RAW_PRICE, store_id, seeded["barcodes"], [])
            by_code = {r["code"]: r for r in rows}
            rows = [by_code[b] for b in seeded["barcodes"]]
            total = sum(r["price_fen"] for r in rows)
            order_no = f"{now:%y%m%d}{secrets.randbelow(10**10):010d}"
            order_id = await conn.fetchval(
                RAW_HEADER_AND_LINES,
                order_no,
                store_id,
                terminal_id,
                client_order_id,
                secrets.token_hex(32),
                now,  # purchased_at
                now,
                now + timedelta(minutes=15),
                len(rows),
                total,
                list(range(1, len(rows) + 1)),
                [r["id"] for r in rows],
                [r["code"] for r in rows],
                [r["name"] for r in rows],
                [r["spec"] for r in rows],
                [r["price_fen"] for r in rows],
            )
            values = {
                "products": sorted(r["id"] for r in rows),
                "quantities": [1] * len(rows),
                "store": store_id,
                "now": now,
                "doc_type": "order",
                "doc_id": str(order_id),
                "actor_type": "terminal",
                "actor_id": tid,
                "actor_name": name,
            }
            sold = await conn.fetch(sell, *(values[k] for k in sell_names))
            if len(sold) != len(rows):
                raise RuntimeError("the baseline booked fewer lines than the order has")
            after = {
                "order_no": order_no,
                "client_order_id": client_order_id,
                "status": "awaiting_payment",
                "total_fen": total,
                "source": "terminal",
            }
            changes = {k: {"before": None, "after": after[k]} for k in sorted(after)}
            await conn.execute(
                RAW_EVENTS_AND_AUDIT,
                order_id,
                store_id,
                now,
                tid,
                name,
                {"client_order_id": client_order_id, "order_no": order_no},
                {"total_fen": total},
                str(order_id),
                changes,
                uuid.uuid4().hex,
            )

    try:
        await _drive(min(200, n), one)
        return await _drive(n, one)
    finally:
        await pool.close()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux), to show the server's cost per order."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def _wait_up(base: str, proc: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(100):
            if proc.returncode is not None:
                raise RuntimeError("the server exited; see its output above")
            try:
                if (await client.get("/api/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the server did not come up")


async def main() -> None:
    base_url = os.environ.get("SELFMART_BENCH_DATABASE_URL", PG_DEFAULT)
    n = int(os.environ.get("SELFMART_BENCH_ORDERS", "2000"))
    name = f"selfmart_bench_{os.getpid()}"
    try:
        await admin_execute(base_url, f'CREATE DATABASE "{name}"')
    except Exception as exc:  # no server: say so and skip, as make bench does
        print(f"intake: skipped, PostgreSQL not reachable at {base_url} ({type(exc).__name__})")
        return
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    port = _free_port()
    proc: asyncio.subprocess.Process | None = None
    server_cpu_ms = http_client_ms = raw_client_ms = 0.0
    try:
        seeded = await _seed(url)
        env = {
            **os.environ,
            "SELFMART_DATABASE_URL": url,
            "SELFMART_SECRET_KEY": SECRET_KEY,
            "SELFMART_LOG_LEVEL": "WARNING",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "uvicorn",
            "selfmart.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
            "--no-access-log",
            env=env,
            cwd=ROOT,
        )
        base = f"http://127.0.0.1:{port}"
        await _wait_up(base, proc)
        done = n + min(200, n)  # the warm-up is counted in the CPU figures too
        cpu0, own0 = _cpu_seconds(proc.pid), time.process_time()
        http_rate, http_lat = await _http(port, seeded, n)
        server_cpu_ms = (_cpu_seconds(proc.pid) - cpu0) * 1000 / done
        http_client_ms = (time.process_time() - own0) * 1000 / done
        own0 = time.process_time()
        raw_rate, raw_lat = await _raw(dsn, seeded, n)
        raw_client_ms = (time.process_time() - own0) * 1000 / done
    finally:
        if proc is not None and proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)
        await admin_execute(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(
        f"intake via HTTP (signed, 1 uvicorn worker): {http_rate:8.0f} orders/s  "
        f"p50 {statistics.median(http_lat):6.1f} ms  p99 {_pct(http_lat, 0.99):6.1f} ms  "
        f"(CPU/order: server {server_cpu_ms:.1f} ms, HTTP client {http_client_ms:.1f} ms)"
    )
    print(
        f"raw asyncpg, same reads and writes:         {raw_rate:8.0f} orders/s  "
        f"p50 {statistics.median(raw_lat):6.1f} ms  p99 {_pct(raw_lat, 0.99):6.1f} ms  "
        f"(CPU/order: client {raw_client_ms:.1f} ms)"
    )
    print(
        f"intake: {http_rate:.0f} orders/s ({raw_rate:.0f} raw, ratio {http_rate / raw_rate:.2f}; "
        f"goal ≥ 0.50) — {n} orders of {LINES} lines, {CONCURRENCY} concurrent"
    )


if __name__ == "__main__":
    asyncio.run(main())

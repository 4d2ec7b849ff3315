"""Payment callbacks: WeChat Pay payment notifications, verified and applied over real HTTP by
selfmart (one uvicorn worker) on PostgreSQL, beside baselines measured in the same run:

- verify-only over HTTP (THE ratio the issue asks for, >= 0.5): the same HTTP stack (uvicorn,
  one worker, the same client, the same 8 keep-alive connections) serving an app, defined
  here (`verify_app`), whose notify route merely verifies and decrypts the callback (the
  platform account's `parse_notification`: RSA signature, AEAD_AES_256_GCM resource) and
  answers as WeChat expects (204). The two servers take the callbacks in alternating rounds,
  so a busy moment on the shared machine weighs on both alike;
- verify + decrypt alone, in this process (no HTTP): the cost of the cryptography itself;
- the same verify plus the same rows written with raw asyncpg (8 connections, one transaction
  per callback: the payment and order looked up, the order locked, payment and order updated,
  two order events, the audit entry and the callback record inserted) — how far we are from
  the database's own cost.
Prints callbacks/s of each and the ratios, and for each HTTP server the CPU its process spent
per callback (for selfmart also its PostgreSQL backends', when the server runs on this
machine): with one uvicorn worker each, a quiet 2-core machine is bound by the server
process's CPU, the database working on the other core.

The selfmart server runs as deployed when Redis is reachable (SELFMART_BENCH_REDIS_URL, default
the local one): background jobs in their own worker, not in the API process, and rate limits
counted in Redis. Embedded (no Redis, as `make run`), the API process also runs the jobs, and
the pending-payment query job would spend the server's CPU asking the platform about the
thousands of attempts this benchmark leaves pending while it waits its turn.

Each callback pays one order whose QR attempt is pending: the server records the callback,
verifies it, matches merchant, app id, number and amount, locks the order, marks the payment
and the order paid (timeline and audit), all committed before it answers 204. In selfmart
that is the notify fast lane (payments.fastlane: a pure-ASGI dispatch inside the app's
middleware, before FastAPI's routing) with group commit: callbacks that arrive while a batch
is being written are written together, in one statement that is its own transaction
(payments.callbacks_hot.apply_many). The callbacks are made with the WeChat Pay protocol's
own functions and keys generated like the sandbox's. Both servers are driven by the same
32 concurrent callers over keep-alive connections (the intake bench's hand-written client).
The database is ANALYZEd after seeding, as one in service has its statistics.

Why 32 callers: every applied answer waits for a commit (fsync), so n callers get at most n
answers per commit time, whatever the server costs; the line printed says the commit time
measured in the same run. With the intake bench's 8, on this machine's disk (3-10 ms a
commit), the figure is mostly the disk's latency, not what a callback costs the server; a
platform delivers its notifications over many connections at once, and with 32 in flight the
figure is what the server can take (commits shared by the group commit). Both servers get
the same callers. SELFMART_BENCH_CALLERS=8 gives the 8-caller figure.

    SELFMART_BENCH_DATABASE_URL (default: the test server) names the PostgreSQL server; the
    benchmark creates and drops its own database there. SELFMART_BENCH_CALLBACKS sets the count,
    SELFMART_BENCH_CALLERS the callers. SELFMART_CALLBACK_PROBE=<file> has the selfmart server
    time each stage of its fast lane (payments.probe) and prints the figures after the run.
    SELFMART_BENCH_PROFILE=<dir> runs both servers under cProfile once they have started
    (bench/profiled_server.py: <dir>/create_app-<pid>.prof and verify_app-<pid>.prof, main
    thread CPU time); the rates of such a run are the profiler's, not the servers'.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi import Path as PathParam
from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.bench_intake import (  # noqa: E402
    CONCURRENCY,
    PG_DEFAULT,
    SECRET_KEY,
    _Conn,
    _cpu_seconds,
    _drive,
    _free_port,
    _pct,
)
from selfmart.db import (  # noqa: E402
    admin_execute,  # noqa: E402
    make_engine,
    make_sessionmaker,
)
from selfmart.payments.wechatpay import protocol as wx  # noqa: E402


class _CallbackConn(_Conn):
    """The intake bench's connection, for answers that may be `204 No Content` (WeChat Pay's
    "received" answer has no body and no Content-Length)."""

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
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length) if length else b""


async def _seed(url: str, keys_dir: Path, n: int) -> dict[str, Any]:
    """Migrate; a store, the WeChat account (sandbox-style keys), n orders each with a pending
    QR attempt (`numbers`), and as many again for the raw baseline (`raw_numbers`)."""
    os.environ["SELFMART_SECRET_KEY"] = SECRET_KEY
    from selfmart.config import get_settings

    get_settings.cache_clear()
    from selfmart.migrate import upgrade_connection
    from selfmart.models import Order, Payment, PaymentAccount, Store
    from selfmart.payments import accounts
    from selfmart.sandbox.wechatpay.keys import load

    keys = load(keys_dir)
    engine = make_engine(url)
    async with engine.connect() as conn:
        await conn.run_sync(upgrade_connection)
        await conn.commit()
    now = datetime.now(UTC)
    async with make_sessionmaker(engine)() as s:
        store = Store(code="BENCHPAY", name="回调压测店", city="上海")
        s.add(store)
        await s.flush()
        account = PaymentAccount(
            store_id=None,
            channel="wechat",
            base_url="http://127.0.0.1:9/sandbox/wechatpay",
            merchant_id=keys.mchid,
            app_id=keys.appid,
            private_key_id=keys.merchant_serial,
            private_key_encrypted="",
            platform_public_keys={keys.public_key.key_id: keys.public_key.public_pem},
            key_version="",
        )
        s.add(account)
        await s.flush()
        accounts.seal_secrets(account, wx.private_key_pem(keys.merchant_key), keys.api_v3_key)
        numbers: list[str] = []
        for i in range(2 * n):
            order_no = f"{now:%y%m%d}{i:010d}"
            order = Order(
                order_no=order_no,
                store_id=store.id,
                source="console",
                status="awaiting_payment",
                purchased_at=now,
                created_at=now,
                updated_at=now,
                expires_at=now + timedelta(hours=1),
                item_count=1,
                subtotal_fen=700,
                total_fen=700,
            )
            s.add(order)
            await s.flush()
            s.add(
                Payment(
                    order_id=order.id,
                    store_id=store.id,
                    channel="wechat",
                    status="pending",
                    amount_fen=700,
                    created_at=now,
                    updated_at=now,
                    actor_type="terminal",
                    actor_name="bench",
                    account_id=account.id,
                    mode="qr",
                    out_trade_no=f"{order_no}P01",
                    attempt_id=f"bench-{i}",
                    expires_at=now + timedelta(minutes=10),
                    data={},
                )
            )
            numbers.append(f"{order_no}P01")
        await s.commit()
        seeded = {
            "account_id": account.id,
            "store_id": store.id,
            "numbers": numbers[:n],
            "raw_numbers": numbers[n:],
            "keys": keys,
        }
    # Statistics, as a database in service has them (autovacuum would take them within a
    # minute or so): without them the planner takes the thousands of pending payments for
    # one, and finds a callback's payment by its status rather than by its number.
    async with engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
        await conn.commit()
    await engine.dispose()
    return seeded


def _callback(keys: Any, out_trade_no: str) -> tuple[bytes, dict[str, str]]:
    """A TRANSACTION.SUCCESS notification as the platform sends it."""
    now = datetime.now(UTC)
    resource = {
        "appid": keys.appid,
        "mchid": keys.mchid,
        "out_trade_no": out_trade_no,
        "transaction_id": "42000" + secrets.token_hex(11)[:23],
        "trade_type": "NATIVE",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "success_time": wx.rfc3339(now),
        "payer": {"openid": "o" + secrets.token_hex(13)},
        "amount": {"total": 700, "payer_total": 700, "currency": "CNY", "payer_currency": "CNY"},
    }
    nonce = secrets.token_hex(6)
    body = json.dumps(
        {
            "id": secrets.token_hex(16),
            "create_time": wx.rfc3339(now),
            "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS",
            "summary": "支付成功",
            "resource": {
                "original_type": "transaction",
                "algorithm": wx.AEAD,
                "ciphertext": wx.aead_encrypt(
                    keys.api_v3_key, nonce, "transaction", json.dumps(resource).encode()
                ),
                "associated_data": "transaction",
                "nonce": nonce,
            },
        },
        ensure_ascii=False,
    ).encode()
    headers = wx.response_headers(
        keys.public_key.key,
        keys.public_key.key_id,
        body,
        timestamp=str(int(now.timestamp())),
        nonce=wx.nonce_str(),
    )
    headers["content-type"] = "application/json"
    return body, headers


def _account(seeded: dict[str, Any]) -> Any:
    from selfmart.payments.platform import ChannelConfig
    from selfmart.payments.wechatpay.account import WechatPayAccount

    keys = seeded["keys"]
    return WechatPayAccount(
        ChannelConfig(
            channel="wechat",
            account_id=seeded["account_id"],
            base_url="http://127.0.0.1:9",
            merchant_id=keys.mchid,
            app_id=keys.appid,
            private_key_pem=wx.private_key_pem(keys.merchant_key),
            private_key_id=keys.merchant_serial,
            platform_public_keys={keys.public_key.key_id: keys.public_key.public_pem},
            api_v3_key=keys.api_v3_key,
        )
    )


def verify_app() -> Any:
    """The verify-only baseline's app (uvicorn `--factory`): a notify route that verifies and
    decrypts the callback and answers as WeChat expects, and nothing else: no database, no
    record. The keys and account id come from the environment the benchmark sets. (FastAPI
    reads the route's annotations from this module's globals: hence the imports at the top.)"""
    from selfmart.payments.platform import ChannelConfig
    from selfmart.payments.wechatpay.account import WechatPayAccount
    from selfmart.sandbox.wechatpay.keys import load

    keys = load(Path(os.environ["SELFMART_BENCH_KEYS_DIR"]))
    account = WechatPayAccount(
        ChannelConfig(
            channel="wechat",
            account_id=int(os.environ["SELFMART_BENCH_ACCOUNT_ID"]),
            base_url="http://127.0.0.1:9",
            merchant_id=keys.mchid,
            app_id=keys.appid,
            private_key_pem=wx.private_key_pem(keys.merchant_key),
            private_key_id=keys.merchant_serial,
            platform_public_keys={keys.public_key.key_id: keys.public_key.public_pem},
            api_v3_key=keys.api_v3_key,
        )
    )
    app = FastAPI()

    @app.get("/api/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/payments/notify/{channel}/{account_id}")
    async def notify(
        channel: Annotated[str, PathParam(max_length=16, pattern=r"^[a-z]+$")],
        account_id: Annotated[int, PathParam(ge=1, le=2_147_483_647)],
        request: Request,
    ) -> Response:
        body = await request.body()
        note = account.parse_notification(request.headers, body)
        answer = account.answer_notification(note.status == "succeeded")
        return Response(answer.body, status_code=answer.status_code, media_type=answer.content_type)

    return app


def _verify_only(seeded: dict[str, Any], calls: list[tuple[bytes, dict[str, str]]]) -> float:
    """Callbacks/s of `parse_notification` alone (verify + decrypt), in this process."""
    account = _account(seeded)
    started = time.perf_counter()
    for body, headers in calls:
        note = account.parse_notification(headers, body)
        assert note.status == "succeeded"
    return len(calls) / (time.perf_counter() - started)


async def _raw(
    url: str, seeded: dict[str, Any], calls: list[tuple[bytes, dict[str, str]]]
) -> float:
    """Callbacks/s of the same verify + decrypt and the same rows written with raw asyncpg."""
    import asyncpg  # type: ignore[import-untyped]

    account = _account(seeded)
    account_id, store_id = seeded["account_id"], seeded["store_id"]
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conns = [await asyncpg.connect(dsn) for _ in range(CONCURRENCY)]
    pending = list(calls)

    async def worker(conn: Any) -> None:
        while pending:
            body, headers = pending.pop()
            note = account.parse_notification(headers, body)
            now = datetime.now(UTC)
            async with conn.transaction():
                pay = await conn.fetchrow(
                    "SELECT id, order_id, amount_fen FROM payments"
                    " WHERE account_id = $1 AND out_trade_no = $2",
                    account_id, note.out_trade_no,
                )  # fmt: skip
                order = await conn.fetchrow(
                    "SELECT id, order_no, status, total_fen, paid_fen FROM orders"
                    " WHERE id = $1 FOR UPDATE",
                    pay["order_id"],
                )  # fmt: skip
                assert note.amount_fen == pay["amount_fen"]
                await conn.execute(
                    "UPDATE payments SET status = 'succeeded', channel_txn_id = $2,"
                    " succeeded_at = $3, updated_at = $3 WHERE id = $1 AND status = 'pending'",
                    pay["id"], note.transaction_id, now,
                )  # fmt: skip
                await conn.execute(
                    "UPDATE orders SET paid_fen = paid_fen + $2, payment_method = 'wechat',"
                    " status = 'paid', paid_at = $3, updated_at = $3 WHERE id = $1",
                    order["id"], note.amount_fen, now,
                )  # fmt: skip
                event = json.dumps({"payment_id": pay["id"], "amount_fen": note.amount_fen})
                change = json.dumps(
                    {"before": {"status": order["status"]}, "after": {"status": "paid"}}
                )
                await conn.execute(
                    "INSERT INTO order_events (order_id, store_id, occurred_at, kind,"
                    " from_status, to_status, actor_type, actor_name, reason, data) VALUES"
                    " ($1, $2, $3, 'payment', NULL, NULL, 'payment_callback', 'wechat callback',"
                    " 'payment_callback', $4::jsonb),"
                    " ($1, $2, $3, 'status', 'awaiting_payment', 'paid', 'payment_callback',"
                    " 'wechat callback', 'payment_callback', $4::jsonb)",
                    order["id"], store_id, now, event,
                )  # fmt: skip
                await conn.execute(
                    "INSERT INTO audit_logs (occurred_at, actor_type, actor_name, action,"
                    " entity_type, entity_id, entity_label, store_id, changes) VALUES"
                    " ($1, 'payment_callback', 'wechat callback', 'order.paid', 'order', $2,"
                    " $3, $4, $5::jsonb)",
                    now, str(order["id"]), order["order_no"], store_id, change,
                )  # fmt: skip
                await conn.execute(
                    "INSERT INTO payment_callbacks (channel, account_id, received_at, kind,"
                    " verified, outcome, notification_id, out_trade_no, transaction_id, status,"
                    " amount_fen, order_id, payment_id, headers, body, decoded) VALUES"
                    " ('wechat', $1, $2, 'payment', true, 'applied', $3, $4, $5, $6, $7, $8, $9,"
                    " $10::jsonb, $11, $12::jsonb)",
                    account_id, now, note.notification_id, note.out_trade_no,
                    note.transaction_id, note.status, note.amount_fen, order["id"], pay["id"],
                    json.dumps(dict(headers)), body.decode(), json.dumps(dict(note.raw)),
                )  # fmt: skip

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - started
    for conn in conns:
        await conn.close()
    return len(calls) / elapsed


async def _commit_ms(url: str, n: int = 200) -> float:
    """Milliseconds one commit of a one-row insert takes on this server now (one connection):
    the floor of a durable answer's latency."""
    import asyncpg

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE bench_commit (x int)")
        started = time.perf_counter()
        for i in range(n):
            await conn.execute("INSERT INTO bench_commit VALUES ($1)", i)
        return (time.perf_counter() - started) / n * 1000
    finally:
        await conn.close()


async def _backends_cpu(observer: Any, database: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving `database` (but `observer`'s own),
    read from /proc: 0 for all when the server is not on this machine."""
    pids = await observer.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        database,
    )
    return {int(r["pid"]): _cpu_seconds(int(r["pid"])) for r in pids}


def _cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU the backends spent between two readings (a backend started in between: all of it)."""
    return sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in after.items())


async def _serve(
    app: str, port: int, env: dict[str, str], started: list[asyncio.subprocess.Process]
) -> asyncio.subprocess.Process:
    # SELFMART_BENCH_PROFILE=<dir>: each server under cProfile (bench/profiled_server.py)
    runner = ["-m", "uvicorn"]
    if os.environ.get("SELFMART_BENCH_PROFILE"):
        runner = ["-m", "bench.profiled_server", app.rsplit(":", 1)[-1]]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *runner, app, "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--log-level", "warning", "--no-access-log",
        # the connections idle while the other server takes its round
        "--timeout-keep-alive", "600", env=env,
    )  # fmt: skip
    started.append(proc)  # stopped by the caller, even if it never comes up
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(600):  # selfmart's app takes a while to start on a busy machine
            if proc.returncode is not None:
                raise RuntimeError(f"the server {app} exited; see its output above")
            try:
                if (await client.get("/api/health")).status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the server {app} did not come up")


class _Server:
    """One server under test: its connections, its answers, its time and CPU, added up over
    the rounds it is driven."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int, target: str) -> None:
        self.proc, self.port, self.target = proc, port, target
        self.idle: asyncio.Queue[_Conn] = asyncio.Queue()
        self.statuses: dict[int, int] = {}
        self.latencies: list[float] = []
        self.seconds = 0.0
        self.cpu = 0.0
        #: CPU of the PostgreSQL backends while this server was driven (selfmart's only)
        self.db_cpu = 0.0
        self.count = 0

    async def connect(self) -> None:
        for _ in range(CALLERS):
            self.idle.put_nowait(await _CallbackConn.open("127.0.0.1", self.port))

    async def run(self, calls: list[tuple[bytes, dict[str, str]]]) -> None:
        pending = list(calls)

        async def one() -> None:
            body, headers = pending.pop()
            conn = await self.idle.get()
            try:
                status, _ = await conn.post(self.target, headers, body)
            finally:
                self.idle.put_nowait(conn)
            self.statuses[status] = self.statuses.get(status, 0) + 1

        cpu0 = _cpu_seconds(self.proc.pid)
        rate, latencies = await _drive(len(calls), one, CALLERS)
        self.cpu += _cpu_seconds(self.proc.pid) - cpu0
        self.seconds += len(calls) / rate
        self.count += len(calls)
        self.latencies += latencies

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def close(self) -> None:
        while not self.idle.empty():
            self.idle.get_nowait().close()

    def describe(self) -> str:
        db = f", PostgreSQL CPU {self.db_cpu / self.count * 1000:.2f} ms" if self.db_cpu else ""
        return (
            f"p50 {_pct(self.latencies, 0.5):.1f} ms, p99 {_pct(self.latencies, 0.99):.1f} ms, "
            f"server CPU {self.cpu / self.count * 1000:.2f} ms{db} each"
        )


#: Redis for the server as deployed (SELFMART_BENCH_REDIS_URL; empty: embedded, as `make run`).
REDIS_DEFAULT = "redis://127.0.0.1:6379/0"


async def _redis_up(url: str) -> bool:
    import redis.asyncio as redis

    client = redis.from_url(url)
    try:
        return bool(await client.ping())
    except Exception:  # no Redis: the embedded topology
        return False
    finally:
        await client.connection_pool.disconnect()


#: Concurrent callers (keep-alive connections) each server is driven with.
CALLERS = int(os.environ.get("SELFMART_BENCH_CALLERS", "32"))

#: Rounds the two HTTP servers alternate over (each takes 1/ROUNDS of the callbacks a round).
ROUNDS = 4


async def main() -> None:
    base_url = os.environ.get("SELFMART_BENCH_DATABASE_URL", PG_DEFAULT)
    n = int(os.environ.get("SELFMART_BENCH_CALLBACKS", "2000"))
    name = f"selfmart_bench_cb_{os.getpid()}"
    try:
        await admin_execute(base_url, f'CREATE DATABASE "{name}"')
    except Exception as exc:  # no server: say so and skip, as make bench does
        print(f"callbacks: skipped, PostgreSQL not reachable at {base_url} ({type(exc).__name__})")
        return
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    procs: list[asyncio.subprocess.Process] = []
    servers: list[_Server] = []
    keys_dir = Path(tempfile.mkdtemp(prefix="selfmart-bench-keys-"))
    try:
        seeded = await _seed(url, keys_dir, n)
        calls = [_callback(seeded["keys"], no) for no in seeded["numbers"]]
        verify_rate = _verify_only(seeded, calls)
        raw_calls = [_callback(seeded["keys"], no) for no in seeded["raw_numbers"]]
        raw_rate = await _raw(url, seeded, raw_calls)
        commit_ms = await _commit_ms(url)
        path = os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")])
        env = {
            **os.environ,
            "PYTHONPATH": path,
            "SELFMART_DATABASE_URL": url,
            "SELFMART_SECRET_KEY": SECRET_KEY,
            "SELFMART_LOG_LEVEL": "WARNING",
            "SELFMART_BENCH_KEYS_DIR": str(keys_dir),
            "SELFMART_BENCH_ACCOUNT_ID": str(seeded["account_id"]),
        }
        topology = "embedded jobs and rate limits"
        redis_url = os.environ.get("SELFMART_BENCH_REDIS_URL", REDIS_DEFAULT)
        if redis_url and await _redis_up(redis_url):
            # As selfmart is deployed: jobs run in their own worker, not in the API process,
            # and rate limits count in Redis (keys and queue of this run's own).
            topology = "deployed: jobs in a worker, rate limits in Redis"
            env.update(
                SELFMART_REDIS_URL=redis_url,
                SELFMART_RATE_LIMIT_KEY_PREFIX=f"{name}:ratelimit",
                SELFMART_JOBS_QUEUE=f"{name}:jobs",
            )
        target = f"/api/payments/notify/wechat/{seeded['account_id']}"
        for app in ("selfmart.app:create_app", "bench.bench_callbacks:verify_app"):
            port = _free_port()
            proc = await _serve(app, port, env, procs)
            servers.append(_Server(proc, port, target))
            await servers[-1].connect()
        applied, verifier = servers
        # The verify-only server takes the same callbacks (it writes nothing): both servers
        # see the same bodies, in the same rounds.
        size = -(-n // ROUNDS)
        import asyncpg

        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        observer = await asyncpg.connect(dsn)
        try:
            for start in range(0, n, size):
                chunk = calls[start : start + size]
                await verifier.run(chunk)
                # what the database's backends spend on the callbacks (on this machine's cores
                # too, beside the server's: a quiet 2-core machine gives one to each)
                before = await _backends_cpu(observer, name)
                await applied.run(chunk)
                applied.db_cpu += _cpu_spent(before, await _backends_cpu(observer, name))
        finally:
            await observer.close()
        engine = make_engine(url)
        async with engine.connect() as conn:
            paid = await conn.scalar(text("SELECT count(*) FROM orders WHERE status = 'paid'"))
        await engine.dispose()
        for server in servers:
            if set(server.statuses) - {200, 204}:
                raise RuntimeError(f"answers {server.statuses} from {server.target}")
        if paid != 2 * n:
            raise RuntimeError(f"{paid} of {2 * n} orders paid")
        rate = applied.rate
        print(
            f"callbacks ({topology}; {CALLERS} callers): {rate:.0f}/s verified and applied "
            "over HTTP "
            f"({applied.describe()}); "
            f"verify+decrypt only over the same HTTP stack {verifier.rate:.0f}/s "
            f"({verifier.describe()}), ratio {rate / verifier.rate:.3f} (target >= 0.5); "
            f"verify+decrypt alone in-process {verify_rate:.0f}/s, ratio "
            f"{rate / verify_rate:.3f}; verify + the same rows with raw asyncpg "
            f"({CONCURRENCY} connections) {raw_rate:.0f}/s, ratio {rate / raw_rate:.3f}; "
            f"one commit {commit_ms:.2f} ms, so at most {CONCURRENCY / commit_ms * 1000:.0f} "
            "durable answers/s"
        )
    finally:
        for server in servers:
            server.close()
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()
        await admin_execute(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _print_probe()


def _print_probe() -> None:
    """The selfmart server's stage timings (payments.probe), when the run asked for them."""
    path = os.environ.get("SELFMART_CALLBACK_PROBE")
    if not path or not Path(path).exists():
        return
    found = json.loads(Path(path).read_text())
    print(f"fast lane stages over {found['callbacks']} callbacks (ms: mean, p50, p99, max):")
    for stage, f in found["stages"].items():
        print(
            f"  {stage:13} n={f['n']:6} {f['mean_ms']:8.3f} {f['p50_ms']:8.3f} "
            f"{f['p99_ms']:8.3f} {f['max_ms']:8.3f}"
        )


if __name__ == "__main__":
    asyncio.run(main())

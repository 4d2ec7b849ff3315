"""Reconciliation: one WeChat Pay trade bill of N lines (default one million) reconciled against
N of our payments (`runs.reconcile`: read, look every line up, judge it, write the items and
totals) beside merely parsing the same file (`bills.parse`), each in its own process so that
each one's peak memory (VmHWM) is its own. Prints seconds and peak MiB of both and the ratios
(goal: reconcile within 2x parse time; memory that does not grow with the bill).

The database is a temporary SQLite file, then a fresh PostgreSQL database when the server is
reachable (see `main`), migrated and seeded here with N orders and N
succeeded payments of one store and one WeChat Pay account. The bill is written in WeChat's
own format with the protocol's `format_bill`, every line matching one payment.

    SELFMART_BENCH_RECONCILE_LINES sets N.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, cast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, make_url, text  # noqa: E402

from bench.bench_import import PG_DEFAULT, _pg_admin  # noqa: E402
from selfmart.db import make_engine, make_sessionmaker  # noqa: E402
from selfmart.iam.actor import job_actor  # noqa: E402
from selfmart.models import Order, Payment, PaymentAccount  # noqa: E402
from selfmart.payments.platform import PlatformAccount  # noqa: E402
from selfmart.payments.wechatpay import protocol as wx  # noqa: E402
from selfmart.reconciliation import bills, runs  # noqa: E402

DAY = date(2026, 11, 30)
MCHID = "1900000109"
CHUNK = 20_000


def _lines() -> int:
    return int(os.environ.get("SELFMART_BENCH_RECONCILE_LINES", "1000000"))


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _bill(n: int) -> bytes:
    header = wx.TRADE_BILL_HEADER
    rows = []
    total = fees = 0
    for i in range(n):
        amount, fee = 100 + i % 900, (100 + i % 900) * 6 // 1000
        total, fees = total + amount, fees + fee
        doc = dict.fromkeys(header, "")
        doc.update(
            {
                "交易时间": f"2026-11-30 {i % 24:02d}:{i % 60:02d}:{(i // 60) % 60:02d}",
                "商户号": MCHID,
                "微信订单号": f"42{i:026d}",
                "商户订单号": f"B{i:015d}",
                "交易状态": "SUCCESS",
                "订单金额": _yuan(amount),
                "应结订单金额": _yuan(amount),
                "退款金额": "0.00",
                "手续费": _yuan(fee),
                "费率": "0.60%",
            }
        )
        rows.append([doc[h] for h in header])
    totals = dict.fromkeys(wx.TRADE_BILL_TOTALS_HEADER, "0.00")
    totals.update(
        {"总交易单数": str(n), "应结订单总金额": _yuan(total), "订单总金额": _yuan(total),
         "手续费总金额": _yuan(fees)}
    )  # fmt: skip
    return wx.format_bill(header, rows, wx.TRADE_BILL_TOTALS_HEADER, list(totals.values()))


async def _seed(url: str, n: int) -> int:
    """A store, a WeChat Pay account, n orders each paid by one payment of the bill's lines."""
    from tests.builders import make_store
    from tests.payments.builders import make_payment_account

    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            store = await make_store(session)
            account = await make_payment_account(session, None, "wechat")  # merchant MCHID
            await session.commit()
            at = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
            for start in range(0, n, CHUNK):
                ids = range(start, min(start + CHUNK, n))
                orders = [
                    {"id": i + 1, "order_no": f"B{i:015d}", "store_id": store.id,
                     "status": "paid", "purchased_at": at, "created_at": at, "updated_at": at,
                     "total_fen": 100 + i % 900, "paid_fen": 100 + i % 900}
                    for i in ids
                ]  # fmt: skip
                await session.execute(insert(Order), orders)
                payments = [
                    {"id": i + 1, "order_id": i + 1, "store_id": store.id, "channel": "wechat",
                     "status": "succeeded", "amount_fen": 100 + i % 900, "created_at": at,
                     "succeeded_at": at + timedelta(seconds=i % 3600), "actor_type": "terminal",
                     "account_id": account.id, "out_trade_no": f"B{i:015d}",
                     "channel_txn_id": f"42{i:026d}"}
                    for i in ids
                ]  # fmt: skip
                await session.execute(insert(Payment), payments)
                await session.commit()
            if session.get_bind().dialect.name == "postgresql":
                # As autovacuum would after a day's sales: without statistics the planner takes
                # the freshly loaded payments for a handful of rows, and the ours-only anti-join
                # for a nested loop over every item per payment.
                await session.execute(text("ANALYZE"))
                await session.commit()
            return account.id
    finally:
        await engine.dispose()


class _Bill:
    """The account's platform, as far as reconciliation asks it: the day's bill, written to the
    run's file a MiB at a time as WeChat Pay's account writes its download as it arrives
    (`download_bill_to`), so that the reconcile's peak is its own and not the bill's bytes held
    by the bench (at a million lines, 156 MB of the 525 MiB measured before)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def download_bill_to(self, bill_date: date, file: BinaryIO, kind: str = "trade") -> bool:
        with self.path.open("rb") as source:
            while block := source.read(1 << 20):
                file.write(block)
        return True


async def _reconcile(url: str, account_id: int, bill: Path) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            account = await session.get_one(PaymentAccount, account_id)
            run = await runs.reconcile(
                session,
                account,
                DAY,
                actor=job_actor("bench.reconcile"),
                opener=lambda _a: cast(PlatformAccount, _Bill(bill)),
            )
            await session.commit()
            return {"status": run.status, "lines": run.line_count, "diffs": run.difference_count}
    finally:
        await engine.dispose()


def _peak_kib() -> int:
    """This process's own peak resident memory: the kernel's high-water mark of its address
    space (VmHWM). Not `ru_maxrss`, which carries the parent's peak over the fork and exec
    that started it (the parent held the generated bill and the seeding's rows: at a million
    lines most of both figures was the parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: the nearest there is


def _child(what: str, url: str, account_id: int, bill: Path) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = before.ru_utime + before.ru_stime
    started = time.perf_counter()
    if what == "parse":
        parsed = bills.parse("wechat", bill.read_bytes(), merchant_id=MCHID, bill_date=DAY)
        out: dict[str, Any] = {"lines": len(parsed.lines)}
    else:
        out = asyncio.run(_reconcile(url, account_id, bill))
    out["seconds"] = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu_seconds"] = usage.ru_utime + usage.ru_stime - cpu_before
    out["peak_mib"] = _peak_kib() / 1024
    print(json.dumps(out))


def _run_child(what: str, url: str, account_id: int, bill: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, what, url, str(account_id), str(bill)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "SELFMART_LOG_LEVEL": "WARNING"},
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _measure(url: str, n: int, bill: Path) -> None:
    """Migrate and seed the database at `url`, then parse and reconcile the bill there. The
    parse is timed right before and right after the reconcile and averaged, so that both see
    the same shared machine."""
    env = {**os.environ, "SELFMART_DATABASE_URL": url}
    subprocess.run(
        [sys.executable, "-m", "selfmart.cli", "migrate"], env=env, check=True,
        capture_output=True,
    )  # fmt: skip
    os.environ["SELFMART_DATABASE_URL"] = url
    account_id = asyncio.run(_seed(url, n))
    before = _run_child("parse", url, account_id, bill)
    rec = _run_child("reconcile", url, account_id, bill)
    after = _run_child("parse", url, account_id, bill)
    if rec["status"] != "reconciled" or rec["diffs"] != 0:
        raise SystemExit(f"the bench's bill did not reconcile cleanly: {rec}")
    parse = {k: (before[k] + after[k]) / 2 for k in ("seconds", "cpu_seconds")}
    parse["peak_mib"] = max(before["peak_mib"], after["peak_mib"])
    print(
        f"{make_url(url).get_backend_name()}: reconcile {n} lines: {rec['seconds']:.1f} s, "
        f"peak {rec['peak_mib']:.0f} MiB (parse only: {parse['seconds']:.1f} s, peak "
        f"{parse['peak_mib']:.0f} MiB; time x{rec['seconds'] / parse['seconds']:.1f}, memory "
        f"x{rec['peak_mib'] / parse['peak_mib']:.1f}); CPU seconds of this process (all "
        f"threads, not the PostgreSQL server's): reconcile {rec['cpu_seconds']:.1f}, parse "
        f"{parse['cpu_seconds']:.1f}, x{rec['cpu_seconds'] / parse['cpu_seconds']:.1f}"
    )


def main() -> None:
    """SQLite (a temporary file), then a fresh PostgreSQL database (created and dropped on the
    server of SELFMART_BENCH_DATABASE_URL, default the local test server) if it is reachable."""
    n = _lines()
    with tempfile.TemporaryDirectory(prefix="bench-reconcile-") as tmp:
        bill = Path(tmp) / "bill.csv"
        bill.write_bytes(_bill(n))
        _measure(f"sqlite+aiosqlite:///{tmp}/bench.db", n, bill)
        base = os.environ.get("SELFMART_BENCH_DATABASE_URL", PG_DEFAULT)
        name = f"bench_reconcile_{uuid.uuid4().hex[:8]}"
        if not asyncio.run(_pg_admin(base, f'CREATE DATABASE "{name}"')):
            print(f"PostgreSQL not reachable at {base}: skipped")
            return
        try:
            _measure(make_url(base).set(database=name).render_as_string(False), n, bill)
        finally:
            asyncio.run(_pg_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    if len(sys.argv) == 5:
        _child(sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
    else:
        main()

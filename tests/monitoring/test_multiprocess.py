"""Several worker processes: with PROMETHEUS_MULTIPROC_DIR set, each process's requests land in
the shared directory and one scrape (whichever process answers it) reports their sum, with the
database figures once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from .test_metrics import samples, value

WORKER = r"""
import asyncio, sys, httpx
from selfmart.app import create_app
from tests.support import settings_for

async def main(n: int, scrape: bool) -> None:
    app = create_app(settings_for(sys.argv[1]))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        for i in range(n):
            assert (await c.get(f"/api/v1/jobs/{i}")).status_code == 401
        if scrape:
            r = await c.get("/metrics")
            assert r.status_code == 200, r.text
            sys.stdout.write(r.text)
    await app.state.engine.dispose()

asyncio.run(main(int(sys.argv[2]), sys.argv[3] == "scrape"))
"""


def _run(db_url: str, n: int, mode: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", WORKER, db_url, str(n), mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


async def test_two_processes_counts_add_up_in_one_scrape(db_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    await asyncio.gather(
        asyncio.to_thread(_run, db_url, 3, "count", env),
        asyncio.to_thread(_run, db_url, 4, "count", env),
    )
    text = await asyncio.to_thread(_run, db_url, 0, "scrape", env)
    got = samples(text)
    key = {"method": "GET", "route": "/api/v1/jobs/{job_id}", "status": "401"}
    assert value(got, "selfmart_http_requests_total", **key) == 7
    count = "selfmart_http_request_duration_seconds_count"
    assert value(got, count, method="GET", route="/api/v1/jobs/{job_id}") == 7
    assert text.count("# TYPE selfmart_orders_per_minute gauge") == 1

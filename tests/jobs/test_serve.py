"""`selfmart serve` (what `make run` ends with) starts the embedded job runtime with the app and
stops it cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.notify.smtp import free_port

SELFMART = str(Path(sys.executable).with_name("selfmart"))


def test_ctrl_c_stops_serve_and_its_job_runtime_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "SELFMART_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}",
        "SELFMART_STATIC_DIR": str(tmp_path),
    }
    env.pop("SELFMART_REDIS_URL", None)
    subprocess.run([SELFMART, "migrate"], env=env, check=True, capture_output=True)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [SELFMART, "serve", "--port", str(port)], env=env, stdout=out, stderr=out
        )
        try:
            deadline = time.monotonic() + 120  # a loaded CI machine starts slowly
            while True:
                try:
                    r = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1)
                    if r.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            time.sleep(1.5)  # let the in-process schedule fire its first sweep
            proc.send_signal(signal.SIGINT)  # Ctrl-C
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    output = log.read_text()
    assert code == 0, output
    assert "job runtime started (in-memory broker, schedules in-process)" in output
    assert "job runtime stopped" in output
    assert "Traceback" not in output

"""`make run` ends with `selfmart serve --print-logins`: once the server is up, the last thing on
the screen is where to go and how to log in, after the server's own start-up lines."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from selfmart.demo import DEMO_LOGINS
from tests.notify.smtp import free_port

SELFMART = str(Path(sys.executable).with_name("selfmart"))


def test_print_logins_comes_last_once_the_server_runs(tmp_path: Path) -> None:
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
            [SELFMART, "serve", "--port", str(port), "--print-logins"],
            env=env,
            stdout=out,
            stderr=out,
        )
        try:
            deadline = time.monotonic() + 30
            while "Ctrl-C stops the server." not in log.read_text():
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            time.sleep(0.5)  # anything the server logs on starting would be here by now
            shown = log.read_text()
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    lines = [line.strip() for line in shown.splitlines() if line.strip()]
    url = f"http://127.0.0.1:{port}"
    running = next(i for i, line in enumerate(lines) if "Uvicorn running on" in line)
    console = lines.index(f"selfmart console: {url}")
    assert running < console
    assert lines[-1] == "Ctrl-C stops the server."
    for login in DEMO_LOGINS:
        assert any(line.startswith(login.username) and login.password in line for line in lines)

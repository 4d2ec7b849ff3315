"""The WeChat Pay sandbox served over real HTTP on a loopback port (third-party clients use
`requests`), a callback receiver that records what reaches it, and clients bound to both."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from selfmart.app import create_app
from selfmart.payments.platform import ChannelConfig
from selfmart.payments.wechatpay.account import WechatPayAccount
from selfmart.sandbox import wechatpay as sandbox
from tests.support import settings_for

#: callback retry delays are divided by this, so the whole 15-attempt schedule takes ~0.9 s
TIME_SCALE = 100_000.0

_GENERATION = re.compile(r"^/g(\d+)(/.*)?$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A merchant's callback endpoint: answers each path from a script (default 204).

    Its `url` carries a generation (`/g3`) that `fresh` moves on: the sandbox is shared by a
    whole test session, and a callback an earlier test left in flight when the sandbox was
    reset (its retry, or a send cancelled half-way) can reach the receiver after the next test
    began. Such a call is addressed to an old generation and is answered but not recorded, so
    a test only ever sees the callbacks of the payments it made (CI once replayed a stale one).
    """

    base: str
    generation: int = 0
    calls: list[Received] = field(default_factory=list)
    #: path -> statuses to answer in turn; the last one repeats
    script: dict[str, list[int]] = field(default_factory=dict)
    #: path -> seconds to wait before answering, in turn (then at once)
    delays: dict[str, list[float]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{self.base}/g{self.generation}"

    def current(self, raw_path: str) -> tuple[str, bool]:
        """`raw_path` without its generation, and whether it is addressed to this one."""
        match = _GENERATION.match(raw_path)
        if match is None:
            return raw_path, True
        return match.group(2) or "/", int(match.group(1)) == self.generation

    def at(self, path: str) -> list[Received]:
        return [c for c in self.calls if c.path == path]

    def wait_for(self, path: str, count: int = 1, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.at(path)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: {len(self.at(path))} calls, wanted {count}")
            time.sleep(0.01)
        return self.at(path)


@dataclass
class Sandbox:
    url: str
    settings: Any
    receiver: Receiver

    @property
    def base_url(self) -> str:
        return f"{self.url}/sandbox/wechatpay"

    def credentials(self) -> dict[str, Any]:
        return sandbox.credentials(self.settings)

    def control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        # Generous: on a loaded 2-core CI machine a reset once took longer than 10 s.
        return httpx.request(method, f"{self.base_url}/_control{path}", timeout=60, **kwargs)

    def config(self, **overrides: Any) -> ChannelConfig:
        c = self.credentials()
        values: dict[str, Any] = {
            "channel": "wechat",
            "account_id": 1,
            "base_url": c["base_url"],
            "merchant_id": c["merchant_id"],
            "app_id": c["app_id"],
            "private_key_pem": c["merchant_private_key"],
            "private_key_id": c["merchant_key_id"],
            "platform_public_keys": {c["platform_public_key_id"]: c["platform_public_key"]},
            "api_v3_key": c["api_v3_key"],
            "notify_url": f"{self.receiver.url}/notify/pay",
        }
        return ChannelConfig(**{**values, **overrides})

    def account(self, timeout: float = 10.0, **overrides: Any) -> WechatPayAccount:
        return WechatPayAccount(self.config(**overrides), http=httpx.AsyncClient(timeout=timeout))


def _serve_receiver() -> tuple[Receiver, ThreadingHTTPServer]:
    port = free_port()
    receiver = Receiver(base=f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if len(body) < length:  # the sender went away half-way (a cancelled send)
                return
            path, current = receiver.current(self.path)
            if not current:  # an earlier test's callback, arriving late
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            receiver.calls.append(
                Received(time.monotonic(), path, dict(self.headers.items()), body)
            )
            delays = receiver.delays.get(path)
            if delays:
                time.sleep(delays.pop(0))
            statuses = receiver.script.get(path) or [204]
            status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
            payload = (
                b"" if status < 300 else json.dumps({"code": "FAIL", "message": "no"}).encode()
            )
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver, server


def serve(tmp: Path) -> Iterator[Sandbox]:
    receiver, receiver_server = _serve_receiver()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = settings_for(
        f"sqlite+aiosqlite:///{tmp / 'unused.db'}",
        payment_sandbox=True,
        payment_sandbox_dir=tmp / "keys",
        payment_sandbox_time_scale=TIME_SCALE,
        public_base_url=url,
    )
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan="off",
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the sandbox server did not start")
        time.sleep(0.02)
    try:
        yield Sandbox(url=url, settings=settings, receiver=receiver)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        receiver_server.shutdown()


def fresh(sandbox: Sandbox) -> Sandbox:
    """The sandbox emptied (payments, switches, records) and the receiver answering 204."""
    assert sandbox.control("POST", "/reset").status_code == 204
    sandbox.receiver.generation += 1
    sandbox.receiver.calls.clear()
    sandbox.receiver.script.clear()
    sandbox.receiver.delays.clear()
    return sandbox

"""Helpers for the Alipay and UnionPay sandbox tests: an app with the payment sandboxes on a
temporary key directory, the app served over real HTTP on a loopback port (for clients that
use requests / urllib), and a notification receiver that answers as it is told."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

from tests.support import settings_for


def sandbox_app(directory: Path, time_scale: float = 1.0) -> FastAPI:
    from selfmart.app import create_app

    settings = settings_for(
        f"sqlite+aiosqlite:///{directory / 'unused.db'}",
        payment_sandbox=True,
        payment_sandbox_dir=directory,
        payment_sandbox_time_scale=time_scale,
    )
    return create_app(settings)


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """The app on a real loopback port, in a thread (no lifespan: the sandboxes need none)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@dataclass
class Receiver:
    """A merchant's notify endpoint: records each callback and answers from `script` (then
    `default`): "success", "500" (an HTTP 500), or anything else as the body of a 200."""

    default: str = "success"
    script: list[str] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    app: FastAPI = field(default_factory=FastAPI)

    def __post_init__(self) -> None:
        @self.app.post("/{path:path}")
        async def receive(request: Request, path: str) -> Response:
            body = await request.body()
            self.received.append(
                {
                    "path": "/" + path,
                    "body": body,
                    "at": time.monotonic(),
                    "headers": dict(request.headers),
                }
            )
            how = self.script.pop(0) if self.script else self.default
            if how == "500":
                return PlainTextResponse("oops", status_code=500)
            return PlainTextResponse("success" if how == "success" else how)

    def bodies(self, path: str) -> list[bytes]:
        return [r["body"] for r in self.received if r["path"] == path]


async def wait_for(predicate: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)

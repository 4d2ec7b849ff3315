"""A server going away and coming back, as its clients see it, without touching the server.

`Gate` forwards a loopback port to a real server (PostgreSQL, Redis). `shut()` cuts every
connection through it and refuses new ones; `open()` listens again on the same port. The
code under test is pointed at the gate's port and meets real refused connections and real
broken sockets, while the server itself (shared by other tests) keeps running."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit


class Gate:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.local_port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @classmethod
    def before(cls, url: str) -> Gate:
        """A gate in front of the server `url` names (default port: PostgreSQL's)."""
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or 5432)

    def url(self, url: str) -> str:
        """`url` with its host and port replaced by the gate's."""
        parts = urlsplit(url)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@" if auth else ""
        return urlunsplit(parts._replace(netloc=f"{netloc}127.0.0.1:{self.local_port}"))

    async def open(self) -> None:
        self._server = await asyncio.start_server(
            self._pipe, "127.0.0.1", self.local_port, reuse_address=True
        )
        self.local_port = self._server.sockets[0].getsockname()[1]

    async def shut(self) -> None:
        """Refuse new connections and break the open ones (no goodbye: a cut cable)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _pipe(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(self.host, self.port)
        except OSError:
            client_w.transport.abort()
            return
        self._writers.update((client_w, server_w))

        async def pump(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            w.transport.abort()

        await asyncio.gather(pump(client_r, server_w), pump(server_r, client_w))
        self._writers.difference_update((client_w, server_w))

    async def __aenter__(self) -> Gate:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shut()

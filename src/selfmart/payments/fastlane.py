"""The platform callbacks' fast lane (CONVENTIONS.md §13): a pure-ASGI dispatch, innermost of
the app's middleware, that answers the common payment callback without FastAPI's routing
(~180 routes) and dependencies, and applies concurrent callbacks together (group commit).

Everything outside it still runs for a callback as for any request: metrics (under the notify
route's template), the request id and security headers, the control-character guard,
maintenance mode (which lets platform callbacks through) and the body size limit. The lane
itself counts the route's rate limit (`payment_notify`, per address) as the route does.

It takes only `POST /api/payments/notify/{channel}/{account_id}` with no query string and an
account id the route accepts, and only the common case `callbacks_hot.prepare` recognises (a
verified SUCCESS of a pending attempt, for its amount, of an order that waits for exactly
that). Everything else — a forged, stale, unknown or mismatched callback, a refund, a rate
limit refusal, a callback the batch did not apply, a database error — is handed, body
replayed, to the app's own route, which answers it exactly as it answers without the lane
(the route is told the hot path was tried, so it goes straight to the full path).

Group commit (`Batcher`): verified callbacks queue; one task per process applies whatever has
queued while the previous batch was being written, in one statement that is its own
transaction on PostgreSQL (`callbacks_hot.apply_many`), and answers each request only once that
statement has committed. Two copies of one notification never share a batch (the second waits
for the next one, where it is no longer the common case and so takes the full path and is
recorded as a duplicate). If a batch fails, its callbacks are tried one by one, so one bad
callback cannot sink the others; one that fails alone takes the full path. On other backends
(SQLite) a batch is one callback.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from fastapi.routing import iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from selfmart.kit import aftercommit
from selfmart.kit.context import current_ip
from selfmart.kit.ratelimit import COUNTED, PAYMENT_NOTIFY
from selfmart.orders import lifecycle
from selfmart.payments import callbacks_hot
from selfmart.payments.callbacks_hot import Prepared

log = logging.getLogger(__name__)

#: The notify route's path, as its path parameters accept it (channel `^[a-z]+$` of at most
#: 16, account id 1..2**31-1 checked below); anything else goes to the route to be refused.
_PATH = re.compile(r"^/api/payments/notify/([a-z]{1,16})/([1-9][0-9]{0,9})$")
TEMPLATE = "/api/payments/notify/{channel}/{account_id}"
#: scope["state"] key: the lane tried the hot path for this request (the route skips it).
TRIED = "payments.fastlane_tried"
_STATE_BATCHER = "callback_batcher"


class NotifyFastLane:
    """ASGI middleware: the fast lane for platform payment callbacks (see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._route: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = (
            _PATH.match(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if found is None or scope.get("query_string") or int(found[2]) > 2**31 - 1:
            await self.app(scope, receive, send)
            return
        app = scope["app"]
        state = scope.setdefault("state", {})
        if await app.state.rate_limiter.hit(PAYMENT_NOTIFY, current_ip() or "unknown") is not None:
            # over the limit: the route refuses it (the limit is asked again, not counted again)
            await self.app(scope, receive, send)
            return
        state[COUNTED] = (PAYMENT_NOTIFY,)
        messages: list[Message] = []
        chunks: list[bytes] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        answer = await _fast(
            app.state, found[1], int(found[2]), Headers(scope=scope), b"".join(chunks)
        )
        if answer is None:
            state[TRIED] = True
            await self.app(scope, _replay(messages, receive), send)
            return
        scope["route"] = self._notify_route(app)
        response = Response(
            answer.body, status_code=answer.status_code, media_type=answer.content_type
        )
        await response(scope, receive, send)

    def _notify_route(self, app: Any) -> Any:
        """The notify route object (so the metrics count the answer under its template)."""
        if self._route is None:
            for ctx in iter_route_contexts(app.routes):
                if ctx.path == TEMPLATE:
                    self._route = ctx.original_route
                    break
        return self._route


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


async def _fast(
    app_state: Any, channel: str, account_id: int, headers: Headers, body: bytes
) -> Any:
    """The answer to a common-case callback once applied and committed; else None."""
    factory: async_sessionmaker[AsyncSession] = app_state.sessionmaker
    async with factory() as session:
        item = await callbacks_hot.prepare(
            session, channel=channel, account_id=account_id, headers=headers, body=body
        )
    if item is None:
        return None
    batcher = getattr(app_state, _STATE_BATCHER, None)
    if batcher is None:
        batcher = Batcher()
        setattr(app_state, _STATE_BATCHER, batcher)
    if not await batcher.submit(factory, item):
        callbacks_hot.forget(account_id)
        return None
    return item.opened.remote.answer_notification(True)


class Batcher:
    """Group commit of prepared callbacks (see the module)."""

    #: Most callbacks in one statement.
    MAX = 64

    def __init__(self) -> None:
        self._queue: list[tuple[Prepared, asyncio.Future[bool]]] = []
        self._task: asyncio.Task[None] | None = None
        #: Sizes of the batches written (for tests and the benchmark).
        self.sizes: list[int] = []

    async def submit(self, factory: async_sessionmaker[AsyncSession], item: Prepared) -> bool:
        """Whether `item` was applied; returns once the batch that applied it has committed."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(factory))
        return await future

    async def _drain(self, factory: async_sessionmaker[AsyncSession]) -> None:
        one_at_a_time = _dialect(factory) != "postgresql"
        while self._queue:
            batch: list[tuple[Prepared, asyncio.Future[bool]]] = []
            later: list[tuple[Prepared, asyncio.Future[bool]]] = []
            keys: set[tuple[int, str]] = set()
            for entry in self._queue:
                key = (entry[0].account_id, entry[0].out_trade_no)
                full = len(batch) >= (1 if one_at_a_time else self.MAX)
                if key in keys or full:
                    later.append(entry)
                else:
                    keys.add(key)
                    batch.append(entry)
            self._queue = later
            self.sizes.append(len(batch))
            results = await _apply(factory, [item for item, _ in batch])
            for (_, future), applied in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(applied)


def _dialect(factory: async_sessionmaker[AsyncSession]) -> str:
    bind = factory.kw.get("bind")
    return str(bind.dialect.name) if bind is not None else ""


async def _apply(factory: async_sessionmaker[AsyncSession], items: list[Prepared]) -> list[bool]:
    """Apply a batch; if it fails, each of its callbacks alone (one that fails alone is left to
    the full path: nothing of it was written)."""
    try:
        return await _commit(factory, items)
    except Exception:
        if len(items) == 1:
            log.exception("payment callback fast lane: left to the full path")
            return [False]
        log.warning("payment callback batch of %d failed: applying one by one", len(items))
    out: list[bool] = []
    for item in items:
        out += await _apply(factory, [item])
    return out


async def _commit(factory: async_sessionmaker[AsyncSession], items: list[Prepared]) -> list[bool]:
    async with factory() as session:
        try:
            applied = await callbacks_hot.apply_many(session, items)
            if any(applied):
                lifecycle.notify_live(session)
            await session.commit()
        except BaseException:
            aftercommit.discard(session)
            await session.rollback()
            raise
        await aftercommit.run_pending(session)
    return applied

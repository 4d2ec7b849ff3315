"""The platform callbacks' fast lane (CONVENTIONS.md §13): a pure-ASGI dispatch, innermost of
the app's middleware, that answers the common payment callback without FastAPI's routing
(~180 routes) and dependencies, and applies concurrent callbacks together (group commit).

Everything outside it still runs for a callback as for any request: metrics (under the notify
route's template), the request id and security headers, the control-character guard,
maintenance mode (which lets platform callbacks through) and the body size limit. The lane
itself counts the route's rate limit (`payment_notify`, per address), with
`RateLimiter.hit_soon`: in this process at once and in the shared store (Redis) just after,
off the callback's path; a callback over the limit goes to the route, which refuses it.

It takes only `POST /api/payments/notify/{channel}/{account_id}` with no query string and an
account id the route accepts, and only the common case `callbacks_hot.prepare` recognises (a
verified SUCCESS of a pending attempt, for its amount, of an order that waits for exactly
that). Everything else — a forged, stale, unknown or mismatched callback, a refund, a rate
limit refusal, a callback the batch did not apply, a database error — is handed, body
replayed, to the app's own route, which answers it exactly as it answers without the lane
(the route is told the hot path was tried, so it goes straight to the full path).

Group commit (`Batcher`): verified callbacks queue; a task (three at most per process, each on
its own connection) applies whatever has queued while its previous batch was being written,
in one statement that is its own transaction on PostgreSQL (`callbacks_hot.apply_many`; the
orders locked in id order), and answers each request only once that statement has
committed. Two copies of one notification never share a batch (the second waits
for the next one, where it is no longer the common case and so takes the full path and is
recorded as a duplicate). If a batch fails, its callbacks are tried one by one, so one bad
callback cannot sink the others; one that fails alone takes the full path. On other backends
(SQLite) a batch is one callback.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from typing import Any

from fastapi.routing import iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from selfmart.kit import aftercommit, hotsql
from selfmart.kit.context import current_ip
from selfmart.kit.ratelimit import COUNTED, PAYMENT_NOTIFY, REFUSED
from selfmart.orders import lifecycle
from selfmart.payments import callbacks_hot, probe
from selfmart.payments.callbacks_hot import Prepared
from selfmart.payments.probe import Probe

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
        timer = probe.for_path(app.state.settings.callback_probe)
        entered = time.perf_counter() if timer is not None else 0.0
        state = scope.setdefault("state", {})
        wait = await app.state.rate_limiter.hit_soon(PAYMENT_NOTIFY, current_ip() or "unknown")
        if wait is not None:  # over the limit: the route refuses it, as it is
            state[REFUSED] = {PAYMENT_NOTIFY: wait}
            await self.app(scope, receive, send)
            return
        state[COUNTED] = (PAYMENT_NOTIFY,)
        if timer is not None:
            timer.add("rate_limit", time.perf_counter() - entered)
            read_from = time.perf_counter()
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
        if timer is not None:
            timer.add("body", time.perf_counter() - read_from)
        answer = await _fast(
            app.state, found[1], int(found[2]), Headers(scope=scope), b"".join(chunks), timer
        )
        if answer is None:
            state[TRIED] = True
            await self.app(scope, _replay(messages, receive), send)
            return
        scope["route"] = self._notify_route(app)
        if timer is None:
            await _respond(answer, send)
            return
        sending = time.perf_counter()
        await _respond(answer, send)
        timer.add("answer", time.perf_counter() - sending)
        timer.add("lane_total", time.perf_counter() - entered)
        timer.done()

    def _notify_route(self, app: Any) -> Any:
        """The notify route object (so the metrics count the answer under its template)."""
        if self._route is None:
            for ctx in iter_route_contexts(app.routes):
                if ctx.path == TEMPLATE:
                    self._route = ctx.original_route
                    break
        return self._route


#: (status, content type, body) -> the answer's header pairs, as Starlette's `Response` makes
#: them (worked out once per kind of answer: the platform's "received" is always the same).
_ANSWER_HEADERS: dict[tuple[int, str | None, bytes], list[tuple[bytes, bytes]]] = {}


async def _respond(answer: Any, send: Send) -> None:
    """Send a NotificationAnswer: what `Response(body, status, media_type)` sends."""
    key = (answer.status_code, answer.content_type, answer.body)
    raw = _ANSWER_HEADERS.get(key)
    if raw is None:
        if len(_ANSWER_HEADERS) > 64:  # (a platform account's answers are a handful)
            _ANSWER_HEADERS.clear()
        raw = _ANSWER_HEADERS[key] = Response(
            answer.body, status_code=answer.status_code, media_type=answer.content_type
        ).raw_headers
    await send({"type": "http.response.start", "status": answer.status_code, "headers": [*raw]})
    await send({"type": "http.response.body", "body": answer.body})


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


async def _fast(
    app_state: Any,
    channel: str,
    account_id: int,
    headers: Headers,
    body: bytes,
    timer: Probe | None = None,
) -> Any:
    """The answer to a common-case callback once applied and committed; else None."""
    factory: async_sessionmaker[AsyncSession] = app_state.sessionmaker
    batcher = getattr(app_state, _STATE_BATCHER, None)
    if batcher is None or batcher.factory is not factory or batcher.timer is not timer:
        batcher = Batcher(factory, timer)
        setattr(app_state, _STATE_BATCHER, batcher)
    started = time.perf_counter() if timer is not None else 0.0
    item: Prepared | None = None
    if batcher.postgresql:
        # The opened account from this process's cache (the statement checks the account row
        # is still the one it was opened from). One opening at a time: the callbacks that
        # arrive together on a cold process wait for the first to open the account, then use
        # it, rather than each taking a pooled connection (a new one, for most) and loading
        # the keys.
        opened = callbacks_hot.cached(account_id)
        if opened is None:
            async with batcher.opening:
                opened = callbacks_hot.cached(account_id)
                if opened is None:
                    async with factory() as session:
                        item = await callbacks_hot.prepare(
                            session,
                            channel=channel,
                            account_id=account_id,
                            headers=headers,
                            body=body,
                        )
        if opened is not None:
            item = callbacks_hot.verify(opened, channel, account_id, headers, body)
    else:
        async with factory() as session:
            item = await callbacks_hot.prepare(
                session, channel=channel, account_id=account_id, headers=headers, body=body
            )
    if item is None:
        return None
    if timer is not None:
        timer.add("verify", time.perf_counter() - started)
    if not await batcher.submit(item):
        # Not applied: a copy, or the order or account changed. The route's full path decides,
        # and renews the kept account only if its row really changed (callbacks_hot.opened_for).
        return None
    return item.opened.remote.answer_notification(True)


class Batcher:
    """Group commit of prepared callbacks (see the module), for one sessionmaker."""

    #: Most callbacks in one statement.
    MAX = 64
    #: Batches written at once (each on its own connection): a callback that arrives while
    #: one is being written starts the next at once rather than waiting for it (the
    #: database's own group commit lets their commits share a WAL flush). Three rather than
    #: two: with 32 callers the probe (payments.probe) showed callbacks waiting ~5 ms for a
    #: free drain; with three, ~1.7 ms (p50), and 23-27% more applied a second, same run order.
    PARALLEL = 3
    #: Seconds a drain whose queue has emptied keeps its session (its pooled connection) for
    #: the next callback before it stops: opening a session and checking a connection out and
    #: in again costs ~0.23 ms of the server's CPU, which a drain paid every time the queue ran
    #: dry between two callbacks (142 of 237 batches in one bench run). Well below the pool's
    #: idle ping (db.PING_AFTER_IDLE_SECONDS): the connection was in use moments ago.
    LINGER = 0.005

    def __init__(
        self, factory: async_sessionmaker[AsyncSession], timer: Probe | None = None
    ) -> None:
        self.factory = factory
        self.timer = timer
        bind = factory.kw.get("bind")
        self.postgresql = bind is not None and bind.dialect.name == "postgresql"
        #: PostgreSQL behind a pool (not a test's connection in a transaction): each batch's
        #: statement is its own transaction, so one session (one pooled connection) serves
        #: every batch of a drain; and batches may be written at once (otherwise one at a time:
        #: a connection takes one statement at a time).
        self._alone = self.postgresql and isinstance(bind, AsyncEngine)
        self._queue: list[tuple[Prepared, asyncio.Future[bool]]] = []
        #: Held while a callback opens an account this process has not opened (PostgreSQL).
        self.opening = asyncio.Lock()
        #: Drains running (each writes one batch at a time), and their tasks (kept referenced).
        self._active = 0
        #: Drains (counted in `_active`) waiting, session open, for a callback: each a future a
        #: submit sets to wake it, or its LINGER timer to let it stop.
        self._lingering: deque[asyncio.Future[None]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        #: Sizes of the latest batches written (for tests).
        self.sizes: deque[int] = deque(maxlen=256)
        #: With a probe: when each waiting callback was queued, and when it was answered.
        self._queued_at: dict[asyncio.Future[bool], float] = {}
        self._answered_at: dict[asyncio.Future[bool], float] = {}

    async def submit(self, item: Prepared) -> bool:
        """Whether `item` was applied; returns once the batch that applied it has committed."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self.timer is not None:
            self._queued_at[future] = time.perf_counter()
        while self._lingering:  # a drain waits with its session open: it takes this one
            waiting = self._lingering.popleft()
            if not waiting.done():
                waiting.set_result(None)
                break
        else:
            if self._active < (self.PARALLEL if self._alone else 1):
                self._active += 1
                task = asyncio.create_task(self._drain())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        if self.timer is None:
            return await future
        applied = await future
        self.timer.add("wake", time.perf_counter() - self._answered_at.pop(future))
        return applied

    def _take(self, *, stop: bool = True) -> list[tuple[Prepared, asyncio.Future[bool]]] | None:
        """The next batch: what has queued, at most MAX, one copy of each notification; None
        when nothing has, and (`stop`) the drain that asked stops (counted out here, with no
        await between the look and the count, so a callback queued next starts a drain)."""
        if not self._queue:
            if stop:
                self._active -= 1
            return None
        batch: list[tuple[Prepared, asyncio.Future[bool]]] = []
        later: list[tuple[Prepared, asyncio.Future[bool]]] = []
        keys: set[tuple[int, str]] = set()
        most = self.MAX if self.postgresql else 1
        for entry in self._queue:
            key = (entry[0].account_id, entry[0].out_trade_no)
            if key in keys or len(batch) >= most:
                later.append(entry)
            else:
                keys.add(key)
                batch.append(entry)
        self._queue = later
        self.sizes.append(len(batch))
        if self.timer is not None:
            now = time.perf_counter()
            for _, future in batch:
                self.timer.add("queue", now - self._queued_at.pop(future))
            self.timer.add("batch_size", len(batch) / 1000)  # (shown as ms: read as items)
        return batch

    async def _drain(self) -> None:
        batch = self._take()
        if batch is not None and self._alone:
            batch = await self._drain_alone(batch)
        while batch is not None:
            self._answer(batch, await _apply(self.factory, [item for item, _ in batch]))
            batch = self._take()

    async def _drain_alone(
        self, batch: list[tuple[Prepared, asyncio.Future[bool]]] | None
    ) -> list[tuple[Prepared, asyncio.Future[bool]]] | None:
        """Batches one after another on one session (one pooled connection), each statement
        its own transaction. On an error the batch is tried again one by one (fresh sessions)
        and the rest of the drain goes on batch by batch, each in a transaction of its own."""
        timer = self.timer
        async with self.factory() as session:
            if timer is not None:
                started = time.perf_counter()
                await session.connection()
                timer.add("connect", time.perf_counter() - started)
            while batch is not None:
                items = [item for item, _ in batch]
                try:
                    if timer is not None:
                        started = time.perf_counter()
                    applied = await callbacks_hot.apply_many(session, items)
                    if await _driver_in_transaction(session):
                        await session.commit()  # (not expected: the statement ran alone)
                    if timer is not None:
                        timer.add("statement", time.perf_counter() - started)
                        started = time.perf_counter()
                except Exception:
                    log.warning("payment callback batch of %d failed", len(items))
                    self._answer(batch, await _apply(self.factory, items, failed=True))
                    return self._take()
                if any(applied):  # committed: wake the live feed as after any commit
                    lifecycle.notify_live(session)
                    await aftercommit.run_pending(session)
                if timer is not None:
                    timer.add("after_commit", time.perf_counter() - started)
                self._answer(batch, applied)
                batch = self._take(stop=False)
                if batch is None:
                    await self._linger()
                    batch = self._take()
        return None

    async def _linger(self) -> None:
        """Wait, at most LINGER, for a callback to be submitted (which wakes this drain)."""
        loop = asyncio.get_running_loop()
        waiting: asyncio.Future[None] = loop.create_future()
        self._lingering.append(waiting)
        timer = loop.call_later(self.LINGER, _wake, waiting)
        try:
            await waiting
        finally:
            timer.cancel()
            if waiting in self._lingering:  # (not woken by a submit: its time ran out)
                self._lingering.remove(waiting)

    def _answer(
        self, batch: list[tuple[Prepared, asyncio.Future[bool]]], applied: list[bool]
    ) -> None:
        if self.timer is not None:
            now = time.perf_counter()
            for _, future in batch:
                self._answered_at[future] = now
        _answer(batch, applied)


def _wake(waiting: asyncio.Future[None]) -> None:
    if not waiting.done():
        waiting.set_result(None)


async def _driver_in_transaction(session: AsyncSession) -> bool:
    driver = await hotsql.driver_of(session)
    return bool(driver is not None and driver.is_in_transaction())


def _answer(batch: list[tuple[Prepared, asyncio.Future[bool]]], applied: list[bool]) -> None:
    for (_, future), done in zip(batch, applied, strict=True):
        if not future.done():
            future.set_result(done)


async def _apply(
    factory: async_sessionmaker[AsyncSession], items: list[Prepared], *, failed: bool = False
) -> list[bool]:
    """Apply a batch in a transaction of its own; if it fails (or `failed`: it did already),
    each of its callbacks alone (one that fails alone is left to the full path: nothing of it
    was written)."""
    if not failed:
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

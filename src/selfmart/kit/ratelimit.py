"""Rate limits on the public endpoints (login, refresh, terminal activation, customers' order
look-ups), per client IP or per any other key a service counts (an order number).

Counted with a moving window: in this process by default (`LocalWindow`), in Redis (the
`limits` library's moving window) when `settings.redis_url` is set, so every API process
behind a load balancer counts the same attempts. A refused request is a 429
`too_many_requests` with Retry-After, refused before the body is looked at and before anything
is written (a flood writes no login-log rows).

Behind a reverse proxy the client IP is the proxy's unless uvicorn runs with
`--proxy-headers --forwarded-allow-ips=<proxy>` (it then takes X-Forwarded-For).

A route opts in with `dependencies=[rate_limited("login")]` and declares 429;
tests/test_rate_limit.py fails on a public POST route without it.

A hot route's fast lane (payment callbacks, payments.fastlane) counts with `hit_soon`: at once
in this process, and in the shared store shortly after (`RateLimiter.SEND_EVERY`), off the
request's path (one Redis round trip for all the attempts counted meanwhile, not one per
request).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from fastapi import Depends, Request
from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from selfmart.config import Settings
from selfmart.errors import TooManyRequests
from selfmart.kit.context import current_ip

log = logging.getLogger(__name__)

#: Buckets whose limits come from their own settings rather than `settings.rate_limits`.
ORDER_LOOKUP = "order_lookup"
#: Payment platforms' callbacks, per calling address (limits in `settings.rate_limits`).
PAYMENT_NOTIFY = "payment_notify"
ORDER_LOOKUP_FAILURES = "order_lookup_failures"
#: Terminal heartbeats, per terminal (not per address: a store's terminals share one).
HEARTBEAT = "terminal_heartbeat"
#: Business-event batches per terminal (selfmart.behaviour).
EVENT_BATCHES = "terminal_event_batches"
#: scope["state"] key: buckets this request was already counted in (by a fast lane in front of
#: the route, payments.fastlane), which the route's dependency does not count again.
COUNTED = "ratelimit.counted"
#: scope["state"] key: buckets a fast lane in front of the route found used up (bucket ->
#: seconds until an attempt is allowed again), which the route's dependency refuses as they are.
REFUSED = "ratelimit.refused"


class LocalWindow:
    """A moving window counted in this process: per limit and key, the times of the attempts
    still inside the window. Plain code with nothing to await, so counting never waits.

    (The `limits` library's in-memory store guards each key with an asyncio lock, which its
    expiry task takes every time it runs, and, holding it, hands the key's whole list of
    attempts to a thread: on a hot route every request from one address waited for that hop,
    up to 190 ms a callback under load — payments.probe measured it.)"""

    #: Every this many attempts, keys whose window has emptied are dropped.
    SWEEP = 4096

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._times: dict[str, tuple[deque[float], int]] = {}
        self._count = 0
        #: (id of the item, identifiers) -> (the item, its key): `key_for` builds the key
        #: anew at each call (~6 µs, most of a hit); the item is kept to tell a reused id.
        self._names: dict[tuple[int, tuple[str, ...]], tuple[RateLimitItem, str]] = {}

    def _name(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> str:
        found = self._names.get((id(item), identifiers))
        if found is not None and found[0] is item:
            return found[1]
        name = item.key_for(*identifiers)
        self._names[(id(item), identifiers)] = (item, name)
        return name

    def hit(self, item: RateLimitItem, *identifiers: str) -> float | None:
        """Count one attempt; None if allowed, else the seconds until one would be."""
        now = self._clock()
        name = self._name(item, identifiers)
        found = self._times.get(name)
        if found is None:
            found = self._times[name] = (deque(), item.get_expiry())
        times, expiry = found
        while times and times[0] <= now - expiry:
            times.popleft()
        if len(times) >= item.amount:
            # the oldest attempt that must leave the window before one more fits
            return times[len(times) - item.amount] + expiry - now
        times.append(now)
        self._count += 1
        if self._count % self.SWEEP == 0:
            self._sweep(now)
        return None

    def used_up(self, item: RateLimitItem, *identifiers: str) -> bool:
        """Whether one more attempt would be refused (counts nothing)."""
        found = self._times.get(self._name(item, identifiers))
        if found is None:
            return False
        times, expiry = found
        cutoff = self._clock() - expiry
        return sum(1 for t in times if t > cutoff) >= item.amount

    def _sweep(self, now: float) -> None:
        for name, (times, expiry) in list(self._times.items()):
            if not times or times[-1] <= now - expiry:
                del self._times[name]
        self._names.clear()  # (keys of addresses gone quiet go with them)


class RateLimiter:
    """The limits of one app: buckets by name ("login"), each a list of `limits` items."""

    #: Seconds `hit_soon`'s attempts wait in this process before they are sent to the shared
    #: store, so that one send carries those of the moments after too: a send is a Redis round
    #: trip and a script (~0.1-0.2 ms of the process's CPU, as much as a third of a callback's
    #: own cost); sent as soon as the previous send was back, on a quiet machine it carried one
    #: or two callbacks' attempts. The shared count is this much (and a send) behind.
    SEND_EVERY = 0.02

    def __init__(self, settings: Settings) -> None:
        self.strategy: MovingWindowRateLimiter | None = None
        if settings.redis_url:
            uri = "async+" + settings.redis_url
            storage = RedisStorage(
                uri, implementation="redispy", key_prefix=settings.rate_limit_key_prefix
            )
            self.strategy = MovingWindowRateLimiter(storage)
            self.backend = "redis"
        else:
            self.backend = "memory"
        #: This process's own count of each key: the whole count without a shared store; with
        #: one, `hit_soon`'s count at once, besides the attempts not yet sent to the shared
        #: store and the keys the shared store refused (until when, on the monotonic clock).
        self._local = LocalWindow()
        self._unsent: dict[tuple[str, str], int] = {}
        self._refused_until: dict[tuple[str, str], float] = {}
        self._sender: asyncio.Task[None] | None = None
        specs = {
            **settings.member_rate_limits,
            **settings.rate_limits,
            # Customers' order look-ups (selfmart.orders.lookup): per address, and wrong
            # guesses per order number.
            ORDER_LOOKUP: f"{settings.order_lookup_per_minute}/minute",
            ORDER_LOOKUP_FAILURES: f"{settings.order_lookup_failures_per_hour}/hour",
            HEARTBEAT: f"{settings.terminal_heartbeats_per_minute}/minute",
            EVENT_BATCHES: f"{settings.terminal_event_batches_per_minute}/minute",
        }
        self.buckets: dict[str, list[RateLimitItem]] = {
            name: parse_many(spec) for name, spec in specs.items()
        }

    async def hit(self, bucket: str, key: str) -> float | None:
        """Count one attempt; None if allowed, else the seconds until one is allowed again."""
        items = self.buckets.get(bucket)
        if not items:
            return None
        if self.strategy is None:
            return self._hit_local(items, bucket, key)
        try:
            for item in items:
                if not await self.strategy.hit(item, bucket, key):
                    stats = await self.strategy.get_window_stats(item, bucket, key)
                    return max(1.0, stats.reset_time - time.time())
        except Exception as exc:  # the store is down: stay available, and say so
            log.error("rate limit store unreachable (%s): request allowed", type(exc).__name__)
        return None

    async def hit_soon(self, bucket: str, key: str) -> float | None:
        """`hit` for a hot route: None if allowed, else the seconds until one is allowed again.

        With a shared store (Redis) the attempt is counted at once in this process, which
        alone never lets more than the limit through, and sent to the shared store soon after,
        off the request's path, together with every attempt counted meanwhile (one round trip
        for them all). Once the shared store finds a key over its limit (the other processes'
        attempts with this one's), this process refuses the key until the shared window frees.
        So across processes the count is at most one send (SEND_EVERY) behind. Without a shared
        store this is `hit`."""
        if self.strategy is None:
            return await self.hit(bucket, key)
        items = self.buckets.get(bucket)
        if not items:
            return None
        until = self._refused_until.get((bucket, key))
        if until is not None:
            left = until - time.monotonic()
            if left > 0:
                return max(1.0, left)
            del self._refused_until[(bucket, key)]
        wait = self._hit_local(items, bucket, key)
        if wait is not None:
            return wait
        self._unsent[(bucket, key)] = self._unsent.get((bucket, key), 0) + 1
        if self._sender is None:
            self._sender = asyncio.create_task(self._send())
        return None

    def _hit_local(self, items: list[RateLimitItem], bucket: str, key: str) -> float | None:
        """Count one attempt in this process's window (limit by limit, as the shared store
        does: the limits before a refusing one count it)."""
        for item in items:
            wait = self._local.hit(item, bucket, key)
            if wait is not None:
                return max(1.0, wait)
        return None

    async def sent(self) -> None:
        """Wait until every attempt `hit_soon` counted has been sent to the shared store."""
        while self._sender is not None:
            await asyncio.shield(self._sender)

    async def _send(self) -> None:
        """Send the attempts counted by `hit_soon` to the shared store, key by key, until none
        is left (those counted while a send is on its way go in the next), each send SEND_EVERY
        after the first attempt it carries was counted."""
        try:
            while self._unsent:
                await asyncio.sleep(self.SEND_EVERY)
                unsent, self._unsent = self._unsent, {}
                for (bucket, key), count in unsent.items():
                    await self._send_one(bucket, key, count)
        finally:
            self._sender = None

    async def _send_one(self, bucket: str, key: str, count: int) -> None:
        assert self.strategy is not None, "only sent with a shared store"
        try:
            for item in self.buckets[bucket]:
                if not await self.strategy.hit(item, bucket, key, cost=count):
                    stats = await self.strategy.get_window_stats(item, bucket, key)
                    wait = max(1.0, stats.reset_time - time.time())
                    self._refused_until[(bucket, key)] = time.monotonic() + wait
                    log.warning("rate limit hit (shared count): %s from %s", bucket, key)
                    return
        except Exception as exc:  # the store is down: stay available, and say so
            log.error("rate limit store unreachable (%s): request allowed", type(exc).__name__)

    async def blocked(self, bucket: str, key: str) -> bool:
        """Whether `key` has used up `bucket` (without counting an attempt): a guesser who is
        over the limit is refused before a right answer could be tried."""
        items = self.buckets.get(bucket)
        if not items:
            return False
        if self.strategy is None:
            return any(self._local.used_up(item, bucket, key) for item in items)
        try:
            for item in items:
                if not await self.strategy.test(item, bucket, key):
                    return True
        except Exception as exc:  # the store is down: stay available, and say so
            log.error("rate limit store unreachable (%s): request allowed", type(exc).__name__)
        return False


def limiter(request: Request) -> RateLimiter:
    found: RateLimiter = request.app.state.rate_limiter
    return found


class RateLimit:
    """Dependency: count this request against `bucket` for the client's IP; 429 when over."""

    __selfmart_rate_limit__ = True

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    async def __call__(self, request: Request) -> None:
        state = request.scope.get("state", {})
        wait = state.get(REFUSED, {}).get(self.bucket)
        if wait is not None:  # a fast lane in front found it used up (counted nothing)
            refuse(self.bucket, current_ip() or "unknown", wait)
        if self.bucket in state.get(COUNTED, ()):
            return
        await enforce(limiter(request), self.bucket, current_ip() or "unknown")


async def enforce(rate: RateLimiter, bucket: str, key: str) -> None:
    """Count one attempt of `key` (an address, a terminal) in `bucket`; 429 when over."""
    wait = await rate.hit(bucket, key)
    if wait is not None:
        refuse(bucket, key, wait)


def refuse(bucket: str, key: str, wait: float) -> None:
    """The 429 for `key` over `bucket`'s limit, to try again in `wait` seconds."""
    log.warning("rate limit hit: %s from %s", bucket, key)
    raise TooManyRequests("Too many attempts; try again later", retry_after=math.ceil(wait))


def rate_limited(bucket: str) -> Any:
    """`dependencies=[rate_limited("login")]` on a route."""
    return Depends(RateLimit(bucket))

"""Rate limits on the public endpoints (login, refresh, terminal activation, customers' order
look-ups), per client IP or per any other key a service counts (an order number).

Counted by the `limits` library with a moving window: in this process by default, in Redis
when `settings.redis_url` is set, so every API process behind a load balancer counts the same
attempts. A refused request is a 429 `too_many_requests` with Retry-After, refused before the
body is looked at and before anything is written (a flood writes no login-log rows).

Behind a reverse proxy the client IP is the proxy's unless uvicorn runs with
`--proxy-headers --forwarded-allow-ips=<proxy>` (it then takes X-Forwarded-For).

A route opts in with `dependencies=[rate_limited("login")]` and declares 429;
tests/test_rate_limit.py fails on a public POST route without it.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from fastapi import Depends, Request
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
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


class RateLimiter:
    """The limits of one app: buckets by name ("login"), each a list of `limits` items."""

    def __init__(self, settings: Settings) -> None:
        self.storage: Storage
        if settings.redis_url:
            uri = "async+" + settings.redis_url
            self.storage = RedisStorage(
                uri, implementation="redispy", key_prefix=settings.rate_limit_key_prefix
            )
            self.backend = "redis"
        else:
            self.storage = MemoryStorage()
            self.backend = "memory"
        self.strategy = MovingWindowRateLimiter(self.storage)
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
        try:
            for item in items:
                if not await self.strategy.hit(item, bucket, key):
                    stats = await self.strategy.get_window_stats(item, bucket, key)
                    return max(1.0, stats.reset_time - time.time())
        except Exception as exc:  # the store is down: stay available, and say so
            log.error("rate limit store unreachable (%s): request allowed", type(exc).__name__)
        return None

    async def blocked(self, bucket: str, key: str) -> bool:
        """Whether `key` has used up `bucket` (without counting an attempt): a guesser who is
        over the limit is refused before a right answer could be tried."""
        items = self.buckets.get(bucket)
        if not items:
            return False
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
        if self.bucket in request.scope.get("state", {}).get(COUNTED, ()):
            return
        await enforce(limiter(request), self.bucket, current_ip() or "unknown")


async def enforce(rate: RateLimiter, bucket: str, key: str) -> None:
    """Count one attempt of `key` (an address, a terminal) in `bucket`; 429 when over."""
    wait = await rate.hit(bucket, key)
    if wait is not None:
        log.warning("rate limit hit: %s from %s", bucket, key)
        raise TooManyRequests("Too many attempts; try again later", retry_after=math.ceil(wait))


def rate_limited(bucket: str) -> Any:
    """`dependencies=[rate_limited("login")]` on a route."""
    return Depends(RateLimit(bucket))

"""Caches that a change made on one process must clear on every process, at once.

A process keeps a cache of something people change (the maintenance flag) and tells its
`Bus` how to forget it under a name. The change, once committed, announces the name: the
process that made it forgets at once, and with `redis_url` set every other process does too,
through Redis pub/sub on `<jobs_queue>:invalidate`. A process that was not listening (starting,
or Redis away) forgets everything when it subscribes again, since it may have missed an
announcement; each cache still re-reads now and then as a last resort.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from selfmart.config import Settings
from selfmart.kit.background import BackgroundLoop

log = logging.getLogger(__name__)

#: After losing Redis, wait this long before subscribing again.
RETRY_SECONDS = 1.0


def channel(settings: Settings) -> str:
    return f"{settings.jobs_queue}:invalidate"


async def publish(settings: Settings, name: str, *, origin: str = "") -> None:
    """Tell every process listening on Redis to forget cache `name` (nothing without Redis).
    For processes that hold no cache themselves (the CLI); a failure is logged, not raised:
    the change is committed, and the caches re-read within their time to live."""
    if not settings.redis_url:
        return
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    client: Any = Redis.from_url(settings.redis_url, socket_timeout=5)
    try:
        await client.publish(channel(settings), json.dumps({"name": name, "origin": origin}))
    except (RedisError, OSError) as exc:
        log.warning("cache %s not invalidated on the other processes (%s)", name, exc)
    finally:
        await client.aclose()


class Bus:
    """One app's end of the announcements: the caches it holds and, with Redis, the
    subscription that hears the other processes' changes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        #: this bus's own announcements come back through Redis; it has acted on them already
        self.origin = uuid.uuid4().hex
        self._forget: dict[str, list[Callable[[], None]]] = {}
        self._loop = BackgroundLoop("selfmart-cache-invalidation")
        #: set while subscribed (tests wait on it)
        self.subscribed = asyncio.Event()

    def listen(self, name: str, forget: Callable[[], None]) -> None:
        self._forget.setdefault(name, []).append(forget)

    def forget(self, name: str) -> None:
        for fn in self._forget.get(name, ()):
            fn()

    def forget_all(self) -> None:
        for name in self._forget:
            self.forget(name)

    async def announce(self, name: str) -> None:
        """Cache `name` changed (call after the commit): forget it here, then everywhere."""
        self.forget(name)
        await publish(self.settings, name, origin=self.origin)

    def _heard(self, data: bytes | str) -> None:
        try:
            message = json.loads(data)
            name, origin = str(message["name"]), str(message.get("origin", ""))
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable cache invalidation ignored: %r", data[:200])
            return
        if origin != self.origin:
            self.forget(name)

    async def _listen(self) -> None:
        from redis.asyncio import Redis
        from redis.exceptions import RedisError

        assert self.settings.redis_url
        while True:
            client: Any = Redis.from_url(self.settings.redis_url)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(channel(self.settings))
                self.forget_all()  # whatever was announced while nobody here listened
                self.subscribed.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._heard(message["data"])
            except (RedisError, OSError) as exc:
                log.warning("cache invalidations not heard: Redis unreachable (%s)", exc)
            except Exception:  # keep listening: a missed announcement would go unnoticed
                log.exception("cache invalidations: listener failed; subscribing again")
            finally:
                self.subscribed.clear()
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
                with contextlib.suppress(RedisError, OSError):
                    await client.aclose()
            await asyncio.sleep(RETRY_SECONDS)

    def start(self) -> None:
        """Listen for the other processes' announcements (with Redis; nothing to hear else)."""
        if self.settings.redis_url:
            self._loop.start(self._listen)

    async def stop(self) -> None:
        await self._loop.stop()

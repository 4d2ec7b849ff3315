"""Rate limits on the public endpoints, per client IP: in process, and shared through Redis.

The Redis tests need Redis on 127.0.0.1:6379 (SELFMART_TEST_REDIS_URL): skipped without it,
except under CI=true where it must be there.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from limits import parse_many
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from selfmart.app import create_app
from selfmart.iam.dependencies import PUBLIC_ROUTES
from selfmart.kit import ratelimit
from selfmart.kit.ratelimit import (
    ORDER_LOOKUP,
    ORDER_LOOKUP_FAILURES,
    PAYMENT_NOTIFY,
    RateLimit,
    RateLimiter,
)

from .builders import DEFAULT_PASSWORD, make_user
from .conftest import IN_CI
from .support import api_routes, captured_logs, client_with, fingerprint, settings_for

REDIS_URL = os.environ.get("SELFMART_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
LOGIN = "/api/v1/auth/login"
#: bucket → (path, a body the route reads and refuses)
PUBLIC_POSTS: dict[str, tuple[str, dict[str, Any]]] = {
    "login": (LOGIN, {"username": "nobody-here", "password": "wrong-password"}),
    "refresh": ("/api/v1/auth/refresh", {"refresh_token": "not-a-token"}),
    "terminal_activate": (
        "/api/terminal/v1/activate",
        {"terminal_code": "T-NONE", "activation_code": "000000"},
    ),
    # a platform's callback for an account we do not have: refused (404, the platform's format)
    "payment_notify": ("/api/payments/notify/wechat/999999", {}),
    # the member page's sign-in with a code never sent
    "member_portal": (
        "/api/v1/public/members/sign-in",
        {"mobile": "13900000000", "code": "000000"},
    ),
}


def _rate_limits(dep: Dependant) -> list[str]:
    found = [dep.call.bucket] if isinstance(dep.call, RateLimit) else []
    for sub in dep.dependencies:
        found += _rate_limits(sub)
    return found


def test_every_public_post_route_is_rate_limited_and_declares_429() -> None:
    app = create_app(settings_for("sqlite+aiosqlite:///:memory:"))
    doc = app.openapi()
    public_posts = [r for r in api_routes(app) if (r.method, r.path) in PUBLIC_ROUTES]
    public_posts = [r for r in public_posts if r.method == "POST"]
    assert {b for r in public_posts for b in _rate_limits(r.dependant)} >= set(PUBLIC_POSTS)
    for route in public_posts:
        buckets = _rate_limits(route.dependant)
        assert buckets, f"{route.id} is public and not rate limited"
        # a bucket's limits are in settings.rate_limits, or in settings of their own
        known = {*app.state.settings.rate_limits, ORDER_LOOKUP, ORDER_LOOKUP_FAILURES}
        assert all(b in known for b in buckets), buckets
        assert "429" in doc["paths"][route.path]["post"]["responses"], route.id


def assert_limited(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    body = r.json()
    assert body["error"] == "too_many_requests"
    assert set(body) == {"error", "message", "details", "request_id"}
    assert 1 <= int(r.headers["retry-after"]) <= 60


@pytest.mark.parametrize("bucket", sorted(PUBLIC_POSTS))
async def test_public_endpoint_refuses_429_past_its_limit_per_ip(
    bucket: str,
    db_url: str,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    path, body = PUBLIC_POSTS[bucket]
    limits = {bucket: "3/minute"}
    async with client_with(db_url, engine, sessionmaker, rate_limits=limits) as c:
        for _ in range(3):
            assert (await c.post(path, json=body)).status_code in {401, 404, 422}
        before = await fingerprint(session)
        r = await c.post(path, json=body)
        assert_limited(r)
        # refused before reading anything: no login-log row, no failure count
        assert await fingerprint(session) == before
        # an invalid body counts too, and is refused the same way
        assert_limited(await c.post(path, content=b"{not json", headers={"x": "y"}))
    async with client_with(
        db_url, engine, sessionmaker, ip="198.51.100.20", rate_limits=limits
    ) as other:
        assert (await other.post(path, json=body)).status_code in {401, 404, 422}


async def test_a_correct_password_is_refused_too_once_the_ip_is_limited(
    db_url: str,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    user = await make_user(session)
    good = {"username": user.username, "password": DEFAULT_PASSWORD}
    async with client_with(db_url, engine, sessionmaker, rate_limits={"login": "2/minute"}) as c:
        assert (await c.post(LOGIN, json={**good, "password": "wrong-one"})).status_code == 401
        assert (await c.post(LOGIN, json={**good, "password": "wrong-two"})).status_code == 401
        assert_limited(await c.post(LOGIN, json=good))


async def test_the_default_limits_let_people_work() -> None:
    limits = settings_for("sqlite+aiosqlite:///:memory:").rate_limits
    assert set(limits) == set(PUBLIC_POSTS)
    app = create_app(settings_for("sqlite+aiosqlite:///:memory:"))
    assert app.state.rate_limiter.backend == "memory"
    for _ in range(10):
        assert await app.state.rate_limiter.hit("login", "192.0.2.1") is None


# --- Redis: several API processes count together ---------------------------------------------


async def _redis_problem() -> str | None:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
        return None
    except Exception as exc:  # any failure to reach it
        return f"{type(exc).__name__}: {exc}"
    finally:
        await client.aclose()  # type: ignore[attr-defined]  # (types-redis lags redis 5+)


@pytest.fixture
async def redis_url() -> str:
    problem = await _redis_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"Redis is required in CI but unreachable at {REDIS_URL}: {problem}")
        pytest.skip(f"Redis not reachable at {REDIS_URL} ({problem}); Redis limiter untested")
    return REDIS_URL


async def _has_keys(redis_url: str, prefix: str) -> bool:
    client = Redis.from_url(redis_url)
    try:
        return bool(await client.keys(f"{prefix}*"))
    finally:
        await client.aclose()  # type: ignore[attr-defined]


async def _drop_keys(redis_url: str, prefix: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        keys = await client.keys(f"{prefix}*")
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()  # type: ignore[attr-defined]


async def test_processes_sharing_redis_share_the_count(
    redis_url: str,
    db_url: str,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    prefix = f"selfmart-test:{uuid.uuid4().hex}"
    settings: dict[str, Any] = {
        "redis_url": redis_url,
        "rate_limit_key_prefix": prefix,
        "rate_limits": {"login": "4/minute"},
    }
    path, body = PUBLIC_POSTS["login"]
    try:
        async with (
            client_with(db_url, engine, sessionmaker, **settings) as one,
            client_with(db_url, engine, sessionmaker, **settings) as two,
        ):
            assert one._transport.app.state.rate_limiter.backend == "redis"  # type: ignore[attr-defined]
            for c in (one, two, one, two):
                assert (await c.post(path, json=body)).status_code == 401
            # each app saw only two attempts; together they saw four
            assert_limited(await one.post(path, json=body))
            assert_limited(await two.post(path, json=body))
        assert await _has_keys(redis_url, prefix), "the counters were not kept in Redis"
    finally:
        await _drop_keys(redis_url, prefix)


async def test_hit_soon_counts_in_process_at_once_and_in_redis_just_after(redis_url: str) -> None:
    """The callbacks' fast lane counts with `hit_soon`: one process refuses past the limit by
    its own count, without waiting for Redis; the shared count follows, so other processes
    refuse the address too (one of them after letting one more through)."""
    prefix = f"selfmart-test:{uuid.uuid4().hex}"
    settings = settings_for(
        "sqlite+aiosqlite:///:memory:",
        redis_url=redis_url,
        rate_limit_key_prefix=prefix,
        rate_limits={PAYMENT_NOTIFY: "3/minute"},
    )
    one, two, three = (RateLimiter(settings) for _ in range(3))
    try:
        for _ in range(3):
            assert await one.hit_soon(PAYMENT_NOTIFY, "192.0.2.7") is None
        wait = await one.hit_soon(PAYMENT_NOTIFY, "192.0.2.7")
        assert wait is not None
        assert 1 <= wait <= 60
        await one.sent()
        # Redis has the three: a process counting through it refuses the address at once
        assert await two.hit(PAYMENT_NOTIFY, "192.0.2.7") is not None
        assert await two.hit_soon(PAYMENT_NOTIFY, "192.0.2.8") is None
        # a process that had not counted the address lets one through, and once its send
        # finds the shared count full, refuses it too
        assert await three.hit_soon(PAYMENT_NOTIFY, "192.0.2.7") is None
        await three.sent()
        wait = await three.hit_soon(PAYMENT_NOTIFY, "192.0.2.7")
        assert wait is not None
        assert 1 <= wait <= 60
        await two.sent()
    finally:
        await _drop_keys(redis_url, prefix)


async def test_notify_route_refuses_past_its_limit_counted_through_redis(
    redis_url: str,
    db_url: str,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    """Through the fast lane with Redis: the fourth callback from one address is a 429, with
    nothing written, and Redis holds the count."""
    prefix = f"selfmart-test:{uuid.uuid4().hex}"
    path, body = PUBLIC_POSTS[PAYMENT_NOTIFY]
    try:
        async with client_with(
            db_url,
            engine,
            sessionmaker,
            redis_url=redis_url,
            rate_limit_key_prefix=prefix,
            rate_limits={PAYMENT_NOTIFY: "3/minute"},
        ) as c:
            for _ in range(3):
                assert (await c.post(path, json=body)).status_code == 404
            before = await fingerprint(session)
            assert_limited(await c.post(path, json=body))
            assert await fingerprint(session) == before
            await c._transport.app.state.rate_limiter.sent()  # type: ignore[attr-defined]
        assert await _has_keys(redis_url, prefix), "the count was not sent to Redis"
    finally:
        await _drop_keys(redis_url, prefix)


async def test_hit_soon_with_redis_unreachable_allows_and_says_so() -> None:
    limiter = RateLimiter(
        settings_for(
            "sqlite+aiosqlite:///:memory:",
            redis_url="redis://127.0.0.1:1/0",
            rate_limits={PAYMENT_NOTIFY: "2/minute"},
        )
    )
    with captured_logs() as logs:
        for _ in range(2):
            assert await limiter.hit_soon(PAYMENT_NOTIFY, "192.0.2.9") is None
        await limiter.sent()
    assert any("rate limit store unreachable" in line for line in logs)
    # this process's own count still holds the limit
    assert await limiter.hit_soon(PAYMENT_NOTIFY, "192.0.2.9") is not None


async def test_an_unreachable_redis_leaves_login_available(
    db_url: str,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Login must not fail (500) because the limiter's store is down: it is allowed and the
    outage is logged."""
    path, body = PUBLIC_POSTS["login"]
    async with client_with(
        db_url,
        engine,
        sessionmaker,
        redis_url="redis://127.0.0.1:1/0",
        rate_limits={"login": "1/minute"},
    ) as c:
        with captured_logs() as logs:
            for _ in range(2):
                assert (await c.post(path, json=body)).status_code == 401
    assert any("rate limit store unreachable" in line for line in logs)


async def test_order_lookups_are_counted_together_through_redis(
    redis_url: str,
    db_url: str,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    """Customers' order look-ups use the same shared limiter: two API processes on one Redis
    count one address's look-ups, and one order's wrong guesses, together."""
    from tests.orders.builders import make_order, make_product

    from .builders import make_store

    store = await make_store(session)
    order = await make_order(
        session,
        store,
        [(await make_product(session, stores=[store]), 1)],
        customer_phone="13912345678",
    )
    url = "/api/v1/public/orders/lookup"
    prefix = f"selfmart-test:{uuid.uuid4().hex}"
    settings: dict[str, Any] = {
        "redis_url": redis_url,
        "rate_limit_key_prefix": prefix,
        "order_lookup_per_minute": 4,
        "order_lookup_failures_per_hour": 6,
    }
    try:
        async with (
            client_with(db_url, engine, sessionmaker, **settings) as one,
            client_with(db_url, engine, sessionmaker, **settings) as two,
        ):
            for i, c in enumerate((one, two, one, two)):
                params = {"order_no": order.order_no, "phone_last4": f"{i:04d}"}
                assert (await c.get(url, params=params)).status_code == 404
            right = {"order_no": order.order_no, "phone_last4": "5678"}
            # each app saw two look-ups from this address; together they saw four
            assert_limited(await one.get(url, params=right))
            assert_limited(await two.get(url, params=right))
        # From two other addresses, again through two processes: the order has taken four
        # wrong guesses; two more are answered, then guessing this order is refused anywhere.
        async with (
            client_with(db_url, engine, sessionmaker, ip="198.51.100.41", **settings) as three,
            client_with(db_url, engine, sessionmaker, ip="198.51.100.42", **settings) as four,
        ):
            for i, c in enumerate((three, four)):
                params = {"order_no": order.order_no, "phone_last4": f"{10 + i:04d}"}
                assert (await c.get(url, params=params)).status_code == 404
            wrong = {"order_no": order.order_no, "phone_last4": "0099"}
            r = await three.get(url, params=wrong)
            assert r.status_code == 429, r.text
            assert 1 <= int(r.headers["retry-after"]) <= 3600
            assert (await four.get(url, params=wrong)).status_code == 429
            # the right phone still finds it: only wrong guesses count against the order
            assert (await four.get(url, params=right)).status_code == 200
        assert await _has_keys(redis_url, f"{prefix}*order_lookup"), "not counted in Redis"
    finally:
        await _drop_keys(redis_url, prefix)


def test_the_in_process_count_is_a_moving_window() -> None:
    """Counted in this process (no Redis): at most `amount` attempts in any `expiry` seconds;
    a refused attempt is told how long until one more fits, and is not counted."""
    clock = [1000.0]
    window = ratelimit.LocalWindow(clock=lambda: clock[0])
    item = parse_many("3/minute")[0]
    for t in (0.0, 10.0, 20.0):
        clock[0] = 1000.0 + t
        assert window.hit(item, "login", "192.0.2.1") is None
    clock[0] = 1030.0
    assert window.used_up(item, "login", "192.0.2.1")
    assert window.hit(item, "login", "192.0.2.1") == pytest.approx(30.0)  # the first leaves at 60
    assert window.hit(item, "login", "192.0.2.2") is None  # another key counts apart
    clock[0] = 1060.5  # the first attempt has left the window: one more fits, then no more
    assert not window.used_up(item, "login", "192.0.2.1")
    assert window.hit(item, "login", "192.0.2.1") is None
    assert window.hit(item, "login", "192.0.2.1") == pytest.approx(9.5)

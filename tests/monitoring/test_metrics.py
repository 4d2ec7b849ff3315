"""/metrics in Prometheus text format: requests counted and timed by route template (never the
raw path), the deployment-wide figures read from the database once per scrape, and access only
with the token or from loopback."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import utcnow
from selfmart.models import OutboxEvent, Payment
from selfmart.monitoring.service import MetricsCache

from ..builders import make_store
from ..orders.builders import make_order
from ..terminals.builders import make_terminal

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(all_: Samples, name: str, **labels: str) -> float:
    return all_.get((name, frozenset(labels.items())), 0.0)


def loopback(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def scrape(app: Any) -> Samples:
    async with loopback(app) as c:
        r = await c.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return samples(r.text)


async def test_a_request_increments_its_route_templates_counter(
    app: Any, client: httpx.AsyncClient
) -> None:
    route = "/api/v1/jobs/{job_id}"
    before = await scrape(app)
    for job_id in (12345, 67890):
        assert (await client.get(f"/api/v1/jobs/{job_id}")).status_code == 401
    after = await scrape(app)
    key = {"method": "GET", "route": route, "status": "401"}
    assert value(after, "selfmart_http_requests_total", **key) == (
        value(before, "selfmart_http_requests_total", **key) + 2
    )
    count = "selfmart_http_request_duration_seconds_count"
    assert value(after, count, method="GET", route=route) == (
        value(before, count, method="GET", route=route) + 2
    )
    # the raw paths never become labels
    assert not any("12345" in v for (_, labels) in after for _, v in labels)


async def test_unknown_paths_share_one_series(app: Any, client: httpx.AsyncClient) -> None:
    before = await scrape(app)
    for _ in range(3):
        await client.get(f"/api/v1/no-such-thing/{uuid.uuid4().hex}")
    after = await scrape(app)
    key = {"method": "GET", "route": "/{path:path}", "status": "404"}
    assert value(after, "selfmart_http_requests_total", **key) == (
        value(before, "selfmart_http_requests_total", **key) + 3
    )


async def test_database_figures_orders_terminals_and_queue(app: Any, session: AsyncSession) -> None:
    app.state.metrics_cache = MetricsCache()
    first = await scrape(app)
    store = await make_store(session)
    now = utcnow()
    await make_terminal(session, store, status="active", last_seen_at=now - timedelta(seconds=30))
    await make_terminal(session, store, status="active", last_seen_at=now - timedelta(hours=2))
    session.add(
        OutboxEvent(
            topic="test.nothing",
            payload={},
            created_at=now - timedelta(seconds=90),
            available_at=now - timedelta(seconds=90),
        )
    )
    for _ in range(10):
        await make_order(session, store, [], created_at=now - timedelta(minutes=1))
    await make_order(session, store, [], created_at=now - timedelta(minutes=30))
    await session.flush()

    # within metrics_cache_seconds a scrape reads the cached figures, not the database
    cached = await scrape(app)
    assert value(cached, "selfmart_terminals_online") == value(first, "selfmart_terminals_online")

    app.state.metrics_cache = MetricsCache()
    second = await scrape(app)

    def grew(name: str) -> float:
        return value(second, name) - value(first, name)

    assert grew("selfmart_terminals_online") == 1  # the one seen 30 s ago, not 2 h ago
    assert grew("selfmart_orders_per_minute") == pytest.approx(10 / 5)  # 5-minute average
    assert grew("selfmart_jobs_queue_depth") == 1
    assert value(second, "selfmart_jobs_queue_lag_seconds") >= 90
    # exported once: a gauge without per-process labels
    names = [n for (n, labels) in second if n == "selfmart_orders_per_minute"]
    assert names == ["selfmart_orders_per_minute"]


async def test_metrics_refuses_other_hosts_without_a_token(
    app: Any, client: httpx.AsyncClient
) -> None:
    r = await client.get("/metrics")  # the test client is 203.0.113.7
    assert r.status_code == 403
    assert r.json()["error"] == "forbidden"


async def test_metrics_with_a_token_needs_it_from_everywhere(app: Any) -> None:
    from pydantic import SecretStr

    app.state.settings = app.state.settings.model_copy(
        update={"metrics_token": SecretStr("scrape-secret-0123")}
    )
    async with loopback(app) as c:
        assert (await c.get("/metrics")).status_code == 401
        wrong = await c.get("/metrics", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.get("/metrics", headers={"authorization": "Bearer scrape-secret-0123"})
    assert r.status_code == 200
    assert "selfmart_http_requests_total" in r.text


async def test_payment_success_rate_is_exported_once(app: Any, session: AsyncSession) -> None:
    store = await make_store(session)
    order = await make_order(session, store, [])
    now = utcnow()
    app.state.metrics_cache = MetricsCache()
    first = await scrape(app)
    for status in ["succeeded", "succeeded", "succeeded", "failed", "pending", "closed"]:
        session.add(
            Payment(
                order_id=order.id,
                store_id=store.id,
                channel="wechat",
                status=status,
                amount_fen=350,
                created_at=now - timedelta(minutes=1),
                actor_type="terminal",
                actor_name="t",
            )
        )
    await session.flush()
    app.state.metrics_cache = MetricsCache()
    second = await scrape(app)
    ended = value(second, "selfmart_payment_attempts_ended")
    assert ended - value(first, "selfmart_payment_attempts_ended") == 4  # not pending, closed
    if ended == 4:  # nothing else in the window (other tests' committed rows)
        assert value(second, "selfmart_payment_success_rate") == pytest.approx(0.75)
    assert 0 <= value(second, "selfmart_payment_success_rate") <= 1
    names = [n for (n, _labels) in second if n == "selfmart_payment_success_rate"]
    assert names == ["selfmart_payment_success_rate"]

"""Each machine's host figures and HTTP window, published through Redis: the monitoring page
lists every machine, and the host and HTTP alert rules evaluate each machine on its own (an
alert names its machine; one alert per rule and machine)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from selfmart.alerts import evaluate
from selfmart.alerts.metrics import HostSample
from selfmart.kit.time import clock_at, utcnow
from selfmart.models import Message
from selfmart.monitoring import machines
from selfmart.monitoring import metrics as prom
from selfmart.monitoring.overview import HttpTotals
from selfmart.monitoring.schemas import HostRead
from tests.alerts.support import alerts_of, make_rule
from tests.builders import auth_headers, make_user
from tests.support import client_with, settings_for

NOON = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)


def _host(cpu: float, memory: float = 10.0, disk: float = 10.0) -> HostRead:
    return HostRead(
        cpu_percent=cpu,
        cpu_count=2,
        load_average=[0.1, 0.1, 0.1],
        memory_total_bytes=8 << 30,
        memory_used_bytes=1 << 30,
        memory_percent=memory,
        disk_path="/",
        disk_total_bytes=100 << 30,
        disk_used_bytes=10 << 30,
        disk_percent=disk,
        network_sent_bytes=0,
        network_received_bytes=0,
    )


def _sample(name: str, cpu: float, *, requests: int = 0, errors: int = 0) -> machines.MachineSample:
    return machines.MachineSample(
        name=name,
        at=utcnow(),
        host=_host(cpu),
        http=HttpTotals(requests=requests, errors=errors, buckets=((0.1, requests),)),
        window_seconds=60.0,
    )


async def _publish(url: str, namespace: str, *samples: machines.MachineSample) -> Any:
    settings = settings_for("sqlite://", redis_url=url, jobs_queue=namespace)
    client = Redis.from_url(url)
    try:
        for s in samples:
            await machines.publish(client, settings, s)
    finally:
        await client.aclose()  # type: ignore[attr-defined]
    return settings


async def _run(session: AsyncSession, settings: Any, at: datetime) -> evaluate.Report:
    with clock_at(at):
        return await evaluate.evaluate(session, settings, now=at)


def test_a_sample_travels_through_json_unchanged() -> None:
    sample = machines.MachineSample(
        name="api-1",
        at=NOON,
        host=_host(42.5),
        http=HttpTotals(requests=5, errors=1, buckets=((0.1, 3.0), (float("inf"), 5.0))),
        window_seconds=59.5,
    )
    assert machines.MachineSample.loads(sample.dumps()) == sample


def test_the_http_window_covers_the_last_minute_of_requests() -> None:
    sampler = machines.Sampler(settings_for("sqlite://", machine_name="here"))
    route = "/api/v1/machines-window-test"
    first = sampler.sample(now=1000.0)
    assert first.window_seconds == 0
    assert first.http.requests == 0
    for _ in range(3):
        prom.REQUESTS.labels("GET", route, "200").inc()
    prom.ERRORS.labels("GET", route).inc()
    prom.REQUESTS.labels("GET", route, "500").inc()
    second = sampler.sample(now=1030.0)
    assert (second.http.requests, second.http.errors, second.window_seconds) == (4, 1, 30.0)
    third = sampler.sample(now=1070.0)  # 1000 is still the newest reading a minute old
    assert (third.http.requests, third.window_seconds) == (4, 70.0)
    fourth = sampler.sample(now=1095.0)  # now 1030 is: the requests before it drop out
    assert (fourth.http.requests, fourth.window_seconds) == (0, 65.0)
    assert third.name == "here"


async def test_host_rules_fire_per_machine_and_name_it(
    session: AsyncSession, shared_redis: tuple[str, str]
) -> None:
    url, namespace = shared_redis
    settings = await _publish(url, namespace, _sample("api-a", 97.0), _sample("api-b", 12.0))
    rule = await make_rule(session, "cpu_percent", 90)

    report = await _run(session, settings, NOON)
    assert report.fired == 1
    (alert,) = await alerts_of(session, rule)
    assert (alert.subject, alert.subject_label, alert.status) == ("machine:api-a", "api-a", "open")
    message = (await session.scalars(select(Message).order_by(Message.id.desc()))).first()
    assert message is not None
    assert "api-a" in str(message.title)

    # the other machine heats up: its own alert; the first one is not told again (dedup)
    await _publish(url, namespace, _sample("api-a", 96.0), _sample("api-b", 95.0))
    report = await _run(session, settings, NOON + timedelta(minutes=1))
    assert (report.fired, report.resolved) == (1, 0)
    # the first one cools down: only its alert resolves
    await _publish(url, namespace, _sample("api-a", 20.0), _sample("api-b", 95.0))
    report = await _run(session, settings, NOON + timedelta(minutes=2))
    assert (report.fired, report.resolved) == (0, 1)
    by_subject = {a.subject: a.status for a in await alerts_of(session, rule)}
    assert by_subject == {"machine:api-a": "resolved", "machine:api-b": "open"}


async def test_error_rate_is_each_machines_own(
    session: AsyncSession, shared_redis: tuple[str, str]
) -> None:
    url, namespace = shared_redis
    # together 2 errors in 110 requests (1.8%), but one machine fails 20% of its requests
    settings = await _publish(
        url,
        namespace,
        _sample("api-a", 5.0, requests=100, errors=0),
        _sample("api-b", 5.0, requests=10, errors=2),
    )
    rule = await make_rule(session, "error_rate", 10)
    await _run(session, settings, NOON)
    (alert,) = await alerts_of(session, rule)
    assert (alert.subject, alert.last_value) == ("machine:api-b", 20.0)


async def test_without_redis_the_one_machine_is_this_one(session: AsyncSession) -> None:
    rule = await make_rule(session, "memory_percent", 50)
    settings = settings_for("sqlite://", machine_name="solo")
    with clock_at(NOON):
        await evaluate.evaluate(
            session,
            settings,
            now=NOON,
            host=HostSample(1.0, 75.0, 1.0),
            http=HttpTotals(),
        )
    (alert,) = await alerts_of(session, rule)
    assert (alert.subject, alert.subject_label, alert.last_value) == ("machine:solo", "solo", 75)


async def test_the_monitoring_page_lists_every_machine(
    session: AsyncSession,
    db_url: str,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    shared_redis: tuple[str, str],
) -> None:
    url, namespace = shared_redis
    await _publish(url, namespace, _sample("api-b", 33.0, requests=7, errors=1))
    headers = await auth_headers(session, await make_user(session))
    async with client_with(
        db_url, engine, sessionmaker, redis_url=url, jobs_queue=namespace, machine_name="api-a"
    ) as client:
        r = await client.get("/api/v1/monitoring/overview", headers=headers)
    assert r.status_code == 200, r.text
    listed = {m["name"]: m for m in r.json()["machines"]}
    assert set(listed) == {"api-a", "api-b"}
    assert listed["api-a"]["this"] is True
    assert listed["api-b"]["this"] is False
    other = listed["api-b"]
    assert (other["host"]["cpu_percent"], other["requests"], other["errors"]) == (33.0, 7, 1)


async def test_without_redis_the_page_shows_this_machine(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await auth_headers(session, await make_user(session))
    r = await client.get("/api/v1/monitoring/overview", headers=headers)
    assert r.status_code == 200, r.text
    (only,) = r.json()["machines"]
    assert only["this"] is True
    assert only["host"]["cpu_count"] >= 1


async def test_an_api_process_publishes_its_machine_while_it_runs(
    shared_redis: tuple[str, str],
) -> None:
    """The app's publisher (started with the app when Redis is set) puts this machine's sample
    in Redis, where every process reads it."""
    url, namespace = shared_redis
    settings = settings_for(
        "sqlite://", redis_url=url, jobs_queue=namespace, machine_name="publisher-test"
    )
    publisher = machines.Publisher(settings)
    publisher.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10  # a bound on waiting for the first sample
        found: list[machines.MachineSample] = []
        while not found and loop.time() < deadline:
            await asyncio.sleep(0.1)
            found = await machines.published(settings)
    finally:
        await publisher.stop()
    assert [s.name for s in found] == ["publisher-test"]
    assert found[0].host.cpu_count >= 1


def _process(
    name: str, cpu: float, *, pid: int, role: str = machines.API, requests: int = 0,
    at: datetime = NOON, machine_wide: bool = False,
) -> machines.MachineSample:  # fmt: skip
    return machines.MachineSample(
        name=name,
        at=at,
        host=_host(cpu),
        http=HttpTotals(requests=requests, errors=0, buckets=((0.1, requests),)),
        window_seconds=60.0 if role == machines.API else 0.0,
        role=role,
        pid=pid,
        machine_wide=machine_wide,
    )


def test_a_machines_processes_merge_into_one_reading() -> None:
    later = NOON + timedelta(seconds=5)
    merged = machines.merge(
        [
            _process("api-1", 20.0, pid=1, requests=3),
            _process("api-1", 25.0, pid=2, requests=4),
            _process("api-1", 90.0, pid=3, role=machines.WORKER, at=later),  # newest: its host
            _process("jobs-1", 70.0, pid=9, role=machines.WORKER),
            _process("api-2", 10.0, pid=1, requests=5, machine_wide=True),
            _process("api-2", 11.0, pid=2, requests=6, machine_wide=True, at=later),
        ]
    )
    by_name = {m.name: m for m in merged}
    assert list(by_name) == ["api-1", "api-2", "jobs-1"]
    # each process counts its own requests: summed; the host is the newest sample's
    assert (by_name["api-1"].http.requests, by_name["api-1"].host.cpu_percent) == (7, 90.0)
    assert by_name["api-1"].http.buckets == ((0.1, 7.0),)
    # multiprocess mode: each process already reads the whole machine: the newest one's
    assert by_name["api-2"].http.requests == 6
    # a machine of workers only: its host, and no HTTP window (no error-rate reading)
    jobs = by_name["jobs-1"]
    assert (jobs.host.cpu_percent, jobs.http.requests, jobs.window_seconds) == (70.0, 0, 0.0)
    assert jobs.role == machines.WORKER


async def test_every_process_publishes_its_own_sample_and_readers_merge_them(
    shared_redis: tuple[str, str],
) -> None:
    """Two API processes of one machine no longer overwrite each other's sample, and a machine
    that runs only job workers is published (its workers start a publisher too)."""
    url, namespace = shared_redis
    settings = await _publish(
        url,
        namespace,
        _process("api-1", 20.0, pid=101, requests=3),
        _process("api-1", 20.0, pid=102, requests=4),
    )
    worker_settings = settings_for(
        "sqlite://", redis_url=url, jobs_queue=namespace, machine_name="jobs-1"
    )
    client = Redis.from_url(url)
    try:
        sample = await machines.Publisher(worker_settings, role=machines.WORKER).once(client)
    finally:
        await client.aclose()  # type: ignore[attr-defined]
    assert (sample.role, sample.http.requests, sample.window_seconds) == ("worker", 0, 0.0)
    found = {m.name: m for m in await machines.published(settings)}
    assert set(found) == {"api-1", "jobs-1"}
    assert found["api-1"].http.requests == 7
    assert found["jobs-1"].host.cpu_count >= 1

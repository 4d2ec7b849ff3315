"""The metrics an alert rule may watch, each read through the domain that owns it.

A reader returns one `Reading` per subject the rule covers: each machine (host and HTTP
figures, monitoring/machines.py), the chain (queue figures), each store, or each terminal. A
subject with no reading (no requests in the window, a store closed now) does not meet any
condition.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.config import Settings
from selfmart.jobs import service as jobs
from selfmart.models import AlertRule
from selfmart.monitoring import machines as machines_
from selfmart.monitoring import overview
from selfmart.orders import service as orders
from selfmart.payments import records
from selfmart.reconciliation import differences
from selfmart.stores import service as stores
from selfmart.terminals import presence

CHAIN = "chain"


@dataclass(frozen=True, slots=True)
class Reading:
    subject: str
    value: float
    label: str = ""
    store_id: int | None = None


@dataclass(frozen=True, slots=True)
class HostSample:
    cpu_percent: float
    memory_percent: float
    disk_percent: float


@dataclass(frozen=True, slots=True)
class MachineFigures:
    """One machine's figures as the host and HTTP rules read them."""

    name: str
    host: HostSample
    #: requests of the window (None: no window yet)
    http: overview.HttpTotals | None


@dataclass
class Context:
    """What one evaluation run reads once and every rule shares."""

    session: AsyncSession
    settings: Settings
    now: datetime
    #: the host's figures (read through psutil when not given)
    host: HostSample | None = None
    #: requests answered since the previous run of this process (None: the first run)
    http: overview.HttpTotals | None = None
    #: every machine's figures (read once: Redis's published samples, or this machine's)
    machines: list[MachineFigures] | None = None
    _cache: dict[str, object] = field(default_factory=dict)

    async def host_sample(self) -> HostSample:
        if self.host is None:
            h = await asyncio.to_thread(overview.host, self.settings)
            self.host = HostSample(h.cpu_percent, h.memory_percent, h.disk_percent)
        return self.host

    async def machine_figures(self) -> list[MachineFigures]:
        """With Redis, the machines that published a sample (none published: no reading);
        without, this machine alone, as its own psutil and metrics see it."""
        if self.machines is None:
            if self.settings.redis_url and self.host is None:
                self.machines = [
                    MachineFigures(
                        s.name,
                        HostSample(s.host.cpu_percent, s.host.memory_percent, s.host.disk_percent),
                        s.http if s.window_seconds > 0 else None,
                    )
                    for s in await machines_.published(self.settings)
                ]
            else:
                self.machines = [
                    MachineFigures(
                        machines_.name_of(self.settings), await self.host_sample(), self.http
                    )
                ]
        return self.machines

    async def backlog(self) -> jobs.Backlog:
        if "backlog" not in self._cache:
            self._cache["backlog"] = await jobs.backlog(self.session, self.now)
        value = self._cache["backlog"]
        assert isinstance(value, jobs.Backlog)
        return value


Reader = Callable[[Context, AlertRule], Awaitable[list[Reading]]]


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    unit: str
    #: chain: one reading for the deployment; machine: one per machine (a store scope is
    #: refused for both); store: one per store (or the one store of the rule); terminal: one per
    #: active terminal
    per: str
    read: Reader


def _chain(value: float | None) -> list[Reading]:
    return [] if value is None else [Reading(CHAIN, value)]


def machine_subject(name: str) -> str:
    return f"machine:{name}"


async def _per_machine(
    ctx: Context, value: Callable[[MachineFigures], float | None]
) -> list[Reading]:
    out = []
    for m in await ctx.machine_figures():
        v = value(m)
        if v is not None:
            out.append(Reading(machine_subject(m.name), v, label=m.name))
    return out


async def _cpu(ctx: Context, _rule: AlertRule) -> list[Reading]:
    return await _per_machine(ctx, lambda m: m.host.cpu_percent)


async def _memory(ctx: Context, _rule: AlertRule) -> list[Reading]:
    return await _per_machine(ctx, lambda m: m.host.memory_percent)


async def _disk(ctx: Context, _rule: AlertRule) -> list[Reading]:
    return await _per_machine(ctx, lambda m: m.host.disk_percent)


def _errors(http: overview.HttpTotals | None) -> float | None:
    if http is None or http.requests <= 0:
        return None
    return round(100.0 * http.errors / http.requests, 4)


def _p95_of(http: overview.HttpTotals | None) -> float | None:
    q = http.quantile(0.95) if http is not None else None
    return None if q is None else round(q * 1000, 3)


async def _error_rate(ctx: Context, _rule: AlertRule) -> list[Reading]:
    return await _per_machine(ctx, lambda m: _errors(m.http))


async def _p95(ctx: Context, _rule: AlertRule) -> list[Reading]:
    return await _per_machine(ctx, lambda m: _p95_of(m.http))


async def _backlog(ctx: Context, _rule: AlertRule) -> list[Reading]:
    return _chain(float((await ctx.backlog()).depth))


async def _lag(ctx: Context, _rule: AlertRule) -> list[Reading]:
    return _chain(round((await ctx.backlog()).lag_seconds, 3))


def _minutes(since: datetime, now: datetime) -> float:
    return round(max((now - since).total_seconds(), 0.0) / 60, 3)


async def _terminal_offline(ctx: Context, rule: AlertRule) -> list[Reading]:
    ids = None if rule.store_id is None else [rule.store_id]
    return [
        Reading(
            f"terminal:{t.terminal_id}",
            _minutes(t.last_heard_at, ctx.now),
            label=f"{t.code} {t.name}".strip(),
            store_id=t.store_id,
        )
        for t in await presence.active_terminals(ctx.session, ids)
    ]


async def _no_orders(ctx: Context, rule: AlertRule) -> list[Reading]:
    """Minutes without an order in each store open now, counted from its latest order or from
    when it opened, whichever is later."""
    ids = None if rule.store_id is None else [rule.store_id]
    shops = await stores.list_by_ids(ctx.session, ids)
    latest = await orders.latest_order_at(ctx.session, [s.id for s in shops])
    out = []
    for store in shops:
        opened = stores.opened_at(store, ctx.now)
        if opened is None:
            continue
        last = latest.get(store.id)
        since = max(opened, last) if last is not None else opened
        out.append(Reading(f"store:{store.id}", _minutes(since, ctx.now), store.name, store.id))
    return out


async def _payment_failures(ctx: Context, rule: AlertRule) -> list[Reading]:
    """Failed attempts as a percentage of attempts that ended within the rule's window."""
    since = ctx.now - timedelta(minutes=rule.window_minutes)
    counts = await records.outcomes(ctx.session, since, store_id=rule.store_id)
    if not counts.decided:
        return []
    value = round(100.0 * counts.failed / counts.decided, 4)
    if rule.store_id is None:
        return [Reading(CHAIN, value)]
    return [Reading(f"store:{rule.store_id}", value, store_id=rule.store_id)]


async def _reconciliation(ctx: Context, rule: AlertRule) -> list[Reading]:
    n = float(await differences.open_count(ctx.session, store_id=rule.store_id))
    if rule.store_id is None:
        return [Reading(CHAIN, n)]
    return [Reading(f"store:{rule.store_id}", n, store_id=rule.store_id)]


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("cpu_percent", "%", "machine", _cpu),
        Metric("memory_percent", "%", "machine", _memory),
        Metric("disk_percent", "%", "machine", _disk),
        Metric("error_rate", "%", "machine", _error_rate),
        Metric("p95_ms", "ms", "machine", _p95),
        Metric("job_backlog", "", "chain", _backlog),
        Metric("job_lag_seconds", "s", "chain", _lag),
        Metric("terminal_offline_minutes", "min", "terminal", _terminal_offline),
        Metric("store_no_orders_minutes", "min", "store", _no_orders),
        Metric("payment_failure_rate", "%", "store", _payment_failures),
        Metric("reconciliation_open", "", "store", _reconciliation),
    )
}

"""The registry of background jobs and their schedules, filled by each domain's `tasks.py`.

A domain declares a job with `@task("orders.close_unpaid", schedule=[Every(60)])`; the runtime
registers every declared job on whichever taskiq broker it builds (in-memory or Redis), so the
same declarations serve `make run`, the tests and the scale-out workers.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

JobFn = Callable[..., Awaitable[Any]]
F = TypeVar("F", bound=JobFn)


@dataclass(frozen=True, slots=True)
class Every:
    """Run every `seconds` seconds (and once when the scheduler starts)."""

    seconds: int


@dataclass(frozen=True, slots=True)
class Cron:
    """Run on a cron expression, read in `timezone` (default: settings.default_timezone)."""

    expr: str
    timezone: str | None = None


Schedule = Every | Cron


@dataclass(frozen=True, slots=True)
class JobDef:
    name: str
    fn: JobFn
    schedules: tuple[Schedule, ...]


#: Every declared job by name.
JOBS: dict[str, JobDef] = {}


def task(name: str, *, schedule: Sequence[Schedule] = ()) -> Callable[[F], F]:
    """Declare `fn` as the background job `name`. Its arguments must be ids and plain values
    (they travel as JSON); it opens its own sessions. The function is returned unchanged, so
    tests can await it directly."""

    def deco(fn: F) -> F:
        known = JOBS.get(name)
        if known is not None and (known.fn.__module__, known.fn.__qualname__) != (
            fn.__module__,
            fn.__qualname__,
        ):
            raise ValueError(f"job {name!r} is declared twice")
        JOBS[name] = JobDef(name=name, fn=fn, schedules=tuple(schedule))
        return fn

    return deco


_discovered = False


def discover() -> None:
    """Import `selfmart.<domain>.tasks` for every domain that has one (once per process)."""
    global _discovered
    if _discovered:
        return
    import selfmart

    for info in pkgutil.iter_modules(selfmart.__path__):
        if not info.ispkg:
            continue
        name = f"selfmart.{info.name}.tasks"
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
    _discovered = True

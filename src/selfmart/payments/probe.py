"""A wall-clock probe of the callbacks' fast lane, for finding where a callback waits: on only
when the `callback_probe` setting (SELFMART_CALLBACK_PROBE) names a file; off, the lane checks
one attribute.

Each stage's time is added up per callback (or per batch): the rate limit, reading the body,
verifying, waiting in the group commit's queue, the drain's connection, the statement (its
commit included), the after-commit work, the wake-up of the waiting request once its batch is
answered, and sending the answer; plus the lane's whole time and the event loop's lag (how
late a 1 ms sleep wakes: the time the loop was busy with something else). The figures go to
the file as JSON every `EVERY` callbacks and when the process stops; `bench_callbacks.py`
prints them after its run when the variable is set.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

EVERY = 500


class Probe:
    """Stage timings, summed and sampled (for percentiles)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.samples: dict[str, list[float]] = {}
        self.callbacks = 0
        self._lag_task: asyncio.Task[None] | None = None
        atexit.register(self._dump_at_exit)

    def add(self, stage: str, seconds: float) -> None:
        self.samples.setdefault(stage, []).append(seconds)

    def done(self) -> None:
        """One callback answered by the lane."""
        self.callbacks += 1
        if self._lag_task is None:
            self._lag_task = asyncio.get_running_loop().create_task(self._lag())
        if self.callbacks % EVERY == 0:
            self.dump()

    async def _lag(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            self.add("loop_lag", time.perf_counter() - started - 0.001)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"callbacks": self.callbacks, "pid": os.getpid(), "stages": {}}
        for stage, values in self.samples.items():
            ordered = sorted(values)
            n = len(ordered)
            out["stages"][stage] = {
                "n": n,
                "mean_ms": sum(ordered) / n * 1000,
                "p50_ms": ordered[n // 2] * 1000,
                "p99_ms": ordered[min(n - 1, int(n * 0.99))] * 1000,
                "max_ms": ordered[-1] * 1000,
            }
        return out

    def dump(self) -> None:
        self.path.write_text(json.dumps(self.summary(), indent=1))

    def _dump_at_exit(self) -> None:
        # a test's temporary directory may be gone by the time the interpreter exits
        with contextlib.suppress(OSError):
            self.dump()


_PROBES: dict[Path, Probe] = {}


def for_path(path: Path | None) -> Probe | None:
    """The process's probe writing to `path` (the setting), or None when it is unset."""
    if path is None:
        return None
    if path not in _PROBES:
        _PROBES[path] = Probe(path)
    return _PROBES[path]

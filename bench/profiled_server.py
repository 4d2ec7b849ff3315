"""uvicorn under cProfile, for finding where a benchmark's server spends its CPU:
`python -m bench.profiled_server <label> <uvicorn's arguments>` runs uvicorn as `python -m
uvicorn <arguments>` would, with the profiler on from the moment the server has started (the
app's lifespan done, so imports and start-up work are left out) until it begins to shut down,
and writes the figures to `$SELFMART_BENCH_PROFILE/<label>-<pid>.prof` (read them with
`pstats`). The profiler's clock is the main thread's CPU time (`time.thread_time`), so the
waits of a loaded machine (a shared one: other processes running) are not counted.

`bench_callbacks.py` serves its two apps this way when SELFMART_BENCH_PROFILE names a
directory. The profiler slows the server two- to threefold and weighs most on code that makes
many small Python calls, so its figures say where the CPU goes, not the rate.
"""

from __future__ import annotations

import cProfile
import os
import sys
import time
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn import server


def main() -> None:
    label, *arguments = sys.argv[1:]
    out = Path(os.environ["SELFMART_BENCH_PROFILE"]) / f"{label}-{os.getpid()}.prof"
    profiler = cProfile.Profile(time.thread_time)
    startup, shutdown = server.Server.startup, server.Server.shutdown

    async def started(self: server.Server, sockets: Any = None) -> None:
        await startup(self, sockets)
        profiler.enable()

    async def stopping(self: server.Server, sockets: Any = None) -> None:
        # here, not in an atexit handler: selfmart's server process did not run one (the
        # verify-only app's did; why was not looked into)
        profiler.disable()
        profiler.dump_stats(out)
        await shutdown(self, sockets)

    server.Server.startup = started  # type: ignore[method-assign]
    server.Server.shutdown = stopping  # type: ignore[method-assign]
    sys.argv = ["uvicorn", *arguments]
    uvicorn.main()


if __name__ == "__main__":
    main()

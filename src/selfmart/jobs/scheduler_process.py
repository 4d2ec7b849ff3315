"""The `selfmart scheduler` process: run taskiq's scheduler loop until Ctrl-C or SIGTERM, and
stop within a bounded time whatever a library does with the cancellation.

Python's own Ctrl-C handling (`asyncio.run`) cancels the main task from a signal handler that
runs between any two bytecodes, and after the main task it cancels every task left and waits
for all of them without a limit. Under load the scheduler has been seen not to stop after a
Ctrl-C with its event loop idle, waiting on something that never came. Here the signals are
taken by the event loop itself (`loop.add_signal_handler`), the scheduler is cancelled as a
task, the tasks it leaves (sends in flight) are cancelled after it, and each step has a grace
period: past it, the process writes every task's stack to stderr (what it waited on) and exits
with `STUCK`, so an operator's Ctrl-C or a supervisor's SIGTERM always ends it. A second Ctrl-C
does the same at once. SIGUSR2 writes the tasks' stacks without stopping.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import traceback
from collections.abc import Coroutine
from types import CoroutineType, FrameType
from typing import Any, TextIO

log = logging.getLogger(__name__)

#: exit status of a process that did not stop within its grace period (or on a second signal)
STUCK = 70
#: seconds the scheduler has to stop after a signal, and again the tasks it leaves
GRACE_SECONDS = 20.0


def _await_chain(coro: Any) -> list[FrameType]:
    """The frames of a suspended coroutine and of everything it awaits, outermost first."""
    frames: list[FrameType] = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
        if frame is None:
            frame = getattr(coro, "gi_frame", None)
        if frame is not None:
            frames.append(frame)
        coro = (
            getattr(coro, "cr_await", None)
            or getattr(coro, "ag_await", None)
            or getattr(coro, "gi_yieldfrom", None)
        )
    return frames


def dump_tasks(out: TextIO | None = None) -> None:
    """Write every task of the running loop with the chain of awaits it is suspended in."""
    out = out or sys.stderr
    tasks = asyncio.all_tasks()
    parts = [f"--- {len(tasks)} asyncio tasks (pid {os.getpid()}) ---\n"]
    for task in tasks:
        parts.append(f"task {task.get_name()!r}: {task!r}\n")
        coro = task.get_coro()
        frames = _await_chain(coro) if isinstance(coro, CoroutineType) else []
        parts.extend("".join(traceback.format_stack(frame, limit=1)) for frame in frames)
    parts.append("--- end of tasks ---\n")
    # written straight to the stream, not through logging: the dump is for when the process
    # is stuck, and a log handler may be what it is stuck behind
    out.write("".join(parts))
    out.flush()


def _give_up(why: str) -> None:
    log.error("scheduler process: %s; stopping it hard (exit %d)", why, STUCK)
    dump_tasks()
    sys.stderr.flush()
    os._exit(STUCK)


async def _run(main: Coroutine[Any, Any, None], grace: float) -> None:
    loop = asyncio.get_running_loop()
    signalled = asyncio.Event()

    def on_signal(signum: int) -> None:
        if signalled.is_set():
            _give_up(f"{signal.Signals(signum).name} again while stopping")
        log.warning("scheduler process: %s, stopping", signal.Signals(signum).name)
        signalled.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    loop.add_signal_handler(signal.SIGUSR2, dump_tasks)

    scheduler = asyncio.create_task(main, name="selfmart-scheduler")
    waiter = asyncio.create_task(signalled.wait(), name="selfmart-scheduler-signals")
    await asyncio.wait({scheduler, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if not scheduler.done():
        scheduler.cancel()
        done, _ = await asyncio.wait({scheduler}, timeout=grace)
        if not done:
            _give_up(f"the scheduler did not stop within {grace:g} s of the signal")
    failure = None if scheduler.cancelled() else scheduler.exception()
    # what the scheduler leaves running (a send in flight): cancelled and waited for here,
    # with a limit, rather than by asyncio.run without one
    me = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
    for task in left:
        task.cancel()
    if left:
        _, pending = await asyncio.wait(left, timeout=grace)
        if pending:
            _give_up(f"{len(pending)} task(s) did not end within {grace:g} s of being cancelled")
    if failure is not None:
        raise failure


def run(main: Coroutine[Any, Any, None], *, grace: float = GRACE_SECONDS) -> None:
    """Run `main` (taskiq's `run_scheduler`) until it ends or a signal stops it."""
    asyncio.run(_run(main, grace))

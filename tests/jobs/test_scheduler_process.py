"""`selfmart scheduler`'s process: a signal always stops it, within its grace period.

Each case runs `scheduler_process.run` in a child Python process (a process that gives up ends
with `os._exit`), with a stand-in for taskiq's scheduler loop, and signals it as an operator
or a supervisor would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from selfmart.jobs.scheduler_process import STUCK

SRC = str(Path(__file__).resolve().parents[2] / "src")

PROGRAM = """
import asyncio, sys
from selfmart.jobs import scheduler_process

async def polite():
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        print("stopping", flush=True)
        await asyncio.sleep(0.1)  # its shutdown takes a moment, then it returns

async def stubborn():
    while True:  # swallows every cancellation: what a stuck shutdown looks like
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            print("ignored a cancel", flush=True)

async def leaves_a_stubborn_send():
    asyncio.get_running_loop().create_task(stubborn(), name="send-in-flight")
    await polite()

async def fails():
    raise RuntimeError("broker unreachable")

async def main_of(name):
    print("ready", flush=True)
    await globals()[name]()

scheduler_process.run(main_of(sys.argv[1]), grace=float(sys.argv[2]))
print("returned", flush=True)
"""


def _start(main: str, grace: float = 5.0) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(PROGRAM), main, str(grace)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)  # the signal handlers are installed before main runs; let it reach its await
    return proc


def _finish(proc: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_cancels_the_scheduler_and_the_process_ends_cleanly(signum: int) -> None:
    proc = _start("polite")
    proc.send_signal(signum)
    code, out = _finish(proc)
    assert code == 0, out
    assert "stopping" in out
    assert "returned" in out
    assert signal.Signals(signum).name in out  # the log says why it stopped


def test_a_scheduler_that_ignores_the_cancel_is_stopped_hard_with_its_tasks_written() -> None:
    proc = _start("stubborn", grace=1.0)
    proc.send_signal(signal.SIGINT)
    code, out = _finish(proc)
    assert code == STUCK, out
    assert "ignored a cancel" in out
    assert "did not stop within 1 s" in out
    # the dump names the coroutine it is stuck in, with its line
    assert "in stubborn" in out
    assert "asyncio tasks" in out
    assert "returned" not in out


def test_a_send_left_behind_that_ignores_the_cancel_is_bounded_too() -> None:
    proc = _start("leaves_a_stubborn_send", grace=1.0)
    proc.send_signal(signal.SIGTERM)
    code, out = _finish(proc)
    assert code == STUCK, out
    assert "stopping" in out  # the scheduler itself stopped
    assert "1 task(s) did not end within 1 s" in out
    assert "send-in-flight" in out


def test_a_second_ctrl_c_stops_it_at_once() -> None:
    proc = _start("stubborn", grace=600)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)  # the first signal was taken: the scheduler was cancelled and ignored it
    proc.send_signal(signal.SIGINT)
    code, out = _finish(proc)
    assert code == STUCK, out
    assert "SIGINT again while stopping" in out


def test_sigusr2_writes_the_tasks_and_keeps_running() -> None:
    proc = _start("polite")
    proc.send_signal(signal.SIGUSR2)
    assert proc.stdout is not None
    lines = []
    for _ in range(50):
        line = proc.stdout.readline()
        lines.append(line)
        if "end of tasks" in line:
            break
    dump = "".join(lines)
    assert "in polite" in dump
    assert "selfmart-scheduler" in dump
    assert proc.poll() is None  # still running
    proc.send_signal(signal.SIGINT)
    code, out = _finish(proc)
    assert code == 0, dump + out


def test_a_scheduler_that_fails_ends_the_process_with_its_error() -> None:
    proc = _start("fails")
    code, out = _finish(proc)
    assert code == 1, out
    assert "RuntimeError: broker unreachable" in out
    assert "returned" not in out

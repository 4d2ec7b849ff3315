"""Jobs for tests: one that counts with progress, one that fails, one that sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from selfmart.errors import ErrorDetail, ValidationFailed
from selfmart.jobs import runtime
from selfmart.jobs import service as jobs
from selfmart.jobs.registry import task
from selfmart.models import JobRun

#: token -> progress values the body saw committed while it ran
SEEN_PROGRESS: dict[str, list[int]] = {}
#: the token of every run that started
RUNS: list[str] = []


@jobs.job("test.count")
async def count(run: jobs.RunningJob) -> Mapping[str, Any]:
    token = str(run.params["token"])
    RUNS.append(token)
    total = int(run.params["n"])
    for i in range(1, total + 1):
        await run.progress(i, total)
        async with runtime.sessionmaker()() as s:
            seen = await s.scalar(select(JobRun.progress).where(JobRun.id == run.id))
        SEEN_PROGRESS.setdefault(token, []).append(int(seen or 0))
    return {"counted": total, "label": "计数"}


@jobs.job("test.explode")
async def explode(run: jobs.RunningJob) -> None:
    await run.progress(1, 10)
    raise ValueError("the file has no header row")


@jobs.job("test.refuse")
async def refuse(run: jobs.RunningJob) -> None:
    raise ValidationFailed(
        "The file is a zip archive but not an xlsx workbook",
        details=[ErrorDetail(field="file", reason="not_a_spreadsheet", message="not xlsx")],
    )


#: tokens of sleepers that started, and of those that were cancelled
SLEEPERS: dict[str, str] = {}


@task("test.sleep")
async def sleep_long(token: str) -> None:
    SLEEPERS[token] = "started"
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        SLEEPERS[token] = "cancelled"
        raise

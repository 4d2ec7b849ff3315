"""Imports that run as jobs: the uploaded file is kept in media storage while its job runs,
then removed. Product and member imports start and read their uploads through here."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.catalog import images as media
from selfmart.iam.actor import Actor
from selfmart.jobs import runtime
from selfmart.jobs import service as jobs
from selfmart.kit.tabular import Table
from selfmart.models import JobRun


async def start_import_job(
    session: AsyncSession,
    *,
    kind: str,
    table: Table,
    data: bytes,
    filename: str | None,
    params: Mapping[str, Any],
    audit_action: str,
    audit_after: Mapping[str, Any],
    actor: Actor,
    storage: media.Storage,
) -> JobRun:
    """Keep the upload in media storage and queue job `kind` (it starts after commit, with
    `key` and `filename` beside `params`); the start is audited as `audit_action`."""
    key = f"imports/{uuid.uuid4().hex}.{table.kind}"
    await anyio.to_thread.run_sync(storage.put, key, data, "application/octet-stream")
    rows = len(table.rows)
    run = await jobs.start_job(
        session,
        kind=kind,
        created_by=actor,
        params={"key": key, "filename": filename, **params},
        total=rows,
    )
    await audit.record(
        session, actor, audit_action, "job_run", run.id,
        after={"file": filename, "rows": rows, **audit_after},
    )  # fmt: skip
    return run


@asynccontextmanager
async def kept_upload(run: jobs.RunningJob) -> AsyncIterator[bytes]:
    """The upload a job started by `start_import_job` reads; removed when the job ends,
    whether it succeeded or not."""
    key = run.params["key"]
    storage = media.make_storage(runtime.settings())
    try:
        yield await anyio.to_thread.run_sync(storage.get, key)
    finally:
        await anyio.to_thread.run_sync(storage.delete, key)

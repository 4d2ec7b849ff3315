"""Large member imports as a background job, like the product import: above the row threshold
the upload is kept in media storage and a job checks (and, unless a dry run, writes) it, with
progress in `job_runs`; its result is the same row-by-row report. Small files stay synchronous."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.catalog import images as media
from selfmart.iam.actor import Actor
from selfmart.jobs import runtime, uploads
from selfmart.jobs import service as jobs
from selfmart.kit import rowimport
from selfmart.kit.tabular import Table
from selfmart.members import importer
from selfmart.members.schemas import MemberImportReport, MemberImportStarted

IMPORT_JOB = "members.import"


async def submit(
    session: AsyncSession,
    data: bytes,
    filename: str | None,
    options: importer.ImportOptions,
    *,
    actor: Actor,
    storage: media.Storage,
    sync_max_rows: int,
) -> MemberImportReport | MemberImportStarted:
    """Read the upload (a bad file is refused here, at once); check or import small files in
    this transaction and hand larger ones to a background job."""
    table = await rowimport.read_upload(
        data, filename, encoding=options.encoding, max_rows=options.max_rows
    )
    if len(table.rows) <= sync_max_rows:
        return await importer.import_table(session, table, options, actor=actor, filename=filename)
    importer.COLUMNS.map(table.headers)  # a file with wrong columns fails now, not in the job
    return await _start(session, table, data, filename, options, actor=actor, storage=storage)


async def _start(
    session: AsyncSession,
    table: Table,
    data: bytes,
    filename: str | None,
    options: importer.ImportOptions,
    *,
    actor: Actor,
    storage: media.Storage,
) -> MemberImportStarted:
    """Keep the upload in media storage and queue the job; it starts after commit."""
    run = await uploads.start_import_job(
        session, kind=IMPORT_JOB, table=table, data=data, filename=filename,
        params={
            "mode": options.mode,
            "dry_run": options.dry_run,
            "encoding": table.encoding or options.encoding,
            "max_rows": options.max_rows,
        },
        audit_action="member.import_start",
        audit_after={"mode": options.mode, "dry_run": options.dry_run},
        actor=actor, storage=storage,
    )  # fmt: skip
    return MemberImportStarted(job_id=run.id, rows=len(table.rows))


@jobs.job(IMPORT_JOB)
async def import_members(run: jobs.RunningJob) -> Mapping[str, Any]:
    p = run.params
    options = importer.ImportOptions(
        mode=p["mode"], dry_run=bool(p["dry_run"]), encoding=p["encoding"],
        max_rows=int(p["max_rows"]),
    )  # fmt: skip
    async with uploads.kept_upload(run) as data:
        table = await rowimport.read_upload(
            data, p["filename"], encoding=options.encoding, max_rows=options.max_rows
        )
        total = len(table.rows)
        await run.progress(0, total)

        async def written(n: int, _of: int) -> None:
            await run.progress(n)

        async with runtime.transaction() as session:
            actor = await jobs.started_by(session, run.created_by, IMPORT_JOB)
            # SQLite has one writer: a progress commit from another connection would wait for
            # the import's own transaction, so progress is reported while writing only on
            # PostgreSQL.
            live = session.get_bind().dialect.name != "sqlite"
            report = await importer.import_table(
                session, table, options, actor=actor, filename=p["filename"],
                progress=written if live else None,
            )  # fmt: skip
        await run.progress(total, total)
        return report.model_dump(mode="json")

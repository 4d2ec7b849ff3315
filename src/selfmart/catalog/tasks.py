"""Background jobs of the catalog: large product imports, with progress in `job_runs`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.catalog import images as media
from selfmart.catalog import importer
from selfmart.catalog.schemas import ImportReport, ImportStarted
from selfmart.iam.actor import Actor
from selfmart.jobs import runtime, uploads
from selfmart.jobs import service as jobs
from selfmart.kit.tabular import Table

IMPORT_JOB = "catalog.import_products"


async def start_import(
    session: AsyncSession,
    table: Table,
    data: bytes,
    filename: str | None,
    options: importer.ImportOptions,
    *,
    actor: Actor,
    storage: media.Storage,
) -> ImportStarted:
    """Keep the upload in media storage and queue the import; it starts after commit."""
    run = await uploads.start_import_job(
        session,
        kind=IMPORT_JOB,
        table=table,
        data=data,
        filename=filename,
        params={
            "mode": options.mode,
            "encoding": table.encoding or options.encoding,
            "create_categories": options.create_categories,
            "create_tags": options.create_tags,
            "max_rows": options.max_rows,
            "store_ids": options.store_ids,
        },
        audit_action="product.import_start",
        audit_after={"mode": options.mode},
        actor=actor,
        storage=storage,
    )
    return ImportStarted(job_id=run.id, rows=len(table.rows))


@jobs.job(IMPORT_JOB)
async def import_products(run: jobs.RunningJob) -> Mapping[str, Any]:
    p = run.params
    options = importer.ImportOptions(
        mode=p["mode"],
        encoding=p["encoding"],
        create_categories=bool(p["create_categories"]),
        create_tags=bool(p["create_tags"]),
        max_rows=int(p["max_rows"]),
        # already resolved from the user's stores when the job was started
        store_ids=[int(i) for i in p.get("store_ids") or []],
    )
    async with uploads.kept_upload(run) as data:
        table = await importer.read_upload(data, p["filename"], options)
        await run.progress(0, len(table.rows))
        async with runtime.transaction() as session:
            actor = await jobs.started_by(session, run.created_by, IMPORT_JOB)
            # SQLite has one writer: a progress commit from another connection would wait for
            # the import's own transaction, so progress is reported while writing only on
            # PostgreSQL.
            live = session.get_bind().dialect.name != "sqlite"
            report = await importer.import_table(
                session,
                table,
                options,
                actor=actor,
                filename=p["filename"],
                progress=run.progress if live else None,
            )
        await run.progress(len(table.rows), len(table.rows))
        return report.model_dump(mode="json")


async def submit_import(
    session: AsyncSession,
    data: bytes,
    filename: str | None,
    options: importer.ImportOptions,
    *,
    actor: Actor,
    storage: media.Storage,
    sync_max_rows: int,
) -> ImportReport | ImportStarted:
    """Read the upload (a bad file is refused here, at once); import small files in this
    transaction and hand larger ones to a background job."""
    table = await importer.read_upload(data, filename, options)
    if len(table.rows) <= sync_max_rows:
        return await importer.import_table(session, table, options, actor=actor, filename=filename)
    importer.map_headers(table.headers)  # a file with wrong columns fails now, not in the job
    return await start_import(session, table, data, filename, options, actor=actor, storage=storage)

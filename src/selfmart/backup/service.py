"""Making, keeping and restoring backups.

A backup dumps the database and copies the uploaded files into a staging directory inside the
backup directory (so a full disk shows itself before anything is replaced), writes the archive
under a temporary name, flushes it and renames it into place; only then are archives beyond
`backup_keep` deleted. Any failure removes what it wrote and keeps every earlier archive.

A restore first extracts and verifies the whole archive (manifest, sizes, checksums, migration
head); only a verified archive replaces the database and the uploaded files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfmart import __version__
from selfmart.backup import archive, database
from selfmart.backup.exceptions import ArchiveInvalid, BackupFailed
from selfmart.config import Settings
from selfmart.kit.time import utcnow

log = logging.getLogger(__name__)

MEDIA = "media"


@dataclass
class BackupResult:
    path: Path
    size: int
    manifest: dict[str, Any]
    deleted: list[str] = field(default_factory=list)
    #: the key the archive was uploaded under, when S3 is configured
    s3_key: str | None = None


def _media_files(settings: Settings) -> list[Path]:
    """Uploaded files kept on this machine (on S3 media storage they are not ours to copy)."""
    root = settings.media_dir
    if settings.media_storage != "local" or not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _stage_media(settings: Settings, staging: Path) -> None:
    for src in _media_files(settings):
        rel = src.relative_to(settings.media_dir).as_posix()
        dst = staging / MEDIA / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src.read_bytes())


def archives(settings: Settings) -> list[Path]:
    """The local archives, oldest first (their names sort by time)."""
    root = settings.backup_dir
    if not root.is_dir():
        return []
    return sorted(
        p
        for p in root.iterdir()
        if p.is_file() and p.name.startswith(archive.PREFIX) and p.name.endswith(archive.SUFFIX)
    )


def _s3_client(settings: Settings) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=(
            settings.s3_access_key.get_secret_value() if settings.s3_access_key else None
        ),
        aws_secret_access_key=(
            settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None
        ),
    )


def _upload(settings: Settings, path: Path) -> tuple[str, list[str]]:
    """Upload the archive, then keep only the newest `backup_keep` archives under the prefix."""
    bucket = settings.backup_s3_bucket
    assert bucket
    s3 = _s3_client(settings)
    key = settings.backup_s3_prefix + path.name
    s3.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": "application/gzip"})
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=settings.backup_s3_prefix + archive.PREFIX
    ):
        keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(archive.SUFFIX)]
    old = sorted(keys)[: -settings.backup_keep]
    for k in old:
        s3.delete_object(Bucket=bucket, Key=k)
    return key, old


def _make(settings: Settings, head: str | None, tables: dict[str, int]) -> BackupResult:
    root = settings.backup_dir
    now = utcnow()
    name = f"{archive.PREFIX}{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z{archive.SUFFIX}"
    final = root / name
    partial = root / f".{name}.partial"
    staging: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
        db_path = database.dump(settings.database_url, staging)
        _stage_media(settings, staging)
        files = sorted(p for p in staging.rglob("*") if p.is_file())
        manifest: dict[str, Any] = {
            "format": archive.FORMAT,
            "selfmart_version": __version__,
            "created_at": now.isoformat(),
            "migration_head": head,
            "database": {
                "dialect": database.dialect_of(settings.database_url),
                "path": db_path,
                "tables": tables,
            },
            "media": {
                "storage": settings.media_storage,
                "included": settings.media_storage == "local",
            },
            "files": [
                {
                    "path": p.relative_to(staging).as_posix(),
                    "size": p.stat().st_size,
                    "sha256": archive.sha256_of(p),
                }
                for p in files
            ],
        }
        archive.write(partial, staging, manifest)
        os.replace(partial, final)
    except (OSError, sqlite3.Error) as exc:  # sqlite3: "database or disk is full"
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        reason = getattr(exc, "strerror", None) or str(exc)
        raise BackupFailed(
            f"could not write the backup to {root}: {reason}; earlier backups are kept"
        ) from exc
    except BackupFailed as exc:  # a dump tool failed (pg_dump: "No space left on device")
        raise BackupFailed(f"{exc.message}; earlier backups are kept") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise
    finally:
        if staging is not None:
            archive.remove_tree(staging)
    deleted = [p.name for p in archives(settings)[: -settings.backup_keep]]
    for old in deleted:
        with contextlib.suppress(OSError):
            (root / old).unlink()
    return BackupResult(path=final, size=final.stat().st_size, manifest=manifest, deleted=deleted)


async def backup(settings: Settings) -> BackupResult:
    """Make one archive; keep `backup_keep`; upload it when `backup_s3_bucket` is set.

    An S3 failure leaves the local archive in place and raises BackupFailed saying so."""
    head, tables = await database.state(settings.database_url)
    result = await asyncio.to_thread(_make, settings, head, tables)
    log.info("backup written: %s (%d bytes)", result.path, result.size)
    if settings.backup_s3_bucket:
        try:
            result.s3_key, _ = await asyncio.to_thread(_upload, settings, result.path)
        except Exception as exc:  # botocore's errors have no common base worth naming
            raise BackupFailed(
                f"the backup {result.path.name} was written locally but not uploaded to "
                f"s3://{settings.backup_s3_bucket}: {exc}"
            ) from exc
    return result


@dataclass
class RestorePlan:
    """What a restore of the archive would do, found without changing anything."""

    archive: Path
    manifest: dict[str, Any]
    current_head: str | None
    #: table -> (rows now, rows in the archive), for the tables whose count would change
    tables: dict[str, tuple[int, int]]
    media_added: list[str]
    media_replaced: list[str]
    media_removed: list[str]
    #: the archive's head is older than this code's: migrations run after the restore
    migrate_after: bool

    def lines(self) -> list[str]:
        m = self.manifest
        out = [
            f"archive {self.archive.name}: selfmart {m['selfmart_version']}, "
            f"made {m['created_at']}, {len(m['files'])} files, checksums verified",
            f"migration head: archive {m['migration_head']}, database now {self.current_head}"
            + (" (migrations will run after the restore)" if self.migrate_after else ""),
        ]
        if not self.tables:
            out.append("database: every table keeps its row count")
        for name, (now, then) in sorted(self.tables.items()):
            out.append(f"table {name}: {now} rows now -> {then} rows")
        if m["media"]["included"]:
            out.append(
                f"uploaded files: {len(self.media_added)} added, "
                f"{len(self.media_replaced)} replaced, {len(self.media_removed)} removed"
            )
        else:
            out.append(f"uploaded files: not in the archive (storage {m['media']['storage']})")
        return out


def _media_changes(settings: Settings, verified: archive.Verified) -> tuple[list[str], ...]:
    wanted = {
        e["path"][len(MEDIA) + 1 :]: e["sha256"]
        for e in verified.manifest["files"]
        if e["path"].startswith(MEDIA + "/")
    }
    present = {p.relative_to(settings.media_dir).as_posix(): p for p in _media_files(settings)}
    added = sorted(set(wanted) - set(present))
    removed = sorted(set(present) - set(wanted))
    replaced = sorted(
        k for k in set(wanted) & set(present) if archive.sha256_of(present[k]) != wanted[k]
    )
    return added, replaced, removed


def _apply_media(settings: Settings, verified: archive.Verified, plan: RestorePlan) -> None:
    root = settings.media_dir
    root.mkdir(parents=True, exist_ok=True)
    for rel in plan.media_added + plan.media_replaced:
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.restoring")
        tmp.write_bytes((verified.root / MEDIA / rel).read_bytes())
        os.replace(tmp, dst)
    for rel in plan.media_removed:
        (root / rel).unlink(missing_ok=True)


async def _record_restore(settings: Settings, plan: RestorePlan) -> None:
    """The restored audit log says it was restored, from what, and when (the archive's own
    entries end at its time): one entry by the operator's command."""
    from selfmart.audit import service as audit
    from selfmart.db import make_engine, make_sessionmaker
    from selfmart.iam.actor import job_actor

    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            await audit.record(
                session,
                job_actor("selfmart restore"),
                "backup.restore",
                "backup",
                plan.archive.name,
                after={
                    "archive": plan.archive.name,
                    "made_at": plan.manifest["created_at"],
                    "migration_head": plan.manifest["migration_head"],
                },
                label=plan.archive.name,
            )
            await session.commit()
    finally:
        await engine.dispose()


async def restore(settings: Settings, path: Path, *, dry_run: bool) -> RestorePlan:
    """Verify the archive and say what restoring it would change; unless `dry_run`, restore
    it: the database's contents, then the uploaded files, then any newer migrations."""
    workdir = Path(tempfile.mkdtemp(prefix="selfmart-restore-"))
    try:
        verified = await asyncio.to_thread(archive.open_verified, path, workdir)
        manifest = verified.manifest
        head = manifest.get("migration_head")
        database.check_head(head)
        dialect = database.dialect_of(settings.database_url)
        if manifest["database"]["dialect"] != dialect:
            raise ArchiveInvalid(
                f"the archive holds a {manifest['database']['dialect']} database; "
                f"this selfmart runs on {dialect}"
            )
        database.check_tools(settings.database_url)
        current_head, counts = await database.state(settings.database_url)
        archived: dict[str, int] = manifest["database"]["tables"]
        tables = {
            name: (counts.get(name, 0), archived.get(name, 0))
            for name in set(counts) | set(archived)
            if counts.get(name, 0) != archived.get(name, 0)
        }
        added, replaced, removed = (
            await asyncio.to_thread(_media_changes, settings, verified)
            if manifest["media"]["included"]
            else ([], [], [])
        )
        plan = RestorePlan(
            archive=path,
            manifest=manifest,
            current_head=current_head,
            tables=tables,
            media_added=added,
            media_replaced=replaced,
            media_removed=removed,
            migrate_after=head not in database.code_heads(),
        )
        if dry_run:
            return plan
        dumped = verified.root / manifest["database"]["path"]
        await asyncio.to_thread(database.restore, settings.database_url, dumped)
        if manifest["media"]["included"]:
            await asyncio.to_thread(_apply_media, settings, verified, plan)
        if plan.migrate_after:
            from selfmart import migrate

            await asyncio.to_thread(migrate.upgrade, settings.database_url)
        await _record_restore(settings, plan)
        log.warning("restored %s into the database and media directory", path.name)
        return plan
    finally:
        archive.remove_tree(workdir)

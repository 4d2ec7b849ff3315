"""`selfmart backup` / `selfmart restore`: an archive of the database and the uploaded files
that restores everything as it was, on SQLite and PostgreSQL; a dry run that says what would
change and changes nothing; damaged or foreign archives refused before anything is touched."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from selfmart.backup import service as backups
from selfmart.backup.exceptions import ArchiveInvalid
from selfmart.config import Settings
from selfmart.db import make_engine, make_sessionmaker
from selfmart.models import AuditLog, Store

from ..builders import make_store
from ..support import fingerprint


async def db_fingerprint(url: str) -> dict[str, tuple[int, str]]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            return await fingerprint(session)
    finally:
        await engine.dispose()


def media_state(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


async def seed(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            await make_store(session, "BK-KEEP", name="备份一店")
            await make_store(session, "BK-GONE", name="备份二店")
            await session.commit()
    finally:
        await engine.dispose()
    (settings.media_dir / "products" / "7").mkdir(parents=True)
    (settings.media_dir / "products" / "7" / "a.webp").write_bytes(b"image-a" * 100)
    (settings.media_dir / "products" / "7" / "b.webp").write_bytes(b"image-b" * 100)


async def change_everything(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            await session.execute(
                update(Store).where(Store.code == "BK-KEEP").values(name="改过的名字")
            )
            await session.execute(delete(Store).where(Store.code == "BK-GONE"))
            await make_store(session, "BK-NEW", name="备份之后新开")
            await session.commit()
    finally:
        await engine.dispose()
    (settings.media_dir / "products" / "7" / "a.webp").write_bytes(b"changed")
    (settings.media_dir / "products" / "7" / "b.webp").unlink()
    (settings.media_dir / "products" / "9.webp").write_bytes(b"added later")


async def test_backup_change_delete_restore_finds_everything_as_it_was(
    own_settings: Settings,
) -> None:
    settings = own_settings
    await seed(settings)
    before_db = await db_fingerprint(settings.database_url)
    before_media = media_state(settings.media_dir)

    result = await backups.backup(settings)
    assert result.path.parent == settings.backup_dir
    manifest = result.manifest
    assert manifest["migration_head"]
    assert manifest["database"]["tables"]["stores"] == 2
    assert {f["path"] for f in manifest["files"]} >= {
        "media/products/7/a.webp",
        "media/products/7/b.webp",
    }

    await change_everything(settings)
    changed_db = await db_fingerprint(settings.database_url)
    changed_media = media_state(settings.media_dir)
    assert changed_db != before_db

    plan = await backups.restore(settings, result.path, dry_run=True)
    assert "stores" not in plan.tables  # 2 stores before and after (one gone, one new)
    assert plan.media_replaced == ["products/7/a.webp"]
    assert plan.media_added == ["products/7/b.webp"]
    assert plan.media_removed == ["products/9.webp"]
    assert any("1 replaced" in line for line in plan.lines())
    # the dry run changed nothing
    assert await db_fingerprint(settings.database_url) == changed_db
    assert media_state(settings.media_dir) == changed_media

    await backups.restore(settings, result.path, dry_run=False)
    after_db = await db_fingerprint(settings.database_url)
    # everything as it was, and one audit entry saying it was restored
    assert {k: v for k, v in after_db.items() if k != "audit_logs"} == {
        k: v for k, v in before_db.items() if k != "audit_logs"
    }
    assert after_db["audit_logs"][0] == before_db["audit_logs"][0] + 1
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            entry = await session.scalar(
                select(AuditLog).where(AuditLog.action == "backup.restore")
            )
    finally:
        await engine.dispose()
    assert entry is not None
    assert entry.entity_id == result.path.name
    assert entry.actor_name == "selfmart restore"
    assert media_state(settings.media_dir) == before_media


async def test_dry_run_names_the_tables_whose_rows_would_change(own_settings: Settings) -> None:
    await seed(own_settings)
    result = await backups.backup(own_settings)
    engine = make_engine(own_settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            await make_store(session, "BK-3")
            await session.commit()
    finally:
        await engine.dispose()
    plan = await backups.restore(own_settings, result.path, dry_run=True)
    assert plan.tables["stores"] == (3, 2)
    assert "table stores: 3 rows now -> 2 rows" in plan.lines()


def _rewrite(
    src: Path,
    dst: Path,
    *,
    manifest_edit: dict[str, object] | None = None,
    member_edit: tuple[str, bytes] | None = None,
) -> None:
    """Copy an archive, changing its manifest or one member's bytes (and nothing else)."""
    with tarfile.open(src, "r:gz") as tin, tarfile.open(dst, "w:gz") as tout:
        for member in tin:
            data = tin.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "manifest.json" and manifest_edit:
                m = json.loads(data)
                m.update(manifest_edit)
                data = json.dumps(m).encode()
            if member_edit and member.name == member_edit[0]:
                data = member_edit[1]
            member.size = len(data)
            tout.addfile(member, io.BytesIO(data))


async def _refused(settings: Settings, archive: Path, reason: str) -> None:
    db = await db_fingerprint(settings.database_url)
    media = media_state(settings.media_dir)
    for dry_run in (True, False):
        with pytest.raises(ArchiveInvalid) as err:
            await backups.restore(settings, archive, dry_run=dry_run)
        assert reason in err.value.message
    assert await db_fingerprint(settings.database_url) == db
    assert media_state(settings.media_dir) == media


async def test_a_corrupt_archive_is_refused_before_anything_is_touched(
    own_settings: Settings, tmp_path: Path
) -> None:
    await seed(own_settings)
    good = (await backups.backup(own_settings)).path
    await change_everything(own_settings)

    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    await _refused(own_settings, truncated, "damaged or truncated")

    flipped = bytearray(good.read_bytes())
    flipped[len(flipped) // 2] ^= 0xFF
    (tmp_path / "flipped.tar.gz").write_bytes(bytes(flipped))
    await _refused(own_settings, tmp_path / "flipped.tar.gz", "")

    altered = tmp_path / "altered.tar.gz"
    _rewrite(good, altered, member_edit=("media/products/7/a.webp", b"image-x" * 100))
    await _refused(own_settings, altered, "media/products/7/a.webp: checksum differs")

    newer = tmp_path / "newer.tar.gz"
    _rewrite(good, newer, manifest_edit={"migration_head": "zzz_9999_from_the_future"})
    await _refused(own_settings, newer, "unknown to this selfmart")

    (tmp_path / "not-an-archive.tar.gz").write_text("hello")
    await _refused(own_settings, tmp_path / "not-an-archive.tar.gz", "damaged or truncated")


async def test_retention_keeps_the_newest_n(own_settings: Settings) -> None:
    settings = own_settings.model_copy(update={"backup_keep": 2})
    made = [(await backups.backup(settings)).path.name for _ in range(3)]
    assert [p.name for p in backups.archives(settings)] == made[1:]

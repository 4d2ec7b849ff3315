"""Backups that cannot be made say why and keep what was there: a full disk (a real tmpfs filled
up, in a private mount namespace; or, where that is not allowed, writes cut off by a file size
limit), an unwritable destination, missing PostgreSQL tools."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from selfmart.backup import database
from selfmart.backup import service as backups
from selfmart.backup.exceptions import BackupFailed
from selfmart.config import Settings

SELFMART = str(Path(sys.executable).with_name("selfmart"))

FULL_DISK = r"""
set -e
mount -t tmpfs -o size=2m tmpfs "$DEST"
cp "$PREVIOUS" "$DEST/"
# leave 64 KiB free: less than the database alone
head -c $((2048 * 1024 - 64 * 1024)) /dev/zero > "$DEST/filler" 2>/dev/null || true
set +e
"$SELFMART" backup
echo "rc=$?"
ls -A "$DEST"
sha256sum "$DEST/$(basename "$PREVIOUS")"
"""
#: The same run where no private tmpfs can be had: the backup's writes are cut off by a file
#: size limit instead (RLIMIT_FSIZE, which any process may lower for itself).
SIZE_LIMITED = r"""
set +e
cp "$PREVIOUS" "$DEST/"
head -c $((2048 * 1024 - 64 * 1024)) /dev/zero > "$DEST/filler"
"$PYTHON" -c "$LIMITED" "$SELFMART" backup
echo "rc=$?"
ls -A "$DEST"
sha256sum "$DEST/$(basename "$PREVIOUS")"
"""
#: Run argv[1:] with files limited to 64 KiB (less than the database alone) and SIGXFSZ
#: ignored, so that a write past the limit fails with EFBIG instead of killing the process.
LIMITED = """
import os, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
os.execv(sys.argv[1], sys.argv[1:])
"""
#: What the failed write says. A tmpfs: SQLite "database or disk is full", pg_dump and Python
#: "No space left on device". The size limit: Python "File too large", SQLite "disk I/O error",
#: pg_dump killed by SIGXFSZ (subprocess gives each tool the default action back).
REASONS = (
    "disk is full",
    "No space left on device",
    "File too large",
    "disk I/O error",
    "the file size limit (ulimit -f) was exceeded",
)


def _private_tmpfs_problem() -> str | None:
    """Why a private tmpfs cannot be mounted here (None: it can)."""
    if shutil.which("unshare") is None:
        return "util-linux's unshare is not installed"
    done = subprocess.run(
        ["unshare", "-rm", "true"], capture_output=True, text=True, timeout=30, check=False
    )
    if done.returncode != 0:
        return f"unshare -rm failed (unprivileged user namespaces off?): {done.stderr.strip()}"
    return None


@pytest.mark.parametrize("way", ["tmpfs", "size_limit"])
async def test_a_full_destination_is_reported_and_the_previous_backup_kept(
    own_settings: Settings, tmp_path: Path, way: str
) -> None:
    """Two ways to fill the destination: a real 2 MiB tmpfs (needs unshare and unprivileged
    user namespaces), and a file size limit (needs nothing; always runs, so the check never
    silently goes away)."""
    if way == "tmpfs":
        problem = await asyncio.to_thread(_private_tmpfs_problem)
        if problem is not None:
            pytest.skip(
                f"a full tmpfs needs util-linux's unshare and unprivileged user namespaces "
                f"({problem}); the size-limit variant of this test still runs"
            )
    elif sys.platform == "win32":
        pytest.skip("the size-limit variant needs POSIX RLIMIT_FSIZE and SIGXFSZ")
    previous = (await backups.backup(own_settings)).path
    digest = hashlib.sha256(previous.read_bytes()).hexdigest()
    dest = tmp_path / "full"
    dest.mkdir()
    env = {
        **os.environ,
        "SELFMART_DATABASE_URL": own_settings.database_url,
        "SELFMART_MEDIA_DIR": str(own_settings.media_dir),
        "SELFMART_BACKUP_DIR": str(dest),
        "SELFMART_SECRET_KEY": "test-secret-key-0123456789abcdef0123456789",
        "DEST": str(dest),
        "PREVIOUS": str(previous),
        "SELFMART": SELFMART,
        "PYTHON": sys.executable,
        "LIMITED": LIMITED,
    }
    command = (
        ["unshare", "-rm", "sh", "-c", FULL_DISK] if way == "tmpfs" else ["sh", "-c", SIZE_LIMITED]
    )
    done = await asyncio.to_thread(
        subprocess.run,
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = done.stdout
    assert "rc=1" in out, (out, done.stderr)
    assert any(reason in done.stderr for reason in REASONS), done.stderr
    assert "earlier backups are kept" in done.stderr
    assert "Traceback" not in done.stderr
    listed = out.split("rc=1", 1)[1].split()
    # the previous archive is there, unchanged; nothing half-written is left beside it
    assert sorted(n for n in listed if not n.startswith("/") and len(n) < 64) == sorted(
        [previous.name, "filler"]
    ), out
    assert f"{digest}  {dest / previous.name}" in out


async def test_an_unwritable_destination_is_reported(
    own_settings: Settings, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    settings = own_settings.model_copy(update={"backup_dir": blocker / "backups"})
    with pytest.raises(BackupFailed) as err:
        await backups.backup(settings)
    assert "could not write the backup" in err.value.message
    assert "Not a directory" in err.value.message


def test_missing_postgresql_tools_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no pg_dump, no pg_restore
    url = "postgresql+asyncpg://selfmart:secret@127.0.0.1:5432/selfmart"
    with pytest.raises(BackupFailed) as err:
        database.dump(url, tmp_path)
    assert "pg_dump was not found" in err.value.message
    assert "postgresql-client" in err.value.message
    with pytest.raises(BackupFailed) as err:
        database.check_tools(url)
    assert "pg_restore was not found" in err.value.message
    assert list(tmp_path.iterdir()) == []

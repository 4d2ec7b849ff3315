"""The archive: a gzipped tar whose first member, manifest.json, lists every other member with
its size and SHA-256. Reading one verifies it whole before anything is restored."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from selfmart.backup.exceptions import ArchiveInvalid

FORMAT = "selfmart-backup/1"
MANIFEST = "manifest.json"
SUFFIX = ".tar.gz"
PREFIX = "selfmart-"
_CHUNK = 1024 * 1024


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write(target: Path, staging: Path, manifest: dict[str, Any]) -> None:
    """Write the archive of `staging`'s files (as listed in the manifest) to `target`, then
    flush it to disk. The caller writes to a temporary name and renames on success."""
    body = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True).encode()
    with tarfile.open(target, "w:gz", compresslevel=6) as tar:
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(body)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(body))
        for entry in manifest["files"]:
            tar.add(staging / entry["path"], arcname=entry["path"], recursive=False)
    with target.open("rb+") as f:
        os.fsync(f.fileno())


@dataclass
class Verified:
    manifest: dict[str, Any]
    #: where the verified members were extracted (the caller removes it)
    root: Path


def _safe(name: str) -> bool:
    p = PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts and name not in {"", "."}


def open_verified(archive: Path, workdir: Path) -> Verified:
    """Extract `archive` into `workdir`, checking the manifest, every member's size and
    checksum, that every listed file is there and nothing else is. Any problem raises
    ArchiveInvalid (and leaves `workdir` for the caller to remove)."""
    if not archive.is_file():
        raise ArchiveInvalid(f"{archive} is not a file")
    manifest: dict[str, Any] | None = None
    seen: dict[str, tuple[int, str]] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if manifest is None:
                    if member.name != MANIFEST or not member.isfile():
                        raise ArchiveInvalid("the archive does not start with its manifest")
                    raw = tar.extractfile(member)
                    assert raw is not None
                    try:
                        manifest = json.loads(raw.read())
                    except ValueError as exc:
                        raise ArchiveInvalid(f"the manifest is not valid JSON: {exc}") from exc
                    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                        raise ArchiveInvalid(f"not a {FORMAT} archive")
                    continue
                if not member.isfile() or not _safe(member.name):
                    raise ArchiveInvalid(f"unexpected member {member.name!r} in the archive")
                if member.name in seen:
                    raise ArchiveInvalid(f"{member.name} appears twice in the archive")
                target = workdir / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                digest = hashlib.sha256()
                size = 0
                with target.open("wb") as out:
                    while chunk := source.read(_CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                seen[member.name] = (size, digest.hexdigest())
    except (tarfile.TarError, zlib.error, EOFError, OSError) as exc:
        raise ArchiveInvalid(f"the archive is damaged or truncated: {exc}") from exc
    if manifest is None:
        raise ArchiveInvalid("the archive is empty")
    listed = {e["path"]: (int(e["size"]), str(e["sha256"])) for e in manifest.get("files", [])}
    for path, (size, sha) in listed.items():
        if path not in seen:
            raise ArchiveInvalid(f"{path} is listed in the manifest but missing from the archive")
        if seen[path][0] != size:
            raise ArchiveInvalid(f"{path}: {seen[path][0]} bytes, the manifest says {size}")
        if seen[path][1] != sha:
            raise ArchiveInvalid(f"{path}: checksum differs from the manifest (altered?)")
    extra = sorted(set(seen) - set(listed))
    if extra:
        raise ArchiveInvalid(f"{extra[0]} is in the archive but not in its manifest")
    return Verified(manifest=manifest, root=workdir)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)

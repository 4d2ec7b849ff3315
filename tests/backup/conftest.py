"""A database of its own for each backup test: a backup reads what is committed and a restore
replaces the whole database, so these tests cannot share the suite's rolled-back one."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from selfmart.config import Settings
from selfmart.db import admin_execute

from ..conftest import _migrated, pg_base_url
from ..support import settings_for


@pytest.fixture
async def own_db(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield await _migrated(f"sqlite+aiosqlite:///{tmp_path / 'own.db'}")
        return
    base = pg_base_url()
    name = f"selfmart_backup_{uuid.uuid4().hex[:10]}"
    await admin_execute(base, f'CREATE DATABASE "{name}"')
    try:
        yield await _migrated(make_url(base).set(database=name).render_as_string(False))
    finally:
        await admin_execute(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def own_settings(own_db: str, tmp_path: Path) -> Settings:
    overrides: dict[str, Any] = {
        "media_dir": tmp_path / "media",
        "backup_dir": tmp_path / "backups",
    }
    return settings_for(own_db, **overrides)

"""The console's backups: the archives kept here, newest first, and "back up now" (audited;
a failure is a 503 backup_failed saying why)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import AuditLog

from ..builders import auth_headers, make_user


async def test_back_up_now_then_list(
    app: Any, client: httpx.AsyncClient, session: AsyncSession, tmp_path: Path
) -> None:
    app.state.settings = app.state.settings.model_copy(
        update={"backup_dir": tmp_path / "backups", "media_dir": tmp_path / "media"}
    )
    headers = await auth_headers(session, await make_user(session))
    assert (await client.get("/api/v1/backups", headers=headers)).json()["items"] == []

    made = []
    for _ in range(2):
        r = await client.post("/api/v1/backups", headers=headers)
        assert r.status_code == 201, r.text
        made.append(r.json()["name"])
    assert all((tmp_path / "backups" / name).is_file() for name in made)

    listed = (await client.get("/api/v1/backups", headers=headers)).json()
    assert [b["name"] for b in listed["items"]] == made[::-1]
    assert listed["keep"] == 7
    entry = await session.scalar(
        select(AuditLog).where(AuditLog.action == "backup.create", AuditLog.entity_id == made[0])
    )
    assert entry is not None


async def test_a_failed_backup_is_a_503_saying_why(
    app: Any, client: httpx.AsyncClient, session: AsyncSession, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("x")
    app.state.settings = app.state.settings.model_copy(
        update={"backup_dir": tmp_path / "file" / "backups"}
    )
    headers = await auth_headers(session, await make_user(session))
    r = await client.post("/api/v1/backups", headers=headers)
    assert r.status_code == 503
    assert r.json()["error"] == "backup_failed"
    assert "Not a directory" in r.json()["message"]

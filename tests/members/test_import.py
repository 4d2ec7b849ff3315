"""Member import through the console API: a dry run's row-by-row report (mobile format,
future birthdays, duplicates in the file and against existing members, unknown stores), the
same file then written all-or-nothing or good-rows-only, csv in UTF-8 and GBK, xlsx, bad
files refused naming the field, every created member audited."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import httpx
import openpyxl
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import utcnow
from selfmart.members.schemas import BIRTHDAY_ZONE
from selfmart.models import AuditLog, Member
from tests.builders import auth_headers, make_store, make_user
from tests.support import fingerprint

from .helpers import make_member, mobile

IMPORT = "/api/v1/members/import"


async def _headers(session: AsyncSession) -> dict[str, str]:
    store = await make_store(session)
    return await auth_headers(session, await make_user(session, role="super_admin", stores=[store]))


def _csv(rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode(encoding)


async def _post(
    client: httpx.AsyncClient, h: dict[str, str], data: bytes, name: str = "m.csv", **fields: Any
) -> httpx.Response:
    form = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in fields.items()}
    return await client.post(IMPORT, headers=h, files={"file": (name, data)}, data=form)


async def _data(session: AsyncSession) -> dict[str, tuple[int, str]]:
    """Every table but the audit log (a dry run is audited: it changes nothing else)."""
    return {k: v for k, v in (await fingerprint(session)).items() if k != "audit_logs"}


async def _count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Member)) or 0)


async def test_dry_run_reports_every_bad_row_and_writes_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await _headers(session)
    taken = await make_member(session)
    store = await make_store(session)
    tomorrow = (utcnow().astimezone(BIRTHDAY_ZONE).date() + timedelta(days=1)).isoformat()
    good, dup = mobile(), mobile()
    rows = [
        ["姓名", "手机号", "性别", "生日", "会员卡号", "门店", "标签", "营销同意"],
        ["张三", good, "男", "1990-05-17", "", store.code, "vip,夜间", "是"],  # row 2: good
        ["李四", "1381234567", "女", "", "", "", "", ""],  # 3: ten digits
        ["王五", dup, "", tomorrow, "", "", "", ""],  # 4: birthday tomorrow
        ["赵六", dup, "", "", "", "", "", ""],  # 5: same mobile as row 4
        ["钱七", str(taken.mobile), "", "", "", "", "", ""],  # 6: already a member
        ["孙八", mobile(), "x", "1990-02-30", "", "NOPE", "", "maybe"],  # 7: four bad cells
    ]
    before = await _data(session)
    r = await _post(client, h, _csv(rows))
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["status"], report["dry_run"]) == ("rejected", True)
    assert (report["total_rows"], report["valid_rows"], report["bad_rows"]) == (6, 1, 5)
    assert report["created"] == 0
    found = {(e["row"], e["column"], e["reason"]) for e in report["errors"]}
    assert found == {
        (3, "手机号", "bad_mobile"),
        (4, "生日", "future_birthday"),
        (5, "手机号", "duplicate_in_file"),
        (6, "手机号", "duplicate_existing"),
        (7, "性别", "bad_gender"),
        (7, "生日", "not_a_date"),
        (7, "营销同意", "not_yes_no"),
        (7, "门店", "store_not_found"),
    }
    assert await _data(session) == before
    checks = select(func.count()).where(AuditLog.action == "member.import_check")
    assert await session.scalar(checks) == 1

    # Good rows only, for real: the one good row is created, with every field, and audited.
    r = await _post(client, h, _csv(rows), dry_run=False, mode="good_rows_only")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["created"], r.json()["skipped"]) == ("partial", 1, 5)
    m = (await session.scalars(select(Member).where(Member.mobile == good))).one()
    assert (m.name, m.gender, m.birthday and m.birthday.isoformat()) == (
        "张三",
        "male",
        "1990-05-17",
    )
    assert (m.home_store_id, m.tags, m.marketing_consent, m.channel) == (
        store.id, ["vip", "夜间"], True, "import",
    )  # fmt: skip
    actions = (
        await session.scalars(
            select(AuditLog.action).where(
                AuditLog.action.in_(["member.create", "member.import"]),
                AuditLog.entity_id.in_([str(m.id), None]) | AuditLog.entity_id.is_(None),
            )
        )
    ).all()
    assert sorted(set(actions)) == ["member.create", "member.import"]
    entry = (
        await session.scalars(
            select(AuditLog).where(
                AuditLog.action == "member.create", AuditLog.entity_id == str(m.id)
            )
        )
    ).one()
    assert good not in str(entry.changes)  # the log keeps the mobile masked


async def test_all_or_nothing_writes_nothing_when_one_row_is_bad_and_all_when_none_are(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await _headers(session)
    a, b = mobile(), mobile()
    bad = [["手机号", "姓名"], [a, "甲"], ["not a phone", "乙"]]
    n = await _count(session)
    r = await _post(client, h, _csv(bad), dry_run=False)
    assert (r.json()["status"], r.json()["created"]) == ("rejected", 0)
    assert await _count(session) == n
    good = [["手机号", "姓名"], [a, "甲"], [f"+86 {b}", "乙"]]
    r = await _post(client, h, _csv(good), dry_run=True)
    assert (r.json()["status"], r.json()["valid_rows"]) == ("checked", 2)
    assert await _count(session) == n
    r = await _post(client, h, _csv(good), dry_run=False)
    assert (r.json()["status"], r.json()["created"]) == ("imported", 2)
    assert await _count(session) == n + 2
    # The same file again: every row is now a duplicate of an existing member.
    r = await _post(client, h, _csv(good), dry_run=False, mode="good_rows_only")
    assert r.json()["created"] == 0
    assert {e["reason"] for e in r.json()["errors"]} == {"duplicate_existing"}


async def test_gbk_csv_and_xlsx_read_and_a_wrong_encoding_is_refused(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await _headers(session)
    m1, m2 = mobile(), mobile()
    data = _csv([["姓名", "手机号", "性别"], ["欧阳娜娜", m1, "女"]], "gbk")
    r = await _post(client, h, data, dry_run=False, encoding="gbk")
    assert r.json()["created"] == 1, r.text
    m = (await session.scalars(select(Member).where(Member.mobile == m1))).one()
    assert (m.name, m.gender) == ("欧阳娜娜", "female")
    r = await _post(client, h, data, encoding="utf-8")
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "encoding"

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["Name", "Mobile", "Birthday"])
    ws.append(["Ann", int(m2), utcnow().replace(year=1985, month=3, day=4, tzinfo=None)])
    out = io.BytesIO()
    wb.save(out)
    r = await _post(client, h, out.getvalue(), "m.xlsx", dry_run=False)
    assert r.json()["created"] == 1, r.text
    m = (await session.scalars(select(Member).where(Member.mobile == m2))).one()
    assert m.birthday is not None
    assert m.birthday.isoformat() == "1985-03-04"


async def test_bad_files_and_columns_are_refused_naming_the_field(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await _headers(session)
    before = await fingerprint(session)
    r = await _post(client, h, b"\x89PNG\r\n\x1a\n....", "m.png")
    assert r.status_code == 415
    r = await _post(client, h, _csv([["姓名", "生日"], ["甲", "1990-01-01"]]))
    assert r.status_code == 422
    assert r.json()["details"][0]["reason"] == "missing_column"
    r = await _post(client, h, _csv([["手机号", "shoe size"], [mobile(), "42"]]))
    assert r.status_code == 422
    assert r.json()["details"][0]["reason"] == "unknown_columns"
    assert await fingerprint(session) == before
    # The export's own columns are accepted (points, tier and the like are not imported).
    r = await client.get("/api/v1/members/import/template", params={"format": "csv"}, headers=h)
    assert r.status_code == 200
    assert "手机号" in r.content.decode("utf-8-sig").splitlines()[0]


async def test_a_large_file_is_checked_and_imported_by_a_job_and_a_small_one_at_once(
    client: httpx.AsyncClient, session: AsyncSession, app: Any, jobs: Any
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"import_sync_max_rows": 3})
    h = await _headers(session)
    header = ["姓名", "手机号"]
    small = [header, ["甲", mobile()], ["乙", mobile()], ["丙", mobile()]]
    r = await _post(client, h, _csv(small), dry_run=False)
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 3  # at the threshold: still answered at once

    taken = await make_member(session)
    large = [header, *([f"会员{i}", mobile()] for i in range(5)), ["重复", str(taken.mobile)]]
    before = await _count(session)
    # The dry run of a large file is a job too; its result is the row-by-row report.
    r = await _post(client, h, _csv(large))
    assert r.status_code == 202, r.text
    assert r.json()["rows"] == 6
    job = (await client.get(f"/api/v1/jobs/{r.json()['job_id']}", headers=h)).json()
    assert job["status"] == "succeeded", job
    assert (job["progress"], job["total"]) == (6, 6)
    assert (job["result"]["status"], job["result"]["dry_run"]) == ("rejected", True)
    assert [(e["row"], e["reason"]) for e in job["result"]["errors"]] == [(7, "duplicate_existing")]
    assert await _count(session) == before

    r = await _post(client, h, _csv(large), dry_run=False, mode="good_rows_only")
    assert r.status_code == 202, r.text
    job = (await client.get(f"/api/v1/jobs/{r.json()['job_id']}", headers=h)).json()
    assert job["status"] == "succeeded", job
    assert (job["result"]["status"], job["result"]["created"]) == ("partial", 5)
    assert await _count(session) == before + 5
    started = select(func.count()).where(AuditLog.action == "member.import_start")
    assert await session.scalar(started) == 2
    # A large file with wrong columns is refused at once, not in a job.
    r = await _post(client, h, _csv([["x", "y"], *([str(i), "z"] for i in range(5))]))
    assert r.status_code == 422, r.text
    # The uploads kept for the jobs are gone.
    media = app.state.settings.media_dir
    assert not (media / "imports").exists() or list((media / "imports").iterdir()) == []

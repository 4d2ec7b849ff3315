"""GET /audit-logs/export: xlsx and csv of the current filter, scoped, times in Asia/Shanghai."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.permissions import Perm
from tests.builders import auth_headers, make_role, make_store, make_user

from .helpers import add_entry

URL = "/api/v1/audit-logs/export"
#: 23:30 UTC on 28 Feb is 07:30 on 1 March in Shanghai
T0 = datetime(2026, 2, 28, 23, 30, 5, tzinfo=UTC)


async def test_csv_has_bom_chinese_and_shanghai_times(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    store = await make_store(session)
    headers = await auth_headers(session, await make_user(session))
    await add_entry(
        session,
        T0,
        store_id=store.id,
        actor_name="张三",
        changes={"name": {"before": "可口可乐", "after": "可口可乐 500ml"}},
        note='=HYPERLINK("http://evil")',
    )
    await add_entry(session, T0 + timedelta(minutes=1), store_id=store.id, action="product.create")
    await add_entry(session, T0, store_id=None)  # another filter: not exported

    r = await client.get(URL, headers=headers, params={"store_id": store.id, "format": "csv"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"].startswith('attachment; filename="audit-logs-')
    assert r.headers["content-disposition"].endswith('.csv"')
    assert r.content.startswith(b"\xef\xbb\xbf")  # BOM: Excel then reads UTF-8
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:5] == ["时间", "操作者类型", "操作者ID", "操作者", "操作"]
    assert len(rows) == 3
    # newest first; the action, its entity type and the actor type in the console's words, the
    # action's code in the last column
    assert rows[1][4] == "商品：新建"
    assert rows[1][1] == "用户"
    assert rows[1][5] == "商品"
    assert rows[0][-1] == "操作代码"
    assert rows[1][-1] == "product.create"
    first = rows[2]
    assert first[0] == "2026-03-01 07:30:05"
    assert first[3] == "张三"
    assert first[8] == str(store.id)
    assert json.loads(first[9]) == {"name": {"before": "可口可乐", "after": "可口可乐 500ml"}}
    assert first[10] == '\'=HYPERLINK("http://evil")'  # never a live formula


async def test_xlsx_is_a_real_workbook(session: AsyncSession, client: httpx.AsyncClient) -> None:
    store = await make_store(session)
    headers = await auth_headers(session, await make_user(session))
    await add_entry(session, T0, store_id=store.id, actor_name="李四", note="=1+1")

    r = await client.get(
        URL,
        headers={**headers, "accept-language": "en-US,en;q=0.9"},
        params={"store_id": store.id},  # xlsx is the default
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    ws = load_workbook(io.BytesIO(r.content)).active
    assert ws is not None
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:4] == ("Time", "Actor type", "Actor ID", "Actor")
    assert len(rows) == 2
    # spreadsheets hold wall-clock times: Shanghai time, without a zone
    assert rows[1][0] == datetime(2026, 3, 1, 7, 30, 5)  # noqa: DTZ001
    assert rows[1][3] == "李四"
    assert rows[1][4] == "Product: updated"
    assert rows[1][-1] == "product.update"
    assert rows[1][10] == "=1+1"  # kept as text
    assert ws.cell(row=2, column=11).data_type == "s"


async def test_export_is_scoped_like_the_list(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    mine, other = await make_store(session), await make_store(session)
    role = await make_role(session, [Perm.AUDIT_READ])
    headers = await auth_headers(session, await make_user(session, role=role, stores=[mine]))
    await add_entry(session, T0, store_id=mine.id, entity_id="mine")
    await add_entry(session, T0, store_id=other.id, entity_id="other")
    await add_entry(session, T0, store_id=None, entity_id="storeless")
    r = await client.get(URL, headers=headers, params={"format": "csv"})
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [row[6] for row in rows[1:]] == ["mine"]


async def test_too_large_export_is_refused(
    session: AsyncSession, client: httpx.AsyncClient, app: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = app.state.settings  # type: ignore[attr-defined]
    store = await make_store(session)
    headers = await auth_headers(session, await make_user(session))
    for i in range(3):
        await add_entry(session, T0 + timedelta(seconds=i), store_id=store.id)
    # the app (and its settings) is shared by the tests of this process: undone after
    monkeypatch.setattr(settings, "audit_export_max_rows", 2)
    r = await client.get(URL, headers=headers, params={"store_id": store.id, "format": "csv"})
    assert r.status_code == 422
    assert r.json()["error"] == "export_too_large"
    assert r.json()["details"][0]["field"] == "since"


async def test_bad_format_is_422(session: AsyncSession, client: httpx.AsyncClient) -> None:
    headers = await auth_headers(session, await make_user(session))
    r = await client.get(URL, headers=headers, params={"format": "pdf"})
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "query.format"

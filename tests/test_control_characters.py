"""Control characters: refused in every text input (bodies, query strings, paths, imported
rows), and every export survives whatever text is already stored (kit.tabular)."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
from openpyxl import load_workbook
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.iam.actor import Actor
from selfmart.kit import tabular
from selfmart.kit.schema import InSchema
from selfmart.models import Product, StockMovement

from .builders import auth_headers, make_store, make_user
from .catalog.helpers import ean13
from .catalog.helpers import make_product as make_catalog_product
from .inventory.builders import stock
from .orders.builders import make_order
from .support import fingerprint

PRODUCTS = "/api/v1/products"


async def _admin(session: AsyncSession) -> dict[str, str]:
    return await auth_headers(session, await make_user(session, role="super_admin"))


def _refused(r: httpx.Response, field: str, reason: str = "control_character") -> None:
    assert r.status_code == 422, r.text
    details = {d["field"]: d["reason"] for d in r.json()["details"]}
    assert details.get(field) == reason, details


# --- input -----------------------------------------------------------------------------------


async def test_a_control_character_in_a_body_is_422_naming_the_field(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await _admin(session)
    store = await make_store(session)
    product = await make_catalog_product(session, stores=[store])
    await stock(session, store.id, product.id, 5)
    before = await fingerprint(session)
    r = await client.post(
        PRODUCTS, headers=h, json={"name": "bad\u001bname", "price_fen": 100, "barcodes": []}
    )
    _refused(r, "body.name")
    r = await client.post(
        f"/api/v1/stores/{store.id}/stock/{product.id}/adjust",
        headers=h,
        json={"delta": 1, "reason": "count\u0001"},
    )
    _refused(r, "body.reason")
    # A single-line field takes no line break either; a NUL keeps its own reason.
    r = await client.post("/api/v1/stores", headers=h, json={"code": "S9", "name": "a\nb"})
    _refused(r, "body.name")
    r = await client.post("/api/v1/stores", headers=h, json={"code": "S9", "name": "a\x00b"})
    _refused(r, "body.name", "nul_character")
    # Multi-line text (an address) takes tabs and line breaks, and nothing else.
    r = await client.post(
        "/api/v1/stores", headers=h, json={"code": "S9", "name": "九号店", "address": "a\x07"}
    )
    _refused(r, "body.address")
    assert await fingerprint(session) == before
    r = await client.post(
        "/api/v1/stores",
        headers=h,
        json={"code": "S9", "name": "九号店", "address": "上海市\r\n徐汇区\t1号"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["address"] == "上海市\r\n徐汇区\t1号"


def test_every_request_body_refuses_control_characters_in_every_text_field() -> None:
    """The guard is InSchema's, so no body can forget it: a string field of each kind."""

    class Body(InSchema):
        name: str
        names: list[str] = []
        labels: dict[str, str] = {}
        note: str | None = None

    for bad in ({"name": "a\x1b"}, {"name": "a", "names": ["ok", "b\x7f"]}):
        assert not _valid(Body, bad)
    assert not _valid(Body, {"name": "a", "labels": {"k\x01": "v"}})
    assert not _valid(Body, {"name": "a", "note": "x\x0cy"})
    assert _valid(Body, {"name": "a", "note": "x\ny\tz"})


def _valid(model: type[InSchema], data: dict[str, Any]) -> bool:
    try:
        model.model_validate(data)
    except ValueError:
        return False
    return True


async def test_a_password_set_before_is_still_compared_as_it_is(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """Login takes the password as typed (it is only hashed): one with a tab, set before
    control characters were refused, still logs in."""
    from selfmart.iam.passwords import hash_password

    user = await make_user(session, username="tabby")
    user.password_hash = hash_password("Tab\tPassw0rd")
    await session.flush()
    r = await client.post(
        "/api/v1/auth/login", json={"username": "tabby", "password": "Tab\tPassw0rd"}
    )
    assert r.status_code == 200, r.text


async def test_a_control_character_in_a_query_string_or_path_is_422(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await _admin(session)
    r = await client.get(f"{PRODUCTS}?q=a%1Bb", headers=h)
    _refused(r, "query.q")
    r = await client.get(f"{PRODUCTS}?q=ok&brand=x%0Ay", headers=h)
    _refused(r, "query.brand")
    r = await client.get(f"{PRODUCTS}?q=a%00b", headers=h)
    _refused(r, "query.q", "nul_character")
    r = await client.get("/api/v1/media/a%07b.png?exp=1&sig=x")
    _refused(r, "path")
    # Percent-encoded text that merely looks like one is fine.
    r = await client.get(f"{PRODUCTS}?q=100%2500", headers=h)
    assert r.status_code == 200, r.text


async def test_an_imported_row_with_a_control_character_is_reported_not_stored(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await _admin(session)
    good, bad = ean13(), ean13()
    text = f'条码,名称,售价(元)\r\n{good},可乐,3.5\r\n{bad},"bad\x1bname",3.5\r\n'
    r = await client.post(
        f"{PRODUCTS}/import",
        headers=h,
        files={"file": ("goods.csv", text.encode())},
        data={"mode": "good_rows_only"},
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert [(e["row"], e["reason"]) for e in report["errors"]] == [(3, "control_character")]
    assert report["created"] == 1
    names = (await session.scalars(select(Product.name))).all()
    assert "可乐" in names
    assert not any("\x1b" in n for n in names)


# --- exports ---------------------------------------------------------------------------------


def _xlsx_text(content: bytes) -> list[str]:
    ws = load_workbook(io.BytesIO(content)).active
    assert ws is not None
    return [str(c) for row in ws.iter_rows(values_only=True) for c in row if c is not None]


async def test_every_export_survives_control_characters_already_stored(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """Text stored before input refused control characters (or by a path that skipped the
    check) used to make openpyxl raise: a 500 for the product, stock and movement exports.
    Each export now writes it, the character shown as U+FFFD."""
    h = await _admin(session)
    store = await make_store(session, name="门店\x02")
    product = await make_catalog_product(session, "bad\x1bname", stores=[store])
    await stock(session, store.id, product.id, 5)
    await session.execute(
        update(StockMovement)
        .where(StockMovement.product_id == product.id)
        .values(reason="count\x01")
    )
    actor = Actor(kind="user", id=None, name="import\x03", store_ids=None)
    await audit.record(session, actor, "product.update", "product", product.id, note="n\x1b=1")
    await make_order(session, store, [(product, 1)], customer_name="客\x1b人")
    await session.flush()

    r = await client.get(f"{PRODUCTS}/export", headers=h)
    assert r.status_code == 200, r.text
    assert "bad\ufffdname" in _xlsx_text(r.content)

    r = await client.get(f"/api/v1/stores/{store.id}/stock/export", headers=h)
    assert r.status_code == 200, r.text
    assert "bad\ufffdname" in _xlsx_text(r.content)

    r = await client.get(f"/api/v1/stores/{store.id}/stock/movements/export", headers=h)
    assert r.status_code == 200, r.text
    cells = _xlsx_text(r.content)
    assert "bad\ufffdname" in cells
    assert "count\ufffd" in cells

    r = await client.get("/api/v1/audit-logs/export", params={"format": "xlsx"}, headers=h)
    assert r.status_code == 200, r.text
    assert "n\ufffd=1" in _xlsx_text(r.content)
    r = await client.get("/api/v1/audit-logs/export", params={"format": "csv"}, headers=h)
    assert r.status_code == 200, r.text
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert any("n\ufffd=1" in row for row in rows)

    r = await client.get("/api/v1/orders/export", params={"store_id": store.id}, headers=h)
    assert r.status_code == 200, r.text
    cells = _xlsx_text(r.content)
    assert "门店\ufffd" in cells
    assert "客\ufffd人" in cells


def test_exported_text_is_never_a_formula_nor_breaks_the_file() -> None:
    content = tabular.xlsx_bytes(["名称"], [['=HYPERLINK("http://x")'], ["a\x1b\ud800"]])
    ws = load_workbook(io.BytesIO(content)).active
    assert ws is not None
    cells = [c for row in ws.iter_rows(min_row=2) for c in row]
    assert [c.value for c in cells] == ['=HYPERLINK("http://x")', "a\ufffd\ufffd"]
    assert {c.data_type for c in cells} == {"s"}
    text = tabular.csv_bytes(["名称"], [["=1+1"], ["b\x01"]]).decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(text)))[1:] == [["'=1+1"], ["b\ufffd"]]

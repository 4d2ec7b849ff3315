"""Products through the API: create, read, update, delete, barcodes, money, audit."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import AuditLog, Product

from .helpers import (
    PRODUCTS,
    audit_count,
    ean13,
    headers_for,
    make_category,
    make_product,
    make_tag,
    product_count,
)


async def test_create_read_update_delete(client: httpx.AsyncClient, session: AsyncSession) -> None:
    h = await headers_for(session)
    drinks = await make_category(session, "饮料")
    hot = await make_tag(session, "热销")
    code = ean13()
    r = await client.post(
        PRODUCTS,
        headers=h,
        json={
            "name": "可口可乐 汽水",
            "brand": "可口可乐",
            "spec": "500ml",
            "unit": "瓶",
            "category_id": drinks.id,
            "price_fen": 350,
            "cost_fen": 210,
            "member_price_fen": 320,
            "shelf_life_days": 365,
            "track_batches": True,
            "low_stock_threshold": 12,
            "barcodes": [code, "sm-0001"],
            "tag_ids": [hot.id],
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    pid = body["id"]
    assert body["price_fen"] == 350
    assert body["member_price_fen"] == 320
    assert body["status"] == "on_sale"
    assert [b["code"] for b in body["barcodes"]] == [code, "SM-0001"]
    assert [b["kind"] for b in body["barcodes"]] == ["ean13", "internal"]
    assert [t["name"] for t in body["tags"]] == ["热销"]
    product = await session.get(Product, pid)
    assert product is not None
    assert product.pinyin_initials == "kkklqs|kkkl"
    assert await audit_count(session, "product.create", pid) == 1

    r = await client.get(f"{PRODUCTS}/{pid}", headers=h)
    assert r.status_code == 200
    assert r.json()["spec"] == "500ml"

    r = await client.patch(
        f"{PRODUCTS}/{pid}",
        headers=h,
        json={"name": "雪碧", "price_fen": 300, "barcodes": [code], "tag_ids": []},
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "雪碧"
    assert [b["code"] for b in r.json()["barcodes"]] == [code]
    assert r.json()["tags"] == []
    await session.refresh(product)
    assert product.pinyin_full.startswith("xuebi")
    entry = await session.scalar(
        select(AuditLog).where(AuditLog.action == "product.update", AuditLog.entity_id == str(pid))
    )
    assert entry is not None
    assert entry.changes["price_fen"] == {"before": 350, "after": 300}
    assert entry.changes["barcodes"]["after"] == [code]

    r = await client.get(f"{PRODUCTS}/by-barcode", headers=h, params={"code": code})
    assert r.status_code == 200
    assert r.json()["id"] == pid

    r = await client.delete(f"{PRODUCTS}/{pid}", headers=h)
    assert r.status_code == 204
    r = await client.get(f"{PRODUCTS}/{pid}", headers=h)
    assert r.status_code == 404
    assert r.json()["error"] == "product_not_found"
    assert await audit_count(session, "product.delete", pid) == 1


async def test_bad_barcodes_name_each_one(client: httpx.AsyncClient, session: AsyncSession) -> None:
    h = await headers_for(session)
    before = await product_count(session)
    r = await client.post(
        PRODUCTS,
        headers=h,
        json={
            "name": "测试",
            "price_fen": 100,
            "barcodes": [ean13(), "6901939621258", "12345", "8!"],
        },
    )
    assert r.status_code == 422, r.text
    details = {d["field"]: d["reason"] for d in r.json()["details"]}
    assert details == {
        "barcodes[1]": "bad_check_digit",
        "barcodes[2]": "bad_length",
        "barcodes[3]": "bad_format",
    }
    assert await product_count(session) == before


async def test_barcode_taken_is_409_naming_it(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await headers_for(session)
    code = ean13()
    other = await make_product(session, "百事可乐", barcodes=[code])
    r = await client.post(
        PRODUCTS, headers=h, json={"name": "x", "price_fen": 1, "barcodes": [ean13(), code]}
    )
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "barcode_taken"
    detail = r.json()["details"][0]
    assert detail["field"] == "barcodes[1]"
    assert code in detail["message"]
    assert str(other.id) in detail["message"]
    # the same code twice in one request is a 422
    r = await client.post(
        PRODUCTS, headers=h, json={"name": "x", "price_fen": 1, "barcodes": ["SM001", "sm001"]}
    )
    assert r.status_code == 422
    assert r.json()["details"][0] == {
        "field": "barcodes[1]",
        "reason": "duplicate",
        "message": "SM001 is listed twice (also at barcodes[0])",
    }


async def test_create_with_only_name_and_price(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """Brand, spec and unit are optional (the console sends null for empty boxes)."""
    h = await headers_for(session)
    r = await client.post(
        PRODUCTS,
        headers=h,
        json={"name": "散装鸡蛋", "price_fen": 99, "brand": None, "spec": None, "unit": None},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["brand"], body["spec"], body["unit"]) == ("", "", "件")
    product = await session.get(Product, body["id"])
    assert product is not None
    assert product.pinyin_initials == "szjd"


async def test_money_must_be_integer_fen(client: httpx.AsyncClient, session: AsyncSession) -> None:
    h = await headers_for(session)
    for bad in (3.5, 350.0, "350", -1, True):
        r = await client.post(PRODUCTS, headers=h, json={"name": "x", "price_fen": bad})
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["details"][0]["field"] == "body.price_fen"
    product = await make_product(session)
    r = await client.patch(f"{PRODUCTS}/{product.id}", headers=h, json={"member_price_fen": 1.25})
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "body.member_price_fen"
    r = await client.patch(f"{PRODUCTS}/{product.id}", headers=h, json={"price_fen": None})
    assert r.status_code == 422
    r = await client.post(PRODUCTS, headers=h, json={"name": "x", "price_fen": 1, "colour": "red"})
    assert r.status_code == 422
    assert r.json()["details"][0]["reason"] == "extra_forbidden"


async def test_unknown_category_and_tag(client: httpx.AsyncClient, session: AsyncSession) -> None:
    h = await headers_for(session)
    r = await client.post(
        PRODUCTS, headers=h, json={"name": "x", "price_fen": 1, "category_id": 999999}
    )
    assert r.status_code == 404
    assert r.json()["details"][0]["field"] == "category_id"
    r = await client.post(
        PRODUCTS, headers=h, json={"name": "x", "price_fen": 1, "tag_ids": [999999]}
    )
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "tag_ids"


async def test_cashier_reads_but_cannot_write(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await headers_for(session, role="cashier")
    product = await make_product(session)
    assert (await client.get(f"{PRODUCTS}/{product.id}", headers=h)).status_code == 200
    r = await client.patch(f"{PRODUCTS}/{product.id}", headers=h, json={"price_fen": 1})
    assert r.status_code == 403

"""Bulk edits: preview every change, apply exactly the preview, one audit entry per product."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import AuditLog, Product, ProductTag, StoreProduct

from ..builders import make_store
from .helpers import PRODUCTS, ean13, headers_for, make_category, make_product, make_tag

PREVIEW = f"{PRODUCTS}/bulk/preview"
APPLY = f"{PRODUCTS}/bulk/apply"


async def preview_and_apply(
    client: httpx.AsyncClient, h: dict[str, str], body: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    r = await client.post(PREVIEW, headers=h, json=body)
    assert r.status_code == 200, r.text
    preview: dict[str, Any] = r.json()
    r = await client.post(APPLY, headers=h, json={**body, "token": preview["token"]})
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return preview, result


async def test_percent_rounds_half_up_to_the_fen(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await headers_for(session)
    a = await make_product(session, "甲", price_fen=5)  # 5 x 0.9 = 4.5 -> 5
    b = await make_product(session, "乙", price_fen=15)  # 15 x 0.9 = 13.5 -> 14
    c = await make_product(session, "丙", price_fen=1000)  # 900
    body = {
        "selection": {"ids": [a.id, b.id, c.id]},
        "action": {"op": "adjust_price", "percent": -10},
    }
    preview, result = await preview_and_apply(client, h, body)
    after = {ch["product_id"]: (ch["before"], ch["after"]) for ch in preview["changes"]}
    assert after == {b.id: (15, 14), c.id: (1000, 900)}  # 甲 does not change
    assert (preview["selected"], preview["changed"]) == (3, 2)
    assert result["changed"] == 2
    for p in (a, b, c):
        await session.refresh(p)
    assert (a.price_fen, b.price_fen, c.price_fen) == (5, 14, 900)
    entries = (
        await session.scalars(
            select(AuditLog).where(AuditLog.action == "product.bulk_adjust_price")
        )
    ).all()
    assert sorted(str(e.entity_id) for e in entries) == sorted([str(b.id), str(c.id)])
    assert {e.entity_id: e.changes for e in entries}[str(b.id)] == {
        "price_fen": {"before": 15, "after": 14}
    }


async def test_stale_preview_is_refused(client: httpx.AsyncClient, session: AsyncSession) -> None:
    h = await headers_for(session)
    p = await make_product(session, price_fen=300)
    body = {"selection": {"ids": [p.id]}, "action": {"op": "adjust_price", "by_fen": 50}}
    token = (await client.post(PREVIEW, headers=h, json=body)).json()["token"]
    r = await client.patch(f"{PRODUCTS}/{p.id}", headers=h, json={"price_fen": 310})
    assert r.status_code == 200
    r = await client.post(APPLY, headers=h, json={**body, "token": token})
    assert r.status_code == 409
    assert r.json()["error"] == "preview_stale"
    await session.refresh(p)
    assert p.price_fen == 310
    # a token for another action is refused too
    other = {**body, "action": {"op": "adjust_price", "by_fen": 60}}
    assert (await client.post(APPLY, headers=h, json={**other, "token": token})).status_code == 409


async def test_filter_selection_and_other_actions(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await headers_for(session)
    drinks = await make_category(session, "饮料")
    snacks = await make_category(session, "零食")
    hot = await make_tag(session, "热销")
    cola = await make_product(session, "可口可乐", category=drinks)
    sprite = await make_product(session, "雪碧", category=drinks, tags=[hot])
    chips = await make_product(session, "薯片", category=snacks)
    by_filter = {"filter": {"category_id": drinks.id}}

    preview, _ = await preview_and_apply(
        client, h, {"selection": by_filter, "action": {"op": "set_status", "status": "off_sale"}}
    )
    assert {c["product_id"] for c in preview["changes"]} == {cola.id, sprite.id}
    _, _ = await preview_and_apply(
        client, h, {"selection": by_filter, "action": {"op": "add_tags", "tag_ids": [hot.id]}}
    )
    tags = set((await session.execute(select(ProductTag.product_id, ProductTag.tag_id))).all())
    assert {(cola.id, hot.id), (sprite.id, hot.id)} <= tags
    _, _ = await preview_and_apply(
        client,
        h,
        {"selection": by_filter, "action": {"op": "set_threshold", "low_stock_threshold": 8}},
    )
    _, _ = await preview_and_apply(
        client,
        h,
        {
            "selection": {"ids": [chips.id]},
            "action": {"op": "move_category", "category_id": drinks.id},
        },
    )
    _, _ = await preview_and_apply(
        client,
        h,
        {
            "selection": {"ids": [chips.id]},
            "action": {"op": "set_price", "field": "member_price_fen", "amount_fen": 599},
        },
    )
    for p in (cola, sprite, chips):
        await session.refresh(p)
    assert (cola.status, sprite.status, chips.status) == ("off_sale", "off_sale", "on_sale")
    assert (cola.low_stock_threshold, chips.low_stock_threshold) == (8, 0)
    assert (chips.category_id, chips.member_price_fen) == (drinks.id, 599)


async def test_store_price_and_scope(client: httpx.AsyncClient, session: AsyncSession) -> None:
    mine, other = await make_store(session), await make_store(session)
    h = await headers_for(session, role="admin", stores=[mine])
    code = ean13()
    listed = await make_product(
        session, "可乐", price_fen=300, spec="330ml", barcodes=[code], stores=[mine, other]
    )
    unlisted = await make_product(session, "雪碧", price_fen=300)
    body = {
        "selection": {"ids": [listed.id, unlisted.id]},
        "action": {"op": "adjust_price", "percent": "10", "store_id": mine.id},
    }
    preview, _ = await preview_and_apply(client, h, body)
    assert preview["changes"] == [
        {
            "product_id": listed.id,
            "product_name": "可乐",
            "spec": "330ml",
            "barcode": code,
            "field": "store_price_fen",
            "store_id": mine.id,
            "before": None,
            "after": 330,
        }
    ]
    sp = await session.scalar(
        select(StoreProduct).where(
            StoreProduct.store_id == mine.id, StoreProduct.product_id == listed.id
        )
    )
    assert sp is not None
    assert sp.store_price_fen == 330
    await session.refresh(listed)
    assert listed.price_fen == 300
    entry = await session.scalar(
        select(AuditLog).where(AuditLog.action == "product.bulk_adjust_price")
    )
    assert entry is not None
    assert entry.store_id == mine.id
    body["action"]["store_id"] = other.id  # type: ignore[index]
    r = await client.post(PREVIEW, headers=h, json=body)
    assert r.status_code == 404


async def test_bad_bulk_requests(client: httpx.AsyncClient, session: AsyncSession) -> None:
    h = await headers_for(session)
    p = await make_product(session, price_fen=100)
    ids = {"ids": [p.id]}
    cases: list[tuple[dict[str, Any], int, str]] = [
        (
            {"selection": ids, "action": {"op": "adjust_price", "by_fen": -101}},
            422,
            f"products[{p.id}]",
        ),
        (
            {"selection": ids, "action": {"op": "set_price", "amount_fen": 1.5}},
            422,
            "body.action.set_price.amount_fen",
        ),
        ({"selection": ids, "action": {"op": "adjust_price"}}, 422, "body.action.adjust_price"),
        (
            {"selection": {}, "action": {"op": "set_status", "status": "on_sale"}},
            422,
            "body.selection",
        ),
        (
            {"selection": {"ids": [987654]}, "action": {"op": "set_status", "status": "on_sale"}},
            422,
            "selection.ids",
        ),
        (
            {"selection": ids, "action": {"op": "add_tags", "tag_ids": [987654]}},
            422,
            "action.tag_ids",
        ),
        ({"selection": ids, "action": {"op": "delete_all"}}, 422, "body.action"),
    ]
    for body, status, field in cases:
        r = await client.post(PREVIEW, headers=h, json=body)
        assert r.status_code == status, (body, r.text)
        assert r.json()["details"][0]["field"] == field, (body, r.json())
    await session.refresh(p)
    assert p.price_fen == 100
    assert await session.scalar(select(Product.price_fen).where(Product.id == p.id)) == 100

"""The category tree (three levels, reorder, move) and tags."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import Category

from .helpers import audit_count, headers_for, make_category, make_product, make_tag

CATS = "/api/v1/categories"


async def _create(
    client: httpx.AsyncClient, h: dict[str, str], name: str, parent: int | None = None
) -> dict[str, Any]:
    r = await client.post(CATS, headers=h, json={"name": name, "parent_id": parent})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_tree_depth_and_counts(client: httpx.AsyncClient, session: AsyncSession) -> None:
    h = await headers_for(session)
    drinks = await _create(client, h, "饮料")
    soda = await _create(client, h, "碳酸饮料", drinks["id"])
    cola = await _create(client, h, "可乐", soda["id"])
    assert cola["depth"] == 3
    r = await client.post(CATS, headers=h, json={"name": "无糖", "parent_id": cola["id"]})
    assert r.status_code == 422
    assert r.json()["details"][0] == {
        "field": "parent_id",
        "reason": "too_deep",
        "message": "Categories nest at most 3 levels deep",
    }
    r = await client.post(CATS, headers=h, json={"name": "碳酸饮料", "parent_id": drinks["id"]})
    assert r.status_code == 409
    await make_product(session, "可口可乐", category=await session.get(Category, cola["id"]))
    tree = (await client.get(CATS, headers=h)).json()
    top = next(n for n in tree if n["id"] == drinks["id"])
    assert top["children"][0]["name"] == "碳酸饮料"
    assert top["children"][0]["children"][0]["product_count"] == 1
    assert await audit_count(session, "category.create", cola["id"]) == 1


async def test_reorder_siblings(client: httpx.AsyncClient, session: AsyncSession) -> None:
    h = await headers_for(session)
    root = await make_category(session, "根")
    a = await make_category(session, "甲", root, 0)
    b = await make_category(session, "乙", root, 1)
    c = await make_category(session, "丙", root, 2)
    r = await client.post(
        f"{CATS}/reorder", headers=h, json={"parent_id": root.id, "ids": [c.id, a.id, b.id]}
    )
    assert r.status_code == 200, r.text
    assert [x["id"] for x in r.json()] == [c.id, a.id, b.id]
    tree = (await client.get(CATS, headers=h)).json()
    node = next(n for n in tree if n["id"] == root.id)
    assert [x["name"] for x in node["children"]] == ["丙", "甲", "乙"]
    r = await client.post(
        f"{CATS}/reorder", headers=h, json={"parent_id": root.id, "ids": [c.id, a.id]}
    )
    assert r.status_code == 422
    assert r.json()["details"][0]["reason"] == "not_the_children"


async def test_move_keeps_depth_limit(client: httpx.AsyncClient, session: AsyncSession) -> None:
    h = await headers_for(session)
    food = await make_category(session, "食品")
    snacks = await make_category(session, "零食")
    chips = await make_category(session, "膨化", snacks)
    potato = await make_category(session, "薯片", chips)
    # 零食 (3 levels) under 食品 would make 4 levels
    r = await client.post(f"{CATS}/{snacks.id}/move", headers=h, json={"parent_id": food.id})
    assert r.status_code == 422
    assert r.json()["details"][0]["reason"] == "too_deep"
    # a category cannot move under its own descendant
    r = await client.post(f"{CATS}/{snacks.id}/move", headers=h, json={"parent_id": potato.id})
    assert r.status_code == 422
    # 膨化 (2 levels) under 食品 is fine: the sub-tree follows, depths and paths updated
    r = await client.post(
        f"{CATS}/{chips.id}/move", headers=h, json={"parent_id": food.id, "position": 0}
    )
    assert r.status_code == 200, r.text
    await session.refresh(chips)
    await session.refresh(potato)
    assert (chips.parent_id, chips.depth, chips.path) == (food.id, 2, f"/{food.id}/{chips.id}/")
    assert (potato.depth, potato.path) == (3, f"/{food.id}/{chips.id}/{potato.id}/")
    # and back to the top level
    r = await client.post(f"{CATS}/{chips.id}/move", headers=h, json={"parent_id": None})
    assert r.status_code == 200
    assert r.json()["depth"] == 1
    await session.refresh(potato)
    assert potato.depth == 2


async def test_rename_and_delete(client: httpx.AsyncClient, session: AsyncSession) -> None:
    h = await headers_for(session)
    drinks = await make_category(session, "饮料")
    water = await make_category(session, "水", drinks)
    r = await client.patch(f"{CATS}/{water.id}", headers=h, json={"name": "饮用水"})
    assert r.status_code == 200
    assert r.json()["name"] == "饮用水"
    r = await client.delete(f"{CATS}/{drinks.id}", headers=h)
    assert r.status_code == 409
    assert r.json()["error"] == "category_not_empty"
    await make_product(session, "矿泉水", category=water)
    assert (await client.delete(f"{CATS}/{water.id}", headers=h)).status_code == 409
    empty = await make_category(session, "空")
    assert (await client.delete(f"{CATS}/{empty.id}", headers=h)).status_code == 204
    assert (await client.delete(f"{CATS}/{empty.id}", headers=h)).status_code == 404


async def test_tags(client: httpx.AsyncClient, session: AsyncSession) -> None:
    h = await headers_for(session)
    r = await client.post("/api/v1/tags", headers=h, json={"name": "新品", "color": "#f00"})
    assert r.status_code == 201
    tid = r.json()["id"]
    assert (await client.post("/api/v1/tags", headers=h, json={"name": "新品"})).status_code == 409
    r = await client.patch(f"/api/v1/tags/{tid}", headers=h, json={"name": "上新"})
    assert r.json()["name"] == "上新"
    other = await make_tag(session, "促销")
    product = await make_product(session, tags=[other])
    assert "促销" in [t["name"] for t in (await client.get("/api/v1/tags", headers=h)).json()]
    assert (await client.delete(f"/api/v1/tags/{other.id}", headers=h)).status_code == 204
    r = await client.get(f"/api/v1/products/{product.id}", headers=h)
    assert r.json()["tags"] == []

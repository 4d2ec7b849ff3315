"""Product search: text, barcode, pinyin, filters, sort, pagination, xlsx export."""

from __future__ import annotations

import io

import httpx
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncSession

from ..builders import make_store
from .helpers import PRODUCTS, ean13, headers_for, make_category, make_product, make_tag


async def _names(client: httpx.AsyncClient, h: dict[str, str], **params: str | int) -> list[str]:
    r = await client.get(PRODUCTS, headers=h, params={"size": 200, **params})
    assert r.status_code == 200, r.text
    return [p["name"] for p in r.json()["items"]]


async def test_text_barcode_and_pinyin(client: httpx.AsyncClient, session: AsyncSession) -> None:
    h = await headers_for(session)
    code = ean13("693")
    await make_product(session, "可口可乐 500ml", brand="可口可乐", barcodes=[code])
    await make_product(session, "康师傅红烧牛肉面", brand="康师傅")
    await make_product(session, "农夫山泉 550ml", brand="农夫山泉")
    assert await _names(client, h, q="kkkl") == ["可口可乐 500ml"]
    assert await _names(client, h, q="KeKouKeLe") == ["可口可乐 500ml"]
    assert await _names(client, h, q="ksf") == ["康师傅红烧牛肉面"]
    assert await _names(client, h, q="牛肉") == ["康师傅红烧牛肉面"]
    assert await _names(client, h, q="农夫") == ["农夫山泉 550ml"]
    assert await _names(client, h, q=code) == ["可口可乐 500ml"]
    assert await _names(client, h, q=code[:8]) == ["可口可乐 500ml"]
    # LIKE wildcards in the query are literal
    assert await _names(client, h, q="%") == []
    assert await _names(client, h, q="_") == []


async def test_filters_sort_and_pages(client: httpx.AsyncClient, session: AsyncSession) -> None:
    h = await headers_for(session)
    store = await make_store(session)
    drinks = await make_category(session, "饮料")
    soda = await make_category(session, "碳酸饮料", drinks)
    cola = await make_category(session, "可乐", soda)
    snacks = await make_category(session, "零食")
    hot = await make_tag(session, "热销")
    await make_product(
        session, "可口可乐", price_fen=350, category=cola, tags=[hot], stores=[store]
    )
    await make_product(session, "雪碧", price_fen=300, category=soda)
    await make_product(session, "矿泉水", price_fen=200, category=drinks, status="off_sale")
    await make_product(session, "薯片", price_fen=650, category=snacks, tags=[hot])

    assert await _names(client, h, category_id=drinks.id, sort="price_fen") == [
        "矿泉水",
        "雪碧",
        "可口可乐",
    ]
    assert await _names(client, h, category_id=soda.id, sort="-price_fen") == ["可口可乐", "雪碧"]
    assert await _names(client, h, tag_id=hot.id, sort="name") == sorted(["可口可乐", "薯片"])
    assert await _names(client, h, status="off_sale") == ["矿泉水"]
    assert await _names(client, h, store_id=store.id) == ["可口可乐"]

    r = await client.get(
        PRODUCTS,
        headers=h,
        params={"category_id": drinks.id, "sort": "price_fen", "size": 2, "page": 2},
    )
    assert r.json()["total"] == 3
    assert [p["name"] for p in r.json()["items"]] == ["可口可乐"]

    r = await client.get(PRODUCTS, headers=h, params={"sort": "cost"})
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "query.sort"


async def test_store_filter_is_scoped(client: httpx.AsyncClient, session: AsyncSession) -> None:
    mine, other = await make_store(session), await make_store(session)
    h = await headers_for(session, role="admin", stores=[mine])
    await make_product(session, "可口可乐", stores=[mine, other])
    assert (await client.get(PRODUCTS, headers=h, params={"store_id": mine.id})).status_code == 200
    r = await client.get(PRODUCTS, headers=h, params={"store_id": other.id})
    assert r.status_code == 404
    assert r.json()["error"] == "store_not_found"


async def test_export_streams_the_search_as_xlsx(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await headers_for(session)
    drinks = await make_category(session, "饮料")
    code = ean13()
    await make_product(
        session,
        "可口可乐",
        price_fen=350,
        brand="可口可乐",
        barcodes=[code],
        category=drinks,
        member_price_fen=305,
    )
    await make_product(session, "薯片", price_fen=650)
    r = await client.get(f"{PRODUCTS}/export", headers=h, params={"q": "kkkl"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    ws = load_workbook(io.BytesIO(r.content)).active
    assert ws is not None
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:3] == ("ID", "条码", "名称")
    assert len(rows) == 2
    assert rows[1][1:4] == (code, "可口可乐", "可口可乐")
    assert rows[1][6:10] == ("饮料", "3.50", "0.00", "3.05")


async def test_stock_state_filter(client: httpx.AsyncClient, session: AsyncSession) -> None:
    """ok / low / out / negative, in one store or across the stores the user sees; a store's
    threshold override wins; a product listed but never stocked is out; one stocked nowhere
    matches no state."""
    from selfmart.inventory import service as inventory

    from ..inventory.builders import CLERK, list_in_store, stock

    a, b = await make_store(session), await make_store(session)
    ok = await make_product(session, "充足", low_stock_threshold=5)
    low = await make_product(session, "偏低", low_stock_threshold=5)
    override = await make_product(session, "门店阈值", low_stock_threshold=0)
    out = await make_product(session, "已售罄", low_stock_threshold=5)
    negative = await make_product(session, "负库存", low_stock_threshold=0)
    await make_product(session, "无库存记录", low_stock_threshold=5)
    for p in (ok, low, negative):
        await list_in_store(session, a.id, p.id)
    await stock(session, a.id, ok.id, 10)
    await stock(session, a.id, low.id, 3)
    # In b the same 3 units are fine: b's own threshold is 1.
    await list_in_store(session, b.id, low.id, threshold=1)
    await stock(session, b.id, low.id, 3)
    await list_in_store(session, a.id, override.id, threshold=10)
    await stock(session, a.id, override.id, 8)
    await list_in_store(session, b.id, out.id)
    await stock(session, a.id, negative.id, 2)
    await inventory.book(
        session,
        store_id=a.id,
        changes=[inventory.Change(negative.id, -5, "sale")],
        document=("order", "1"),
        actor=CLERK,
        refuse_negative=False,
    )

    h = await headers_for(session)
    for state, store, expected in [
        ("ok", None, ["充足", "偏低"]),
        ("ok", a, ["充足"]),
        ("ok", b, ["偏低"]),
        ("low", None, ["偏低", "门店阈值"]),
        ("low", a, ["偏低", "门店阈值"]),
        ("low", b, []),
        ("out", None, ["已售罄", "负库存"]),
        ("out", a, ["负库存"]),
        ("out", b, ["已售罄"]),
        ("negative", None, ["负库存"]),
        ("negative", b, []),
    ]:
        params: dict[str, str | int] = {"stock_state": state, "sort": "id"}
        if store is not None:
            params["store_id"] = store.id
        assert await _names(client, h, **params) == expected, (state, store and store.code)

    # Across stores means the stores this user may see.
    only_b = await headers_for(session, role="admin", stores=[b])
    assert await _names(client, only_b, stock_state="ok") == ["偏低"]
    assert await _names(client, only_b, stock_state="negative") == []

    # The export and a bulk edit's filter take the same state.
    r = await client.get(f"{PRODUCTS}/export", headers=h, params={"stock_state": "negative"})
    assert r.status_code == 200
    ws = load_workbook(io.BytesIO(r.content)).active
    assert ws is not None
    assert [row[2] for row in ws.iter_rows(min_row=2, values_only=True)] == ["负库存"]
    r = await client.post(
        f"{PRODUCTS}/bulk/preview",
        headers=h,
        json={
            "selection": {"filter": {"stock_state": "low"}},
            "action": {"op": "set_status", "status": "off_sale"},
        },
    )
    assert r.status_code == 200, r.text
    assert sorted(c["product_id"] for c in r.json()["changes"]) == sorted([low.id, override.id])


async def test_stock_state_must_be_known(client: httpx.AsyncClient, session: AsyncSession) -> None:
    h = await headers_for(session)
    r = await client.get(PRODUCTS, headers=h, params={"stock_state": "plenty"})
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "query.stock_state"
    r = await client.post(
        f"{PRODUCTS}/bulk/preview",
        headers=h,
        json={
            "selection": {"filter": {"stock_state": "plenty"}},
            "action": {"op": "set_status", "status": "off_sale"},
        },
    )
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "body.selection.filter.stock_state"

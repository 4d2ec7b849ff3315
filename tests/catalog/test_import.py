"""Product import through the API: template, validation report, modes, upsert, encodings."""

from __future__ import annotations

import io
from typing import Any

import httpx
from openpyxl import Workbook, load_workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.models import AuditLog, Category, Product, ProductBarcode, Tag

from .helpers import (
    PRODUCTS,
    audit_count,
    ean13,
    headers_for,
    make_category,
    make_product,
    product_count,
)

IMPORT = f"{PRODUCTS}/import"
HEADERS = [
    "条码",
    "名称",
    "品牌",
    "规格",
    "单位",
    "分类",
    "售价(元)",
    "成本价(元)",
    "会员价(元)",
    "保质期(天)",
    "批次管理",
    "库存预警",
    "状态",
    "标签",
]


def xlsx(rows: list[list[Any]], headers: list[str] = HEADERS) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(headers)
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def row(code: str, name: str = "可口可乐", price: Any = 3.5, **kw: Any) -> list[Any]:
    values = {
        "品牌": "",
        "规格": "",
        "单位": "",
        "分类": "",
        "成本价(元)": None,
        "会员价(元)": None,
        "保质期(天)": None,
        "批次管理": None,
        "库存预警": None,
        "状态": None,
        "标签": None,
    }
    values.update(kw)
    return [
        code,
        name,
        values["品牌"],
        values["规格"],
        values["单位"],
        values["分类"],
        price,
        values["成本价(元)"],
        values["会员价(元)"],
        values["保质期(天)"],
        values["批次管理"],
        values["库存预警"],
        values["状态"],
        values["标签"],
    ]


async def upload(
    client: httpx.AsyncClient, h: dict[str, str], data: bytes, name: str = "goods.xlsx", **form: Any
) -> httpx.Response:
    fields = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in form.items()}
    return await client.post(IMPORT, headers=h, files={"file": (name, data)}, data=fields)


async def test_template_downloads(client: httpx.AsyncClient, session: AsyncSession) -> None:
    h = await headers_for(session)
    r = await client.get(f"{IMPORT}/template", headers=h)
    assert r.status_code == 200
    ws = load_workbook(io.BytesIO(r.content)).active
    assert ws is not None
    assert [c.value for c in ws[1]] == HEADERS
    r = await client.get(f"{IMPORT}/template", headers=h, params={"format": "csv"})
    assert r.content.startswith(b"\xef\xbb\xbf" + "条码,名称".encode())


async def test_import_creates_and_upserts_by_barcode(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await headers_for(session)
    await make_category(session, "饮料")
    a, b, c = ean13(), ean13(), ean13()
    existing = await make_product(session, "旧名字", price_fen=100, barcodes=[c], cost_fen=50)
    data = xlsx(
        [
            row(
                a,
                "可口可乐 500ml",
                3.5,
                品牌="可口可乐",
                规格="500ml",
                单位="瓶",
                分类="饮料",
                会员价=None,
                保质期=None,
                **{
                    "成本价(元)": "2.1",
                    "会员价(元)": 3.2,
                    "保质期(天)": 365,
                    "批次管理": "是",
                    "库存预警": 12,
                    "状态": "在售",
                },
            ),
            row(f"{b},SM-77", "雪碧", "3"),
            row(c, "", 4.2),  # update: only the price; the empty name keeps the current one
        ]
    )
    r = await upload(client, h, data)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["status"] == "imported"
    assert (report["created"], report["updated"], report["skipped"]) == (2, 1, 0)
    cola = await session.scalar(
        select(Product).join(ProductBarcode).where(ProductBarcode.code == a)
    )
    assert cola is not None
    assert (cola.price_fen, cola.cost_fen, cola.member_price_fen) == (350, 210, 320)
    assert (cola.shelf_life_days, cola.track_batches, cola.low_stock_threshold) == (365, True, 12)
    assert cola.pinyin_initials.startswith("kkkl")
    sprite_codes = (
        await session.scalars(
            select(ProductBarcode.code).join(Product).where(Product.name == "雪碧")
        )
    ).all()
    assert sorted(sprite_codes) == sorted([b, "SM-77"])
    await session.refresh(existing)
    assert (existing.name, existing.price_fen, existing.cost_fen) == ("旧名字", 420, 50)
    assert await audit_count(session, "product.create") == 2
    assert await audit_count(session, "product.update", existing.id) == 1
    assert await audit_count(session, "product.import") == 1


async def test_all_or_nothing_reports_every_bad_cell_and_writes_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await headers_for(session)
    before = await product_count(session)
    good = ean13()
    data = xlsx(
        [
            row(good, "好商品", 3.5),
            row("6901939621258", "坏条码", 3.5),
            row(ean13(), "三位小数", 3.505),
            row(ean13(), "", "abc"),
            row(good, "重复条码", 1),
            row(ean13(), "负价格", -1, **{"库存预警": 1.5, "状态": "卖完了", "分类": "不存在"}),
        ]
    )
    r = await upload(client, h, data, mode="all_or_nothing")
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["status"] == "rejected"
    assert (report["created"], report["updated"], report["valid_rows"]) == (0, 0, 1)
    found = {(e["row"], e["column"], e["reason"]) for e in report["errors"]}
    assert found == {
        (3, "条码", "bad_check_digit"),
        (4, "售价(元)", "not_whole_fen"),
        (5, "售价(元)", "not_a_number"),
        (5, "名称", "required"),
        (6, "条码", "duplicate_in_file"),
        (7, "售价(元)", "negative"),
        (7, "库存预警", "not_an_integer"),
        (7, "状态", "bad_status"),
        (7, "分类", "category_not_found"),
    }
    messages = {(e["row"], e["column"]): e for e in report["errors"]}
    assert "3.505" in messages[(4, "售价(元)")]["message"]
    assert messages[(6, "条码")]["message"].endswith("row 2")
    assert await product_count(session) == before
    entry = await session.scalar(select(AuditLog).where(AuditLog.action == "product.import"))
    assert entry is not None
    assert entry.changes["status"]["after"] == "rejected"


async def test_good_rows_only_writes_the_good_rows(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await headers_for(session)
    before = await product_count(session)
    data = xlsx([row(ean13(), "好", 1), row("123", "坏", 1), row(ean13(), "也好", "2.00")])
    r = await upload(client, h, data, mode="good_rows_only")
    report = r.json()
    assert report["status"] == "partial"
    assert (report["created"], report["skipped"]) == (2, 1)
    assert [(e["row"], e["reason"]) for e in report["errors"]] == [(3, "bad_length")]
    assert await product_count(session) == before + 2


async def test_categories_and_tags_on_the_fly(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await headers_for(session)
    data = xlsx([row(ean13(), "可乐", 3, **{"分类": "饮料/碳酸饮料/可乐", "标签": "热销，夏季"})])
    r = await upload(client, h, data)
    assert r.json()["status"] == "rejected"
    assert {e["reason"] for e in r.json()["errors"]} == {"category_not_found", "tag_not_found"}
    r = await upload(client, h, data, create_categories=True, create_tags=True)
    report = r.json()
    assert report["status"] == "imported", report
    assert report["categories_created"] == ["饮料", "饮料/碳酸饮料", "饮料/碳酸饮料/可乐"]
    assert report["tags_created"] == ["热销", "夏季"]
    leaf = await session.scalar(select(Category).where(Category.name == "可乐"))
    assert leaf is not None
    assert leaf.depth == 3
    product = await session.scalar(select(Product).where(Product.name == "可乐"))
    assert product is not None
    assert product.category_id == leaf.id
    assert {t.name for t in (await session.scalars(select(Tag))).all()} >= {"热销", "夏季"}
    # four levels is a row error, never a fourth level
    r = await upload(
        client, h, xlsx([row(ean13(), "x", 1, **{"分类": "a/b/c/d"})]), create_categories=True
    )
    assert r.json()["errors"][0]["reason"] == "too_deep"


async def test_csv_utf8_and_gbk(client: httpx.AsyncClient, session: AsyncSession) -> None:
    h = await headers_for(session)
    a, b = ean13(), ean13()
    text = f"条码,名称,售价(元)\n{a},农夫山泉,2\n"
    r = await upload(client, h, text.encode(), "a.csv", encoding="utf-8")
    assert r.json()["created"] == 1
    gbk = f"条码,名称,售价(元)\n{b},康师傅红烧牛肉面,4.5\n".encode("gbk")
    before = await product_count(session)
    r = await upload(client, h, gbk, "b.csv", encoding="utf-8")
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "encoding"
    assert r.json()["details"][0]["reason"] == "encoding_mismatch"
    assert await product_count(session) == before
    r = await upload(client, h, gbk, "b.csv")  # automatic detection
    assert r.json()["created"] == 1
    assert (
        await session.scalar(
            select(Product.name).join(ProductBarcode).where(ProductBarcode.code == b)
        )
        == "康师傅红烧牛肉面"
    )


async def test_bad_files(client: httpx.AsyncClient, session: AsyncSession) -> None:
    h = await headers_for(session)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    r = await upload(client, h, png, "goods.xlsx")
    assert r.status_code == 415
    assert r.json()["details"][0]["field"] == "file"
    r = await upload(client, h, xlsx([["x"]], headers=["货号", "名称"]))
    assert r.status_code == 422
    assert r.json()["details"][0]["reason"] == "unknown_columns"
    r = await upload(client, h, xlsx([["x"]], headers=["名称"]))
    assert r.json()["details"][0]["reason"] == "missing_column"


async def test_large_file_runs_as_a_job(
    client: httpx.AsyncClient, session: AsyncSession, app: Any, jobs: Any
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"import_sync_max_rows": 2})
    h = await headers_for(session)
    before = await product_count(session)
    data = xlsx([row(ean13(), f"商品{i}", 1) for i in range(5)])
    r = await upload(client, h, data)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    assert r.json()["rows"] == 5
    r = await client.get(f"/api/v1/jobs/{job_id}", headers=h)
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["status"] == "succeeded", job
    assert (job["progress"], job["total"]) == (5, 5)
    assert job["result"]["created"] == 5
    assert await product_count(session) == before + 5
    # the upload kept for the job is gone
    media = app.state.settings.media_dir
    assert not (media / "imports").exists() or list((media / "imports").iterdir()) == []


async def test_an_imported_product_s_audit_entry_holds_every_field_it_was_created_with(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """The import builds its 50,000 create entries without diffing (for speed); each still holds
    every non-empty field, its barcodes, tags and stores, as a diff from nothing would."""
    h = await headers_for(session)
    cat = await make_category(session, "饮料")
    a = ean13()
    data = xlsx(
        [
            row(
                f"{a},SM-78",
                "冰红茶 500ml",
                "3.5",
                品牌="康师傅",
                规格="500ml",
                单位="瓶",
                分类="饮料",
                **{"成本价(元)": "2.1", "库存预警": 6, "标签": "热销", "保质期(天)": 270},
            )
        ]
    )
    r = await upload(client, h, data, create_tags=True)
    assert r.status_code == 200, r.text
    product = await session.scalar(select(Product).where(Product.name == "冰红茶 500ml"))
    assert product is not None
    entry = await session.scalar(
        select(AuditLog).where(
            AuditLog.action == "product.create", AuditLog.entity_id == str(product.id)
        )
    )
    assert entry is not None
    assert (entry.entity_label, entry.note) == ("冰红茶 500ml", "import")
    expected = audit.diff(
        None,
        {
            **audit.snapshot(
                product,
                (
                    "name",
                    "brand",
                    "spec",
                    "unit",
                    "category_id",
                    "price_fen",
                    "cost_fen",
                    "member_price_fen",
                    "shelf_life_days",
                    "track_batches",
                    "low_stock_threshold",
                    "status",
                ),
            ),
            "barcodes": [a, "SM-78"],
            "tags": ["热销"],
            "listed_in_stores": entry.changes["listed_in_stores"]["after"],
        },
    )
    assert entry.changes == expected
    assert entry.changes["category_id"]["after"] == cat.id
    assert entry.changes["price_fen"] == {"before": None, "after": 350}
    assert "member_price_fen" not in entry.changes  # empty, as a diff from nothing leaves it

"""Catalog business logic: products, barcodes, categories, tags, images, store listing.

Other domains call the functions in the "for other domains" section at the end (price for a
store, product by barcode, effective low-stock thresholds, category sub-trees).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.catalog import images as media
from selfmart.catalog import listing as listings
from selfmart.catalog import repository as repo
from selfmart.catalog.barcodes import Barcode, BarcodeError, parse_barcode
from selfmart.catalog.exceptions import (
    BarcodeTaken,
    CategoryNotEmpty,
    CategoryNotFound,
    ImageNotFound,
    ProductInUse,
    ProductNotFound,
    StoreNotFound,
    TagNotFound,
    invalid,
)
from selfmart.catalog.pinyin import search_keys
from selfmart.catalog.schemas import (
    BarcodeRead,
    CategoryCreate,
    CategoryMove,
    CategoryNode,
    CategoryReorder,
    CategoryUpdate,
    ImageRead,
    ListingRead,
    ListingUpsert,
    ProductCreate,
    ProductFilter,
    ProductRead,
    ProductUpdate,
    TagCreate,
    TagRead,
    TagUpdate,
)
from selfmart.config import Settings
from selfmart.errors import AlreadyExists, ErrorDetail, ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.kit import aftercommit
from selfmart.kit.pagination import PageParams, paginate
from selfmart.kit.tabular import XlsxSpool
from selfmart.models import (
    Category,
    Product,
    ProductBarcode,
    ProductImage,
    Store,
    StoreProduct,
    Tag,
)
from selfmart.models.catalog import MAX_CATEGORY_DEPTH

PRODUCT_FIELDS = (
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
)
LISTING_FIELDS = ("is_listed", "store_price_fen", "low_stock_threshold")


# --- presenting -----------------------------------------------------------------------------


def image_read(image: ProductImage, settings: Settings) -> ImageRead:
    return ImageRead(
        id=image.id,
        content_type=image.content_type,
        width=image.width,
        height=image.height,
        size_bytes=image.size_bytes,
        sort_order=image.sort_order,
        url=media.signed_url(settings, image.storage_key),
        thumb_url=media.signed_url(settings, image.thumb_key),
    )


def product_read(product: Product, settings: Settings) -> ProductRead:
    """A product with barcodes, tags and images loaded (repo.detail_options())."""
    return ProductRead(
        **{f: getattr(product, f) for f in PRODUCT_FIELDS},
        id=product.id,
        barcodes=[BarcodeRead(code=b.code, kind=b.kind) for b in product.barcodes],
        tags=[TagRead.model_validate(t) for t in product.tags],
        images=[image_read(i, settings) for i in product.images],
        created_at=product.created_at,
        updated_at=product.updated_at,
    )


def product_snapshot(product: Product) -> dict[str, Any]:
    snap = audit.snapshot(product, PRODUCT_FIELDS)
    snap["barcodes"] = sorted(b.code for b in product.barcodes)
    snap["tags"] = sorted(t.name for t in product.tags)
    return snap


# --- products -------------------------------------------------------------------------------


async def get_product(session: AsyncSession, product_id: int) -> Product:
    """A product with its barcodes, tags and images; ProductNotFound if there is none."""
    product = await session.scalar(
        select(Product).where(Product.id == product_id).options(*repo.detail_options())
    )
    if product is None:
        raise ProductNotFound(field="product_id")
    return product


def validate_barcodes(raw: Sequence[str], field: str = "barcodes") -> list[Barcode]:
    """Parse every code; a 422 names each bad one as `barcodes[i]` with its reason."""
    details: list[ErrorDetail] = []
    parsed: list[Barcode] = []
    seen: dict[str, int] = {}
    for i, code in enumerate(raw):
        try:
            bc = parse_barcode(code)
        except BarcodeError as exc:
            details.append(
                ErrorDetail(field=f"{field}[{i}]", reason=exc.reason, message=exc.message)
            )
            continue
        if bc.code in seen:
            details.append(
                ErrorDetail(
                    field=f"{field}[{i}]",
                    reason="duplicate",
                    message=f"{bc.code} is listed twice (also at {field}[{seen[bc.code]}])",
                )
            )
            continue
        seen[bc.code] = i
        parsed.append(bc)
    if details:
        raise ValidationFailed("Some barcodes are not valid", details=details)
    return parsed


async def _check_barcodes_free(
    session: AsyncSession, codes: list[Barcode], product_id: int | None
) -> None:
    if not codes:
        return
    stmt = select(ProductBarcode.code, ProductBarcode.product_id).where(
        ProductBarcode.code.in_([c.code for c in codes])
    )
    taken = {code: pid for code, pid in (await session.execute(stmt)).all() if pid != product_id}
    if taken:
        index = {c.code: i for i, c in enumerate(codes)}
        raise BarcodeTaken(
            "Some barcodes already belong to other products",
            details=[
                ErrorDetail(
                    field=f"barcodes[{index[code]}]",
                    reason="barcode_taken",
                    message=f"{code} already belongs to product {pid}",
                )
                for code, pid in sorted(taken.items(), key=lambda kv: index[kv[0]])
            ],
        )


async def _check_category(session: AsyncSession, category_id: int | None) -> None:
    if category_id is not None and await session.get(Category, category_id) is None:
        raise CategoryNotFound("No such category", field="category_id")


async def _load_tags(session: AsyncSession, tag_ids: Sequence[int]) -> list[Tag]:
    if not tag_ids:
        return []
    tags = list((await session.scalars(select(Tag).where(Tag.id.in_(set(tag_ids))))).all())
    missing = set(tag_ids) - {t.id for t in tags}
    if missing:
        raise invalid("tag_ids", "tag_not_found", f"No such tags: {sorted(missing)}")
    return tags


def refresh_search_keys(product: Product) -> None:
    """Keep the pinyin columns in step with name and brand."""
    # a new product sent without a brand has None here until the column default applies
    product.pinyin_full, product.pinyin_initials = search_keys(product.name, product.brand or "")


async def _flush_unique(session: AsyncSession) -> None:
    """Flush; a unique barcode taken by a concurrent request is a 409, not a 500."""
    try:
        await session.flush()
    except IntegrityError as exc:
        if "barcode" in str(exc.orig).lower():
            raise BarcodeTaken(field="barcodes") from None
        raise


async def create_product(session: AsyncSession, data: ProductCreate, *, actor: Actor) -> Product:
    codes = validate_barcodes(data.barcodes or [])
    await _check_barcodes_free(session, codes, None)
    await _check_category(session, data.category_id)
    tags = await _load_tags(session, data.tag_ids or [])
    store_ids = await listings.target_stores(session, actor, data.store_ids, field="store_ids")
    values = data.model_dump(exclude={"barcodes", "tag_ids", "store_ids"}, exclude_none=True)
    # Column defaults apply only at flush; the search keys need brand before that.
    values.setdefault("brand", "")
    values.setdefault("spec", "")
    product = Product(**values)
    refresh_search_keys(product)
    product.barcodes = [ProductBarcode(code=c.code, kind=c.kind) for c in codes]
    product.tags = tags
    product.images = []
    session.add(product)
    await _flush_unique(session)
    await listings.set_listed(session, [product.id], store_ids)
    await audit.record(
        session,
        actor,
        "product.create",
        "product",
        product.id,
        after={**product_snapshot(product), "listed_in_stores": store_ids},
    )
    return product


async def update_product(
    session: AsyncSession, product: Product, data: ProductUpdate, *, actor: Actor
) -> Product:
    before = product_snapshot(product)
    changes = data.model_dump(exclude_unset=True, exclude={"barcodes", "tag_ids"})
    for name in ("name", "price_fen", "cost_fen", "unit", "track_batches", "status"):
        if name in changes and changes[name] is None:
            raise invalid(name, "required", f"{name} cannot be null")
    if changes.get("low_stock_threshold", 0) is None:
        raise invalid("low_stock_threshold", "required", "low_stock_threshold cannot be null")
    if "category_id" in changes:
        await _check_category(session, changes["category_id"])
    if data.barcodes is not None:
        codes = validate_barcodes(data.barcodes)
        await _check_barcodes_free(session, codes, product.id)
        wanted = {c.code: c for c in codes}
        product.barcodes = [b for b in product.barcodes if b.code in wanted] + [
            ProductBarcode(code=c.code, kind=c.kind)
            for c in codes
            if c.code not in {b.code for b in product.barcodes}
        ]
    if data.tag_ids is not None:
        product.tags = await _load_tags(session, data.tag_ids)
    for name, value in changes.items():
        setattr(product, name, "" if value is None and name in ("brand", "spec") else value)
    refresh_search_keys(product)
    after = product_snapshot(product)
    if after != before:
        await _flush_unique(session)
        await audit.record(
            session, actor, "product.update", "product", product.id, before=before, after=after
        )
        if after["low_stock_threshold"] != before["low_stock_threshold"]:
            await listings.thresholds_changed(session, [product.id])
    else:
        await audit.record(
            session, actor, "product.update", "product", product.id, note="no change"
        )
    return product


async def delete_product(
    session: AsyncSession, product: Product, *, actor: Actor, storage: media.Storage
) -> None:
    before = product_snapshot(product)
    keys = [k for i in product.images for k in (i.storage_key, i.thumb_key)]
    product_id = product.id
    try:
        async with session.begin_nested():
            await session.execute(delete(Product).where(Product.id == product_id))
    except IntegrityError:
        raise ProductInUse(
            "The product has stock, orders or other records; set it off sale instead",
            field="product_id",
        ) from None
    session.expunge(product)
    await audit.record(session, actor, "product.delete", "product", product_id, before=before)
    _delete_files_after_commit(session, storage, keys)


def _delete_files_after_commit(
    session: AsyncSession, storage: media.Storage, keys: list[str]
) -> None:
    async def remove() -> None:
        for key in keys:
            await anyio.to_thread.run_sync(storage.delete, key)

    if keys:
        aftercommit.on_commit(session, remove)


async def search_products(
    session: AsyncSession, f: ProductFilter, sort: str, params: PageParams, *, actor: Actor
) -> tuple[list[Product], int]:
    if f.store_id is not None:
        await visible_store(session, actor, f.store_id)
    stmt = (await repo.product_search(session, f, sort, store_scope=actor.store_ids)).options(
        *repo.detail_options()
    )
    return await paginate(session, stmt, params)


async def get_by_barcode(session: AsyncSession, code: str) -> Product | None:
    """The product with this barcode (any of its barcodes), details loaded; None if unknown."""
    product_id = await session.scalar(
        select(ProductBarcode.product_id).where(ProductBarcode.code == code.strip().upper())
    )
    return None if product_id is None else await get_product(session, product_id)


EXPORT_HEADERS = [
    "ID",
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


async def export_products(
    session: AsyncSession, f: ProductFilter, sort: str, *, actor: Actor, batch: int = 1000
) -> XlsxSpool:
    """The whole search result as an xlsx, read in batches so memory stays flat."""
    from selfmart.kit.money import fen_to_yuan

    if f.store_id is not None:
        await visible_store(session, actor, f.store_id)
    names = await category_names(session)
    stmt = await repo.product_search(session, f, sort, store_scope=actor.store_ids)
    spool = XlsxSpool(EXPORT_HEADERS, title="商品")
    offset = 0
    while True:
        rows = (
            await session.scalars(stmt.options(*repo.detail_options()).limit(batch).offset(offset))
        ).all()
        for p in rows:
            spool.append(
                [
                    p.id,
                    ",".join(b.code for b in p.barcodes),
                    p.name,
                    p.brand,
                    p.spec,
                    p.unit,
                    names.get(p.category_id, "") if p.category_id else "",
                    fen_to_yuan(p.price_fen),
                    fen_to_yuan(p.cost_fen),
                    "" if p.member_price_fen is None else fen_to_yuan(p.member_price_fen),
                    p.shelf_life_days,
                    "是" if p.track_batches else "否",
                    p.low_stock_threshold,
                    "在售" if p.status == "on_sale" else "停售",
                    ",".join(t.name for t in p.tags),
                ]
            )
        session.expunge_all()
        if len(rows) < batch:
            break
        offset += batch
    return spool


# --- images -----------------------------------------------------------------------------------


async def add_image(
    session: AsyncSession,
    product: Product,
    data: bytes,
    *,
    actor: Actor,
    settings: Settings,
    storage: media.Storage,
) -> ProductImage:
    processed = await anyio.to_thread.run_sync(media.process, data, settings.image_thumb_px)
    key, thumb_key = media.new_keys(product.id, processed.ext)
    await anyio.to_thread.run_sync(storage.put, key, processed.data, processed.content_type)
    await anyio.to_thread.run_sync(storage.put, thumb_key, processed.thumb, "image/webp")
    image = ProductImage(
        product_id=product.id,
        storage_key=key,
        thumb_key=thumb_key,
        content_type=processed.content_type,
        width=processed.width,
        height=processed.height,
        size_bytes=len(processed.data),
        sort_order=max((i.sort_order for i in product.images), default=-1) + 1,
    )
    session.add(image)
    await session.flush()
    await audit.record(
        session,
        actor,
        "product.image_add",
        "product",
        product.id,
        after={"image_id": image.id, "content_type": image.content_type, "size": len(data)},
    )
    return image


async def delete_image(
    session: AsyncSession, product: Product, image_id: int, *, actor: Actor, storage: media.Storage
) -> None:
    image = next((i for i in product.images if i.id == image_id), None)
    if image is None:
        raise ImageNotFound(field="image_id")
    product.images.remove(image)
    await session.flush()
    await audit.record(
        session, actor, "product.image_delete", "product", product.id, before={"image_id": image_id}
    )
    _delete_files_after_commit(session, storage, [image.storage_key, image.thumb_key])


async def image_bytes(
    session: AsyncSession, product_id: int, image_id: int, *, thumb: bool, storage: media.Storage
) -> tuple[bytes, str]:
    image = await session.scalar(
        select(ProductImage).where(
            ProductImage.id == image_id, ProductImage.product_id == product_id
        )
    )
    if image is None:
        raise ImageNotFound(field="image_id")
    key = image.thumb_key if thumb else image.storage_key
    return await read_media(key, storage)


async def read_media(key: str, storage: media.Storage) -> tuple[bytes, str]:
    try:
        data = await anyio.to_thread.run_sync(storage.get, key)
    except KeyError:
        raise ImageNotFound() from None
    return data, media.content_type_for(key)


# --- categories -----------------------------------------------------------------------------


async def category_names(session: AsyncSession) -> dict[int, str]:
    """Full path names, "饮料/碳酸饮料/可乐", by category id."""
    rows = (await session.execute(select(Category.id, Category.parent_id, Category.name))).all()
    by_id = {r.id: r for r in rows}
    out: dict[int, str] = {}
    for r in rows:
        parts = [r.name]
        parent = r.parent_id
        while parent is not None and parent in by_id:
            parts.append(by_id[parent].name)
            parent = by_id[parent].parent_id
        out[r.id] = "/".join(reversed(parts))
    return out


async def category_tree(session: AsyncSession) -> list[CategoryNode]:
    cats = (
        await session.scalars(select(Category).order_by(Category.sort_order, Category.id))
    ).all()
    counts = await repo.count_products_by_category(session)
    nodes = {
        c.id: CategoryNode(
            id=c.id,
            parent_id=c.parent_id,
            name=c.name,
            depth=c.depth,
            sort_order=c.sort_order,
            product_count=counts.get(c.id, 0),
        )
        for c in cats
    }
    roots: list[CategoryNode] = []
    for c in cats:
        node = nodes[c.id]
        if c.parent_id is None:
            roots.append(node)
        else:
            nodes[c.parent_id].children.append(node)
    return roots


async def get_category(session: AsyncSession, category_id: int) -> Category:
    category = await session.get(Category, category_id)
    if category is None:
        raise CategoryNotFound(field="category_id")
    return category


async def _sibling_name_free(
    session: AsyncSession, parent_id: int | None, name: str, exclude_id: int | None = None
) -> None:
    stmt = select(Category.id).where(Category.name == name)
    stmt = stmt.where(
        Category.parent_id.is_(None) if parent_id is None else Category.parent_id == parent_id
    )
    if exclude_id is not None:
        stmt = stmt.where(Category.id != exclude_id)
    if await session.scalar(stmt) is not None:
        raise AlreadyExists(f"A category named {name} is already there", field="name")


async def _next_sort_order(session: AsyncSession, parent_id: int | None) -> int:
    stmt = select(func.max(Category.sort_order)).where(
        Category.parent_id.is_(None) if parent_id is None else Category.parent_id == parent_id
    )
    current = await session.scalar(stmt)
    return 0 if current is None else int(current) + 1


async def create_category(session: AsyncSession, data: CategoryCreate, *, actor: Actor) -> Category:
    parent = None
    if data.parent_id is not None:
        parent = await session.get(Category, data.parent_id)
        if parent is None:
            raise CategoryNotFound("No such parent category", field="parent_id")
        if parent.depth >= MAX_CATEGORY_DEPTH:
            raise invalid(
                "parent_id",
                "too_deep",
                f"Categories nest at most {MAX_CATEGORY_DEPTH} levels deep",
            )
    await _sibling_name_free(session, data.parent_id, data.name)
    category = Category(
        name=data.name,
        parent_id=data.parent_id,
        depth=1 if parent is None else parent.depth + 1,
        sort_order=(
            data.sort_order
            if data.sort_order is not None
            else await _next_sort_order(session, data.parent_id)
        ),
    )
    session.add(category)
    await session.flush()
    category.path = f"{parent.path if parent else '/'}{category.id}/"
    await session.flush()
    await audit.record(
        session,
        actor,
        "category.create",
        "category",
        category.id,
        after=audit.snapshot(category, ("name", "parent_id", "depth", "sort_order")),
    )
    return category


async def update_category(
    session: AsyncSession, category: Category, data: CategoryUpdate, *, actor: Actor
) -> Category:
    before = audit.snapshot(category, ("name",))
    if data.name is not None and data.name != category.name:
        await _sibling_name_free(session, category.parent_id, data.name, category.id)
        category.name = data.name
    await session.flush()
    await audit.record(
        session,
        actor,
        "category.update",
        "category",
        category.id,
        before=before,
        after=audit.snapshot(category, ("name",)),
    )
    return category


async def _siblings(session: AsyncSession, parent_id: int | None) -> list[Category]:
    stmt = select(Category).where(
        Category.parent_id.is_(None) if parent_id is None else Category.parent_id == parent_id
    )
    return list((await session.scalars(stmt.order_by(Category.sort_order, Category.id))).all())


async def move_category(
    session: AsyncSession, category: Category, data: CategoryMove, *, actor: Actor
) -> Category:
    """Move a category (with its sub-tree) under another parent, at a position."""
    before = audit.snapshot(category, ("parent_id", "depth", "sort_order"))
    subtree = list(
        (
            await session.scalars(select(Category).where(Category.path.startswith(category.path)))
        ).all()
    )
    height = max(c.depth for c in subtree) - category.depth
    parent = None
    if data.parent_id is not None:
        parent = await session.get(Category, data.parent_id)
        if parent is None:
            raise CategoryNotFound("No such parent category", field="parent_id")
        if parent.path.startswith(category.path):
            raise invalid("parent_id", "cycle", "A category cannot move under itself")
    new_depth = 1 if parent is None else parent.depth + 1
    if new_depth + height > MAX_CATEGORY_DEPTH:
        raise invalid(
            "parent_id",
            "too_deep",
            f"Categories nest at most {MAX_CATEGORY_DEPTH} levels deep; "
            f"this sub-tree is {height + 1} levels and would start at level {new_depth}",
        )
    if data.parent_id != category.parent_id:
        await _sibling_name_free(session, data.parent_id, category.name, category.id)
    old_path = category.path
    new_path = f"{parent.path if parent else '/'}{category.id}/"
    shift = new_depth - category.depth
    for c in subtree:
        c.path = new_path + c.path[len(old_path) :]
        c.depth += shift
    category.parent_id = data.parent_id
    siblings = [s for s in await _siblings(session, data.parent_id) if s.id != category.id]
    position = len(siblings) if data.position is None else min(data.position, len(siblings))
    siblings.insert(position, category)
    for i, s in enumerate(siblings):
        s.sort_order = i
    await session.flush()
    await audit.record(
        session,
        actor,
        "category.move",
        "category",
        category.id,
        before=before,
        after=audit.snapshot(category, ("parent_id", "depth", "sort_order")),
    )
    return category


async def reorder_categories(
    session: AsyncSession, data: CategoryReorder, *, actor: Actor
) -> list[Category]:
    siblings = await _siblings(session, data.parent_id)
    if sorted(data.ids) != sorted(s.id for s in siblings):
        raise invalid(
            "ids",
            "not_the_children",
            "ids must list every child of parent_id exactly once",
        )
    by_id = {s.id: s for s in siblings}
    before = {str(s.id): s.sort_order for s in siblings}
    for i, cid in enumerate(data.ids):
        by_id[cid].sort_order = i
    await session.flush()
    await audit.record(
        session,
        actor,
        "category.reorder",
        "category",
        data.parent_id,
        before={"order": [s.id for s in siblings], "sort_order": before},
        after={"order": data.ids},
    )
    return [by_id[i] for i in data.ids]


async def delete_category(session: AsyncSession, category: Category, *, actor: Actor) -> None:
    has_child = await session.scalar(select(Category.id).where(Category.parent_id == category.id))
    has_product = await session.scalar(
        select(Product.id).where(Product.category_id == category.id).limit(1)
    )
    if has_child is not None or has_product is not None:
        raise CategoryNotEmpty(field="category_id")
    before = audit.snapshot(category, ("name", "parent_id", "depth"))
    await session.delete(category)
    await session.flush()
    await audit.record(session, actor, "category.delete", "category", category.id, before=before)


# --- tags -----------------------------------------------------------------------------------


async def list_tags(session: AsyncSession) -> list[Tag]:
    return list((await session.scalars(select(Tag).order_by(Tag.name))).all())


async def get_tag(session: AsyncSession, tag_id: int) -> Tag:
    tag = await session.get(Tag, tag_id)
    if tag is None:
        raise TagNotFound(field="tag_id")
    return tag


async def _tag_name_free(session: AsyncSession, name: str, exclude_id: int | None = None) -> None:
    stmt = select(Tag.id).where(Tag.name == name)
    if exclude_id is not None:
        stmt = stmt.where(Tag.id != exclude_id)
    if await session.scalar(stmt) is not None:
        raise AlreadyExists(f"A tag named {name} exists", field="name")


async def create_tag(session: AsyncSession, data: TagCreate, *, actor: Actor) -> Tag:
    await _tag_name_free(session, data.name)
    tag = Tag(name=data.name, color=data.color)
    session.add(tag)
    await session.flush()
    await audit.record(
        session, actor, "tag.create", "tag", tag.id, after=audit.snapshot(tag, ("name", "color"))
    )
    return tag


async def update_tag(session: AsyncSession, tag: Tag, data: TagUpdate, *, actor: Actor) -> Tag:
    before = audit.snapshot(tag, ("name", "color"))
    changes = data.model_dump(exclude_unset=True)
    if changes.get("name") is not None and changes["name"] != tag.name:
        await _tag_name_free(session, changes["name"], tag.id)
        tag.name = changes["name"]
    if "color" in changes:
        tag.color = changes["color"]
    await session.flush()
    await audit.record(
        session,
        actor,
        "tag.update",
        "tag",
        tag.id,
        before=before,
        after=audit.snapshot(tag, ("name", "color")),
    )
    return tag


async def delete_tag(session: AsyncSession, tag: Tag, *, actor: Actor) -> None:
    before = audit.snapshot(tag, ("name", "color"))
    await session.execute(delete(Tag).where(Tag.id == tag.id))
    session.expunge(tag)
    await audit.record(session, actor, "tag.delete", "tag", tag.id, before=before)


# --- per-store listing ----------------------------------------------------------------------


async def visible_store(session: AsyncSession, actor: Actor, store_id: int) -> Store:
    """The store, if this actor may see it; another store is a 404, as if it did not exist."""
    stmt = select(Store).where(Store.id == store_id, repo.visible_store_ids(actor.store_ids))
    store = await session.scalar(stmt)
    if store is None:
        raise StoreNotFound(field="store_id")
    return store


def listing_read(listing: StoreProduct, product: Product) -> ListingRead:
    return ListingRead(
        store_id=listing.store_id,
        product_id=listing.product_id,
        is_listed=listing.is_listed,
        store_price_fen=listing.store_price_fen,
        low_stock_threshold=listing.low_stock_threshold,
        effective_price_fen=(
            listing.store_price_fen if listing.store_price_fen is not None else product.price_fen
        ),
        effective_low_stock_threshold=(
            listing.low_stock_threshold
            if listing.low_stock_threshold is not None
            else product.low_stock_threshold
        ),
        product_name=product.name,
    )


async def store_listings(
    session: AsyncSession, store_id: int, params: PageParams, *, actor: Actor
) -> tuple[list[ListingRead], int]:
    await visible_store(session, actor, store_id)
    stmt = (
        select(StoreProduct, Product)
        .join(Product, Product.id == StoreProduct.product_id)
        .where(StoreProduct.store_id == store_id)
        .order_by(Product.name, Product.id)
    )
    total = await session.scalar(
        select(func.count()).select_from(StoreProduct).where(StoreProduct.store_id == store_id)
    )
    rows = (await session.execute(stmt.limit(params.size).offset(params.offset))).all()
    return [listing_read(sp, p) for sp, p in rows], int(total or 0)


async def product_listings(
    session: AsyncSession, product: Product, *, actor: Actor
) -> list[ListingRead]:
    stmt = (
        select(StoreProduct)
        .join(Store, Store.id == StoreProduct.store_id)
        .where(StoreProduct.product_id == product.id, repo.visible_store_ids(actor.store_ids))
        .order_by(StoreProduct.store_id)
    )
    return [listing_read(sp, product) for sp in (await session.scalars(stmt)).all()]


async def upsert_listing(
    session: AsyncSession,
    store_id: int,
    product_id: int,
    data: ListingUpsert,
    *,
    actor: Actor,
) -> ListingRead:
    await visible_store(session, actor, store_id)
    product = await session.get(Product, product_id)
    if product is None:
        raise ProductNotFound(field="product_id")
    listing = await session.scalar(
        select(StoreProduct).where(
            StoreProduct.store_id == store_id, StoreProduct.product_id == product_id
        )
    )
    before = None if listing is None else audit.snapshot(listing, LISTING_FIELDS)
    if listing is None:
        listing = StoreProduct(store_id=store_id, product_id=product_id)
        session.add(listing)
    listing.is_listed = data.is_listed
    listing.store_price_fen = data.store_price_fen
    listing.low_stock_threshold = data.low_stock_threshold
    await session.flush()
    await listings.thresholds_changed(session, [product_id], store_ids=[store_id])
    await audit.record(
        session,
        actor,
        "product.list" if before is None else "product.listing_update",
        "product",
        product_id,
        store_id=store_id,
        before=before,
        after=audit.snapshot(listing, LISTING_FIELDS),
    )
    return listing_read(listing, product)


async def delete_listing(
    session: AsyncSession, store_id: int, product_id: int, *, actor: Actor
) -> None:
    await visible_store(session, actor, store_id)
    listing = await session.scalar(
        select(StoreProduct).where(
            StoreProduct.store_id == store_id, StoreProduct.product_id == product_id
        )
    )
    if listing is None:
        raise ProductNotFound("The product is not listed in this store", field="product_id")
    before = audit.snapshot(listing, LISTING_FIELDS)
    await session.delete(listing)
    await session.flush()
    await listings.thresholds_changed(session, [product_id], store_ids=[store_id])
    await audit.record(
        session, actor, "product.unlist", "product", product_id, store_id=store_id, before=before
    )


# --- for other domains (inventory, orders, purchasing) --------------------------------------


@dataclass(frozen=True, slots=True)
class SaleItem:
    """What a sale needs to know about a product in one store."""

    product_id: int
    name: str
    spec: str
    unit: str
    on_sale: bool
    listed: bool
    #: Retail price in this store (store price when set, else the product's price).
    price_fen: int
    #: The member price in this store: the product's member price when lower, else price_fen.
    member_price_fen: int
    cost_fen: int
    track_batches: bool


async def sale_items(
    session: AsyncSession,
    store_id: int,
    *,
    product_ids: Sequence[int] = (),
    barcodes: Sequence[str] = (),
) -> dict[int, SaleItem]:
    """Sale facts for products in a store, by product id, in one query.

    Unknown products are absent; products not listed in the store come back with
    listed=False (the caller decides whether that refuses the sale).
    """
    ids = set(product_ids)
    if barcodes:
        codes = [c.strip().upper() for c in barcodes]
        ids |= set(
            (
                await session.scalars(
                    select(ProductBarcode.product_id).where(ProductBarcode.code.in_(codes))
                )
            ).all()
        )
    if not ids:
        return {}
    stmt = (
        select(
            Product.id,
            Product.name,
            Product.spec,
            Product.unit,
            Product.status,
            Product.price_fen,
            Product.member_price_fen,
            Product.cost_fen,
            Product.track_batches,
            StoreProduct.is_listed,
            StoreProduct.store_price_fen,
        )
        .outerjoin(
            StoreProduct,
            (StoreProduct.product_id == Product.id) & (StoreProduct.store_id == store_id),
        )
        .where(Product.id.in_(ids))
    )
    out: dict[int, SaleItem] = {}
    for r in (await session.execute(stmt)).all():
        price = r.store_price_fen if r.store_price_fen is not None else r.price_fen
        member = price if r.member_price_fen is None else min(price, r.member_price_fen)
        out[r.id] = SaleItem(
            product_id=r.id,
            name=r.name,
            spec=r.spec,
            unit=r.unit,
            on_sale=r.status == "on_sale",
            listed=bool(r.is_listed),
            price_fen=price,
            member_price_fen=member,
            cost_fen=r.cost_fen,
            track_batches=r.track_batches,
        )
    return out


async def price_for(
    session: AsyncSession, store_id: int, product_id: int, *, member: bool = False
) -> int:
    """What one unit costs in this store (member price for members); ProductNotFound if none."""
    item = (await sale_items(session, store_id, product_ids=[product_id])).get(product_id)
    if item is None:
        raise ProductNotFound(field="product_id")
    return item.member_price_fen if member else item.price_fen


async def low_stock_thresholds(
    session: AsyncSession, store_id: int, product_ids: Sequence[int]
) -> dict[int, int]:
    """Effective low-stock threshold per product in a store (store override, else product)."""
    if not product_ids:
        return {}
    stmt = (
        select(Product.id, Product.low_stock_threshold, StoreProduct.low_stock_threshold)
        .outerjoin(
            StoreProduct,
            (StoreProduct.product_id == Product.id) & (StoreProduct.store_id == store_id),
        )
        .where(Product.id.in_(set(product_ids)))
    )
    return {
        pid: (override if override is not None else default)
        for pid, default, override in (await session.execute(stmt)).all()
    }


async def listed_product_ids(session: AsyncSession, store_id: int) -> list[int]:
    """Products listed in a store (for stocktakes and reorder suggestions)."""
    stmt = select(StoreProduct.product_id).where(
        StoreProduct.store_id == store_id, StoreProduct.is_listed.is_(True)
    )
    return list((await session.scalars(stmt.order_by(StoreProduct.product_id))).all())


async def product_ids_in_categories(
    session: AsyncSession, category_ids: Sequence[int]
) -> list[int]:
    """Products in these categories or any of their sub-categories."""
    cats = await repo.subtree_ids(session, category_ids)
    if not cats:
        return []
    stmt = select(Product.id).where(Product.category_id.in_(cats)).order_by(Product.id)
    return list((await session.scalars(stmt)).all())


async def touch_products(session: AsyncSession, product_ids: Sequence[int]) -> None:
    """Bump updated_at (used after bulk Core updates)."""
    from selfmart.kit.time import utcnow

    if product_ids:
        await session.execute(
            update(Product).where(Product.id.in_(product_ids)).values(updated_at=utcnow())
        )

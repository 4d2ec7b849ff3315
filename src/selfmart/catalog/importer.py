"""Product import from xlsx or csv: parse, validate every row, then write — or write nothing.

`import_table()` is the whole import for an already-read table and takes a `progress`
callback, so running it as a background job is a thin wrapper (see tasks.py). Upsert is by
barcode: a row whose barcode is known updates that product (empty cells keep the current
value), any other row creates a product. Prices are yuan in the file ("3.50"), stored in fen;
a price with more than two decimals is a row error, never rounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, cast

import anyio
from sqlalchemy import Table as SqlTable
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.catalog import listing as listings
from selfmart.catalog.barcodes import BarcodeError, parse_barcode
from selfmart.catalog.exceptions import invalid, unsupported
from selfmart.catalog.pinyin import search_keys
from selfmart.catalog.schemas import ImportMode, ImportReport
from selfmart.iam.actor import Actor
from selfmart.kit import hotsql, tabular
from selfmart.kit.rowimport import Columns, ImportRowError
from selfmart.kit.schema import CONTROL, CONTROL_MULTILINE
from selfmart.kit.tabular import Cell, Encoding, Table, TabularError
from selfmart.kit.time import utcnow
from selfmart.models import Category, Product, ProductBarcode, ProductTag, Tag
from selfmart.models.catalog import MAX_CATEGORY_DEPTH

Progress = Callable[[int, int], Awaitable[None]]
MAX_REPORTED_ERRORS = 2000
CHUNK = 500


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    note: str
    example: tuple[str, str]


COLUMNS: list[Column] = [
    Column(
        "barcode",
        "条码",
        "必填。EAN-13/EAN-8/UPC-A（校验位）或以字母开头的店内码；多个用逗号分隔，第一个用于匹配",
        ("6901234567892", "SM000001"),
    ),
    Column("name", "名称", "新建商品必填", ("可口可乐 汽水", "散装鸡蛋")),
    Column("brand", "品牌", "", ("可口可乐", "")),
    Column("spec", "规格", "如 500ml、24罐/箱", ("500ml", "约50g/枚")),
    Column("unit", "单位", "默认 件", ("瓶", "枚")),
    Column(
        "category",
        "分类",
        "用 / 分隔的分类路径，最多三级，如 饮料/碳酸饮料",
        ("饮料/碳酸饮料", "生鲜/蛋类"),
    ),
    Column("price", "售价(元)", "新建商品必填，最多两位小数", ("3.50", "0.99")),
    Column("cost", "成本价(元)", "最多两位小数", ("2.10", "0.60")),
    Column("member_price", "会员价(元)", "可空", ("3.20", "")),
    Column("shelf_life_days", "保质期(天)", "正整数，可空", ("365", "30")),
    Column("track_batches", "批次管理", "是/否：入库时是否登记批次和到期日", ("否", "是")),
    Column("low_stock_threshold", "库存预警", "非负整数", ("12", "30")),
    Column("status", "状态", "在售/停售，默认在售", ("在售", "在售")),
    Column("tags", "标签", "多个用逗号分隔；填写时替换原有标签", ("热销,夏季", "")),
]
_BY_KEY = {c.key: c for c in COLUMNS}

#: The columns as the shared import reader matches them: labels, keys and common aliases.
HEADERS = Columns(
    {c.key: c.label for c in COLUMNS},
    aliases={
        "商品条码": "barcode",
        "条形码": "barcode",
        "商品名称": "name",
        "品名": "name",
        "零售价": "price",
        "价格": "price",
        "price_yuan": "price",
        "进价": "cost",
        "成本": "cost",
        "会员价": "member_price",
        "保质期": "shelf_life_days",
        "预警": "low_stock_threshold",
        "库存预警值": "low_stock_threshold",
    },
    ignored=("id",),
    required=("barcode",),
)


@dataclass
class ImportOptions:
    mode: ImportMode = "all_or_nothing"
    encoding: Encoding = "auto"
    create_categories: bool = False
    create_tags: bool = False
    max_rows: int = 100_000
    #: The stores new products are listed in (resolved from the user's choice by the caller).
    store_ids: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Row:
    number: int
    codes: list[tuple[str, str]]  # (code, kind); the first is the upsert key
    values: dict[str, Any] = field(default_factory=dict)
    category: tuple[str, ...] | None = None
    tags: list[str] | None = None
    product_id: int | None = None
    #: False when a cell failed to parse (the row is still checked for everything else).
    ok: bool = True
    failed: set[str] = field(default_factory=set)


class _RowErrors(Exception):
    pass


# --- cell parsing ---------------------------------------------------------------------------


def _text(cell: Cell) -> str:
    if type(cell) is str:  # nearly every cell: checked first
        return cell.strip()
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "是" if cell else "否"
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, datetime | date):
        return cell.isoformat()
    return str(cell).strip()


def _yuan_to_fen(cell: Cell) -> int:
    if isinstance(cell, bool):
        raise ValueError("not_a_number", "is not a number")
    if isinstance(cell, int):
        amount = Decimal(cell)
    elif isinstance(cell, float):
        # repr() is the shortest text that round-trips: 3.505 stays 3.505, never 3.50499...
        amount = Decimal(repr(cell))
    else:
        text = _text(cell).replace(",", "").replace("¥", "").replace("￥", "").strip()
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise ValueError("not_a_number", f"{text!r} is not an amount in yuan") from None
    if not amount.is_finite():
        raise ValueError("not_a_number", "is not an amount in yuan")
    if amount < 0:
        raise ValueError("negative", "must not be negative")
    fen = amount * 100
    if fen != fen.to_integral_value():
        raise ValueError(
            "not_whole_fen", f"{amount} yuan is not a whole number of fen (at most 2 decimals)"
        )
    if fen > 10_000_000_000:
        raise ValueError("too_large", "is too large")
    return int(fen)


def _integer(cell: Cell, minimum: int) -> int:
    if isinstance(cell, bool):
        raise ValueError("not_an_integer", "is not a whole number")
    if isinstance(cell, float):
        if not cell.is_integer():
            raise ValueError("not_an_integer", f"{cell!r} is not a whole number")
        value = int(cell)
    elif isinstance(cell, int):
        value = cell
    else:
        text = _text(cell)
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError("not_an_integer", f"{text!r} is not a whole number")
        value = int(text)
    if value < minimum:
        raise ValueError("out_of_range", f"must be at least {minimum}")
    if value > 10_000_000:
        raise ValueError("out_of_range", "is too large")
    return value


_TRUE = {"是", "y", "yes", "true", "1", "✓", "√", "开", "启用"}
_FALSE = {"否", "n", "no", "false", "0", "关", "不"}


def _boolean(cell: Cell) -> bool:
    if isinstance(cell, bool):
        return cell
    text = _text(cell).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("not_yes_no", f"{text!r} is not 是 or 否")


_STATUS = {
    "在售": "on_sale",
    "上架": "on_sale",
    "on_sale": "on_sale",
    "停售": "off_sale",
    "下架": "off_sale",
    "off_sale": "off_sale",
}


def _status(cell: Cell) -> str:
    text = _text(cell).lower()
    if text not in _STATUS:
        raise ValueError("bad_status", f"{text!r} is not 在售 or 停售")
    return _STATUS[text]


_SEPARATORS = re.compile(r"[,，、;；\n]")


def _split(text: str) -> list[str]:
    if not _SEPARATORS.search(text):  # one value, as nearly every cell holds
        text = text.strip()
        return [text] if text else []
    return [p.strip() for p in _SEPARATORS.split(text) if p.strip()]


def _limited(cell: Cell, limit: int) -> str:
    text = _text(cell)
    if len(text) > limit:
        raise ValueError("too_long", f"is longer than {limit} characters")
    return text


_CATEGORY_SEPARATORS = re.compile(r"[/>＞／]")


@functools.lru_cache(maxsize=4096)
def _category_path(text: str) -> tuple[str, ...]:
    # Cached: a file of 50,000 products names a few dozen category paths over and over.
    parts = tuple(p.strip() for p in _CATEGORY_SEPARATORS.split(text) if p.strip())
    if len(parts) > MAX_CATEGORY_DEPTH:
        raise ValueError("too_deep", f"categories nest at most {MAX_CATEGORY_DEPTH} levels")
    if any(len(p) > 64 for p in parts):
        raise ValueError("too_long", "a category name is longer than 64 characters")
    return parts


#: column key -> (product field, parser) for the columns that are one field each
_VALUE_PARSERS: dict[str, tuple[str, Callable[[Cell], Any]]] = {
    "price": ("price_fen", _yuan_to_fen),
    "cost": ("cost_fen", _yuan_to_fen),
    "member_price": ("member_price_fen", _yuan_to_fen),
    "name": ("name", functools.partial(_limited, limit=200)),
    "brand": ("brand", functools.partial(_limited, limit=100)),
    "spec": ("spec", functools.partial(_limited, limit=64)),
    "unit": ("unit", functools.partial(_limited, limit=16)),
    "shelf_life_days": ("shelf_life_days", functools.partial(_integer, minimum=1)),
    "low_stock_threshold": ("low_stock_threshold", functools.partial(_integer, minimum=0)),
    "track_batches": ("track_batches", _boolean),
    "status": ("status", _status),
}


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """No cyclic garbage collection in a stretch of parsing or building rows.

    Those build hundreds of thousands of small objects (cells, rows, audit changes) that all
    live on and hold no cycles, and the collector would scan them over and over as they pile
    up: about a third of the stretch's CPU. Only for code that does not await (no other
    request runs meanwhile); reference counting still frees everything as usual."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- reading and validating -----------------------------------------------------------------


def map_headers(headers: Sequence[str]) -> dict[int, str]:
    """Column index → key; a 422 naming unknown, duplicate or missing columns."""
    return HEADERS.map(list(headers))


class _Collector:
    def __init__(self, labels: dict[str, str]) -> None:
        self.errors: list[ImportRowError] = []
        self.bad_rows: set[int] = set()
        self.labels = labels

    def add(self, row: int, key: str | None, reason: str, message: str, value: Cell = None) -> None:
        self.bad_rows.add(row)
        if len(self.errors) < MAX_REPORTED_ERRORS:
            shown = None if value is None else _text(value)[:100]
            column = None if key is None else self.labels.get(key, _BY_KEY[key].label)
            self.errors.append(
                ImportRowError(row=row, column=column, reason=reason, message=message, value=shown)
            )


def parse_rows(table: Table, mapping: dict[int, str], errors: _Collector) -> list[Row]:
    """Every row parsed into typed values; problems go to `errors` and mark the row not ok."""
    rows: list[Row] = []
    first_seen: dict[str, int] = {}
    columns = list(mapping.items())
    for number, cells in table.rows:
        by_key: dict[str, Cell] = {}
        n = len(cells)
        for i, key in columns:
            # Blank cells are left out, as if the column were not in the file.
            if i < n and (cell := cells[i]) is not None and (type(cell) is not str or cell.strip()):
                by_key[key] = cell
        row = Row(number=number, codes=[])
        ok = True
        raw_codes = _split(_text(by_key.get("barcode")))
        if not raw_codes:
            errors.add(number, "barcode", "required", "the barcode is empty")
            ok = False
        for code in raw_codes:
            try:
                bc = parse_barcode(code)
            except BarcodeError as exc:
                errors.add(number, "barcode", exc.reason, exc.message, code)
                ok = False
                continue
            if bc.code in first_seen:
                errors.add(
                    number,
                    "barcode",
                    "duplicate_in_file",
                    f"{bc.code} already appears in row {first_seen[bc.code]}",
                    code,
                )
                ok = False
                continue
            first_seen[bc.code] = number
            row.codes.append((bc.code, bc.kind))
        for key, cell in by_key.items():
            # A cell of several barcodes or tags may put one on each line.
            control = CONTROL_MULTILINE if key in ("barcode", "tags") else CONTROL
            if type(cell) is str and (found := control.search(cell)):
                message = f"contains a control character ({found.group()!r})"
                errors.add(number, key, "control_character", message, cell)
                row.failed.add(key)
                ok = False
                continue
            try:
                if (parser := _VALUE_PARSERS.get(key)) is not None:
                    row.values[parser[0]] = parser[1](cell)
                elif key == "category":
                    row.category = _category_path(_text(cell)) or None
                elif key == "tags":
                    names = _split(_text(cell))
                    if any(len(n) > 32 for n in names):
                        raise ValueError("too_long", "a tag is longer than 32 characters")
                    row.tags = list(dict.fromkeys(names))
            except ValueError as exc:
                reason, message = exc.args if len(exc.args) == 2 else ("invalid", str(exc))
                errors.add(number, key, reason, message, cell)
                row.failed.add(key)
                ok = False
        row.ok = ok
        rows.append(row)
    return rows


async def _existing_barcodes(session: AsyncSession, codes: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for i in range(0, len(codes), CHUNK):
        stmt = select(ProductBarcode.code, ProductBarcode.product_id).where(
            ProductBarcode.code.in_(codes[i : i + CHUNK])
        )
        for code, pid in (await session.execute(stmt)).all():
            found[code] = pid
    return found


async def _category_paths(session: AsyncSession) -> dict[tuple[str, ...], int]:
    rows = (await session.execute(select(Category.id, Category.parent_id, Category.name))).all()
    by_id = {r.id: r for r in rows}
    out: dict[tuple[str, ...], int] = {}
    for r in rows:
        parts = [r.name]
        parent = r.parent_id
        while parent is not None and parent in by_id:
            parts.append(by_id[parent].name)
            parent = by_id[parent].parent_id
        out[tuple(reversed(parts))] = r.id
    return out


async def resolve(
    session: AsyncSession, rows: list[Row], options: ImportOptions, errors: _Collector
) -> tuple[list[Row], dict[tuple[str, ...], int], dict[str, int], list[tuple[str, ...]], list[str]]:
    """Match rows to existing products, categories and tags; check what a create needs."""
    known = await _existing_barcodes(session, [c for r in rows for c, _ in r.codes])
    cats = await _category_paths(session)
    tags = {name: tid for tid, name in (await session.execute(select(Tag.id, Tag.name))).all()}
    new_cats: list[tuple[str, ...]] = []
    new_tags: list[str] = []
    good: list[Row] = []
    for row in rows:
        owners = {known[c] for c, _ in row.codes if c in known}
        ok = True
        if len(owners) > 1:
            errors.add(
                row.number,
                "barcode",
                "barcodes_of_different_products",
                f"these barcodes belong to different products ({sorted(owners)})",
            )
            ok = False
        row.product_id = next(iter(owners)) if len(owners) == 1 else None
        if row.product_id is None and row.codes:
            for key, name in (("name", "name"), ("price", "price_fen")):
                if name not in row.values and key not in row.failed:
                    errors.add(
                        row.number,
                        key,
                        "required",
                        f"{_BY_KEY[key].label} is required for a new product",
                    )
                    ok = False
        if row.category is not None and row.category not in cats:
            if not options.create_categories:
                errors.add(
                    row.number,
                    "category",
                    "category_not_found",
                    "no such category (tick 'create categories' to create it)",
                    "/".join(row.category),
                )
                ok = False
            else:
                for depth in range(1, len(row.category) + 1):
                    prefix = row.category[:depth]
                    if prefix not in cats and prefix not in new_cats:
                        new_cats.append(prefix)
        for name in row.tags or []:
            if name not in tags:
                if not options.create_tags:
                    errors.add(
                        row.number,
                        "tags",
                        "tag_not_found",
                        f"no tag {name!r} (tick 'create tags' to create it)",
                        name,
                    )
                    ok = False
                elif name not in new_tags:
                    new_tags.append(name)
        if ok and row.ok:
            good.append(row)
    # Only create what the rows that will be written need.
    needed_cats = {
        r.category[:d] for r in good if r.category for d in range(1, len(r.category) + 1)
    }
    needed_tags = {t for r in good for t in r.tags or []}
    return (
        good,
        cats,
        tags,
        [c for c in new_cats if c in needed_cats],
        [t for t in new_tags if t in needed_tags],
    )


# --- writing --------------------------------------------------------------------------------

_AUDIT_FIELDS = (
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


async def _create_categories(
    session: AsyncSession,
    actor: Actor,
    paths: list[tuple[str, ...]],
    cats: dict[tuple[str, ...], int],
) -> None:
    for path in sorted(paths, key=len):
        parent_id = cats.get(path[:-1]) if len(path) > 1 else None
        parent = await session.get(Category, parent_id) if parent_id else None
        category = Category(name=path[-1], parent_id=parent_id, depth=len(path), sort_order=0)
        session.add(category)
        await session.flush()
        category.path = f"{parent.path if parent else '/'}{category.id}/"
        cats[path] = category.id
        await audit.record(
            session,
            actor,
            "category.create",
            "category",
            category.id,
            after={"name": category.name, "parent_id": parent_id, "depth": category.depth},
            note="created by product import",
        )
    await session.flush()


async def _create_tags(
    session: AsyncSession, actor: Actor, names: list[str], tags: dict[str, int]
) -> None:
    for name in names:
        tag = Tag(name=name)
        session.add(tag)
        await session.flush()
        tags[name] = tag.id
        await audit.record(
            session,
            actor,
            "tag.create",
            "tag",
            tag.id,
            after={"name": name},
            note="created by product import",
        )


async def _current(session: AsyncSession, ids: list[int]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    cols = [getattr(Product, f) for f in _AUDIT_FIELDS]
    for i in range(0, len(ids), CHUNK):
        stmt = select(Product.id, *cols).where(Product.id.in_(ids[i : i + CHUNK]))
        for r in (await session.execute(stmt)).all():
            out[r.id] = {f: getattr(r, f) for f in _AUDIT_FIELDS}
    return out


_products = cast(SqlTable, Product.__table__)
_barcodes = cast(SqlTable, ProductBarcode.__table__)
_product_tags = cast(SqlTable, ProductTag.__table__)

#: A new product's columns as `_prepare_creates` lays them out: the audited fields first, in
#: the order of _AUDIT_FIELDS, then the search keys (created_at and updated_at are shared).
_PRODUCT_COLUMNS = (*_AUDIT_FIELDS, "pinyin_full", "pinyin_initials")


@dataclass(slots=True)
class _Created:
    """A row to create: its product's values and its audit entry's changes (no id yet)."""

    row: Row
    values: tuple[Any, ...]
    changes: dict[str, Any]
    label: str


#: Rows built between two looks at the chunk being written.
_SLICE = 100


def _prepare_creates(
    chunk: list[Row], cats: dict[tuple[str, ...], int], stores: list[int]
) -> list[_Created]:
    out: list[_Created] = []
    audited = len(_AUDIT_FIELDS)
    for r in chunk:
        v = r.values
        get = v.get
        name, brand = v["name"], get("brand", "")
        values = (
            name,
            brand,
            get("spec", ""),
            get("unit", "件"),
            cats[r.category] if r.category else None,
            v["price_fen"],
            get("cost_fen", 0),
            get("member_price_fen"),
            get("shelf_life_days"),
            get("track_batches", False),
            get("low_stock_threshold", 0),
            get("status", "on_sale"),
            *search_keys(name, brand),
        )
        after = dict(zip(_AUDIT_FIELDS, values[:audited], strict=True))
        after["barcodes"] = [c for c, _ in r.codes]
        after["tags"] = sorted(r.tags or [])
        after["listed_in_stores"] = stores
        # Every value is JSON-ready by construction (parsed cells, ids), so the entry's changes
        # are built as they are, not diffed and converted value by value 50,000 times.
        out.append(_Created(r, values, audit.created(after), name))
    return out


async def _write_creates(
    session: AsyncSession,
    created: list[_Created],
    tags: dict[str, int],
    stores: list[int],
    now: datetime,
    actor: Actor,
) -> None:
    """Insert prepared products with their barcodes, tags, listings and audit entries: one
    statement each (kit.hotsql), with what every row shares sent once."""
    ids = await hotsql.insert_rows(
        session,
        _products,
        _PRODUCT_COLUMNS,
        [c.values for c in created],
        shared={"created_at": now, "updated_at": now},
        ids=True,
    )
    barcode_rows: list[tuple[int, str, str]] = []
    tag_rows: list[tuple[int, int]] = []
    entries: list[audit.Change] = []
    for c, pid in zip(created, ids, strict=True):
        c.row.product_id = pid
        barcode_rows += [(pid, code, kind) for code, kind in c.row.codes]
        if c.row.tags:
            tag_rows += [(pid, tags[t]) for t in c.row.tags]
        entries.append(audit.Change(pid, changes=c.changes, label=c.label))
    await hotsql.insert_rows(
        session,
        _barcodes,
        ("product_id", "code", "kind"),
        barcode_rows,
        shared={"created_at": now},
    )
    await hotsql.insert_rows(session, _product_tags, ("product_id", "tag_id"), tag_rows)
    if stores:
        await listings.set_listed(session, ids, stores)
    await audit.record_many(session, actor, "product.create", "product", entries, note="import")


async def write_rows(
    session: AsyncSession,
    rows: list[Row],
    cats: dict[tuple[str, ...], int],
    tags: dict[str, int],
    options: ImportOptions,
    *,
    actor: Actor,
    progress: Progress | None,
) -> tuple[int, int]:
    """Create and update products for validated rows; one audit entry per product."""
    now = utcnow()
    stores = options.store_ids
    threshold_changed: list[int] = []
    creates = [r for r in rows if r.product_id is None]
    updates = [r for r in rows if r.product_id is not None]
    done = 0
    total = len(rows)
    # Creates are pipelined: while one chunk's statements run in the database (aiosqlite's
    # thread, or the PostgreSQL server), the next chunk's rows and audit entries are built.
    writing: asyncio.Task[None] | None = None
    try:
        for i in range(0, len(creates), CHUNK):
            chunk = creates[i : i + CHUNK]
            prepared: list[_Created] = []
            for j in range(0, len(chunk), _SLICE):
                with _no_cycle_collection():
                    prepared += _prepare_creates(chunk[j : j + _SLICE], cats, stores)
                # Let the chunk being written send its next statement.
                await asyncio.sleep(0)
            if writing is not None:
                await writing
                done += CHUNK
                if progress:
                    await progress(min(done, total), total)
            writing = asyncio.ensure_future(
                _write_creates(session, prepared, tags, stores, now, actor)
            )
            await asyncio.sleep(0)
        if writing is not None:
            await writing
    except BaseException:
        if writing is not None and not writing.done():
            writing.cancel()
        raise
    done = len(creates)
    if creates and progress:
        await progress(done, total)
    for i in range(0, len(updates), CHUNK):
        chunk = updates[i : i + CHUNK]
        ids = [r.product_id for r in chunk if r.product_id is not None]
        current = await _current(session, ids)
        have_codes = await _existing_barcodes(session, [c for r in chunk for c, _ in r.codes])
        existing_tags: dict[int, set[int]] = {}
        if any(r.tags is not None for r in chunk):
            for pid, tid in (
                await session.execute(
                    select(ProductTag.product_id, ProductTag.tag_id).where(
                        ProductTag.product_id.in_(ids)
                    )
                )
            ).all():
                existing_tags.setdefault(pid, set()).add(tid)
        by_keys: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        barcode_rows = []
        updated_log: list[audit.Change] = []
        for r in chunk:
            assert r.product_id is not None
            before = current[r.product_id]
            changes = dict(r.values)
            if r.category is not None:
                changes["category_id"] = cats[r.category]
            after = {**before, **changes}
            if "name" in changes or "brand" in changes:
                changes["pinyin_full"], changes["pinyin_initials"] = search_keys(
                    after["name"], after["brand"]
                )
            new_codes = [(c, k) for c, k in r.codes if c not in have_codes]
            barcode_rows += [
                {"product_id": r.product_id, "code": c, "kind": k, "created_at": now}
                for c, k in new_codes
            ]
            tag_before = existing_tags.get(r.product_id, set())
            tag_after = {tags[t] for t in r.tags} if r.tags is not None else tag_before
            changed = after != before or new_codes or tag_after != tag_before
            if not changed:
                continue
            if after["low_stock_threshold"] != before["low_stock_threshold"]:
                threshold_changed.append(r.product_id)
            changes["updated_at"] = now
            changes["id"] = r.product_id
            by_keys.setdefault(tuple(sorted(changes)), []).append(changes)
            if tag_after != tag_before:
                await session.execute(
                    delete(ProductTag).where(ProductTag.product_id == r.product_id)
                )
                if tag_after:
                    await session.execute(
                        insert(ProductTag),
                        [{"product_id": r.product_id, "tag_id": t} for t in sorted(tag_after)],
                    )
            extra_before: dict[str, Any] = {}
            extra_after: dict[str, Any] = {}
            if new_codes:
                extra_after["added_barcodes"] = [c for c, _ in new_codes]
            if tag_after != tag_before:
                extra_before["tag_ids"] = sorted(tag_before)
                extra_after["tag_ids"] = sorted(tag_after)
            updated_log.append(
                audit.Change(
                    r.product_id, before={**before, **extra_before}, after={**after, **extra_after}
                )
            )
        for group in by_keys.values():
            await session.execute(update(Product), group)
        if barcode_rows:
            await session.execute(insert(ProductBarcode), barcode_rows)
        await audit.record_many(
            session, actor, "product.update", "product", updated_log, note="import"
        )
        done += len(chunk)
        if progress:
            await progress(done, total)
    await listings.thresholds_changed(session, threshold_changed)
    return len(creates), len(updates)


async def import_table(
    session: AsyncSession,
    table: Table,
    options: ImportOptions,
    *,
    actor: Actor,
    filename: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Validate every row, then write all (or only the good rows), in the caller's transaction."""
    mapping = map_headers(table.headers)
    labels = {key: table.headers[i] for i, key in mapping.items()}
    errors = _Collector(labels)
    with _no_cycle_collection():
        parsed = parse_rows(table, mapping, errors)
    good, cats, tags, new_cats, new_tags = await resolve(session, parsed, options, errors)
    total = len(table.rows)
    rejected = bool(errors.bad_rows) and options.mode == "all_or_nothing"
    created = updated = 0
    if not rejected and good:
        await _create_categories(session, actor, new_cats, cats)
        await _create_tags(session, actor, new_tags, tags)
        created, updated = await write_rows(
            session, good, cats, tags, options, actor=actor, progress=progress
        )
    status = "rejected" if rejected else ("partial" if errors.bad_rows else "imported")
    report = ImportReport(
        status=status,
        mode=options.mode,
        total_rows=total,
        valid_rows=len(good),
        created=created,
        updated=updated,
        skipped=total - created - updated,
        errors=sorted(errors.errors, key=lambda e: (e.row, e.column or "")),
        errors_truncated=len(errors.errors) >= MAX_REPORTED_ERRORS,
        categories_created=[] if rejected else ["/".join(c) for c in new_cats],
        tags_created=[] if rejected else new_tags,
    )
    await audit.record(
        session,
        actor,
        "product.import",
        "product_import",
        None,
        after={
            "file": filename,
            "status": status,
            "mode": options.mode,
            "rows": total,
            "created": created,
            "updated": updated,
            "bad_rows": len(errors.bad_rows),
        },
    )
    return report


async def read_upload(data: bytes, filename: str | None, options: ImportOptions) -> Table:
    """Read the upload in a worker thread; unreadable files are a 415 or 422 naming `file`."""
    try:
        return await anyio.to_thread.run_sync(
            lambda: tabular.read_table(
                data, filename, encoding=options.encoding, max_rows=options.max_rows
            )
        )
    except TabularError as exc:
        if exc.status == 415:
            raise unsupported("file", exc.message) from None
        field_name = "encoding" if exc.reason == "encoding_mismatch" else "file"
        raise invalid(field_name, exc.reason, exc.message) from None


async def import_file(
    session: AsyncSession,
    data: bytes,
    filename: str | None,
    options: ImportOptions,
    *,
    actor: Actor,
    progress: Progress | None = None,
) -> ImportReport:
    table = await read_upload(data, filename, options)
    return await import_table(
        session, table, options, actor=actor, filename=filename, progress=progress
    )


def template(fmt: str) -> bytes:
    """The import template: the header row and two example rows (and notes in xlsx)."""
    headers = [c.label for c in COLUMNS]
    examples = [[c.example[0] for c in COLUMNS], [c.example[1] for c in COLUMNS]]
    if fmt == "csv":
        return tabular.csv_bytes(headers, examples)
    return tabular.xlsx_bytes(headers, examples, title="商品")

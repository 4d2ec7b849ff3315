"""Server-side pricing: what an order costs in its store, whatever the terminal showed.

One query resolves every line's product (by barcode or id) with its store listing and prices.
The unit price is the member price for an identified member when the product has one,
otherwise the store's price, otherwise the retail price. A member's tier discount applies to
the lines without a member price, as a line discount (`tier_discount`: half up to the fen,
per line). Promotions plug in as `Promotion` functions that return line discounts; none ship
yet. A member's coupon, then the points they spend, become line discounts too (members.coupons,
members.redeem), spread over the lines by `spread`.
Differences from what the terminal showed are reported, never charged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import BigInteger, String, Table, and_, any_, bindparam, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.errors import ErrorDetail
from selfmart.kit import hotsql
from selfmart.kit.hotsql import HotStatement
from selfmart.models import Product, ProductBarcode, StoreProduct
from selfmart.orders.exceptions import UnknownProduct
from selfmart.orders.schemas import IntakeLine


@dataclass(slots=True)
class PricedLine:
    line_no: int
    product_id: int
    barcode: str | None
    name: str
    spec: str
    list_price_fen: int
    unit_price_fen: int
    quantity: int
    price_source: str
    terminal_unit_price_fen: int | None
    discount_fen: int = 0
    #: of discount_fen: the member's tier discount, the coupon's and the points' share
    tier_discount_fen: int = 0
    coupon_fen: int = 0
    points_fen: int = 0

    @property
    def amount_fen(self) -> int:
        return self.unit_price_fen * self.quantity - self.discount_fen

    @property
    def member_saving_fen(self) -> int:
        """What being a member saved on this line (member price, tier discount and the
        coupon's share; points spent are paying, not saving)."""
        saved = (self.list_price_fen - self.unit_price_fen) * self.quantity
        return saved + self.tier_discount_fen + self.coupon_fen


@dataclass(slots=True)
class PricedOrder:
    lines: list[PricedLine]
    terminal_total_fen: int | None
    differences: list[dict[str, int]] = field(default_factory=list)

    @property
    def subtotal_fen(self) -> int:
        return sum(ln.list_price_fen * ln.quantity for ln in self.lines)

    @property
    def total_fen(self) -> int:
        return sum(ln.amount_fen for ln in self.lines)

    @property
    def discount_fen(self) -> int:
        return self.subtotal_fen - self.total_fen

    @property
    def member_saving_fen(self) -> int:
        return sum(ln.member_saving_fen for ln in self.lines)

    @property
    def coupon_fen(self) -> int:
        return sum(ln.coupon_fen for ln in self.lines)

    @property
    def points_fen(self) -> int:
        return sum(ln.points_fen for ln in self.lines)

    @property
    def item_count(self) -> int:
        return sum(ln.quantity for ln in self.lines)

    @property
    def mismatch(self) -> bool:
        total_differs = (
            self.terminal_total_fen is not None and self.terminal_total_fen != self.total_fen
        )
        return bool(self.differences) or total_differs


_products = cast(Table, Product.__table__)
_barcodes = cast(Table, ProductBarcode.__table__)
_store_products = cast(Table, StoreProduct.__table__)


def _lookup(pg: bool) -> Any:
    """Every line's product with its store listing and prices, in one query built once, on the
    tables rather than the entities (no ORM compile step on every execution). PostgreSQL
    matches `= ANY(array)`: one parameter per list, so the statement never changes shape;
    elsewhere an expanding IN."""
    if pg:
        by_code = _barcodes.c.code == any_(bindparam("codes", type_=ARRAY(String)))
        by_id = _products.c.id == any_(bindparam("ids", type_=ARRAY(BigInteger)))
    else:
        by_code = _barcodes.c.code.in_(bindparam("codes", expanding=True))
        by_id = _products.c.id.in_(bindparam("ids", expanding=True))
    return (
        select(
            _products.c.id,
            _products.c.name,
            _products.c.spec,
            _products.c.price_fen,
            _products.c.member_price_fen,
            _barcodes.c.code,
            _store_products.c.store_price_fen,
            _store_products.c.is_listed,
        )
        .select_from(_products)
        .outerjoin(_barcodes, _barcodes.c.product_id == _products.c.id)
        .outerjoin(
            _store_products,
            and_(
                _store_products.c.product_id == _products.c.id,
                _store_products.c.store_id == bindparam("store_id"),
            ),
        )
        .where(or_(by_code, by_id))
    )


#: Run on the driver connection on PostgreSQL (kit.hotsql): this is the hot path.
_LOOKUP = HotStatement(_lookup(pg=True), other=_lookup(pg=False))

#: A promotion sets `discount_fen` on the lines it applies to (member flag given).
Promotion = Callable[[list[PricedLine], bool], None]
PROMOTIONS: list[Promotion] = []


def spread(amounts: Sequence[int], value_fen: int) -> list[int]:
    """`value_fen` split over `amounts` in proportion to them, in whole fen: each gets the
    floor of its share, and the fen left over by rounding go one each to the largest
    remainders (ties to the earlier). Deterministic, and never more than an amount, so a
    refund of some lines gives back what those lines cost after the discount."""
    total = sum(amounts)
    if value_fen == 0 or total == 0:
        return [0] * len(amounts)
    assert 0 < value_fen <= total
    shares = [value_fen * a // total for a in amounts]
    left = value_fen - sum(shares)
    order = sorted(range(len(amounts)), key=lambda i: (-(value_fen * amounts[i] % total), i))
    for i in order[:left]:
        shares[i] += 1
    return shares


def tier_discount(amount_fen: int, discount_bp: int) -> int:
    """A tier's discount on a line worth `amount_fen`: `discount_bp` basis points of it,
    rounded half up to the fen (5% of 10 fen is 0.5 fen: 1 fen off; of 9 fen, 0.45: none)."""
    return (amount_fen * discount_bp + 5_000) // 10_000


async def product_ids(
    session: AsyncSession, *, store_id: int, lines: Sequence[IntakeLine]
) -> list[int]:
    """The products `lines` name (by barcode or id) that the store sells, sorted: what a batch
    of orders will take stock of. Lines naming nothing sellable are left out (pricing refuses
    their orders)."""
    barcodes = sorted({ln.barcode for ln in lines if ln.barcode is not None})
    ids = sorted({ln.product_id for ln in lines if ln.product_id is not None})
    params = {"store_id": store_id, "codes": barcodes, "ids": ids}
    rows = await hotsql.fetch(session, _LOOKUP, params)
    return sorted({int(row[0]) for row in rows if row[7]})


async def price(
    session: AsyncSession,
    *,
    store_id: int,
    lines: Sequence[IntakeLine],
    member: bool,
    terminal_total_fen: int | None,
    discount_bp: int = 0,
    member_prices: bool = True,
) -> PricedOrder:
    """Price `lines` in `store_id`; a line naming an unknown or unlisted product is a 422
    naming that line (and nothing has been written). `discount_bp`: the identified member's
    tier discount, for the lines the member price does not already lower; `member_prices`:
    False when the member's tier gives the discount only (no product's member price)."""
    barcodes = sorted({ln.barcode for ln in lines if ln.barcode is not None})
    ids = sorted({ln.product_id for ln in lines if ln.product_id is not None})
    params = {"store_id": store_id, "codes": barcodes, "ids": ids}
    rows = await hotsql.fetch(session, _LOOKUP, params)
    by_code: dict[str, Sequence[Any]] = {}
    by_id: dict[int, Sequence[Any]] = {}
    for found in rows:
        if found[5] is not None:
            by_code[found[5]] = found
        by_id.setdefault(found[0], found)

    problems: list[ErrorDetail] = []
    priced: list[PricedLine] = []
    for i, line in enumerate(lines):
        if line.barcode is not None:
            row, where, named = by_code.get(line.barcode), f"lines.{i}.barcode", "barcode"
            what = line.barcode
        else:
            row, where, named = by_id.get(line.product_id or 0), f"lines.{i}.product_id", "id"
            what = str(line.product_id)
        if row is None:
            problems.append(
                ErrorDetail(
                    field=where, reason="unknown_product", message=f"No product has {named} {what}"
                )
            )
            continue
        pid, name, spec, retail, member_price, _code, store_price, listed = row
        if not listed:
            problems.append(
                ErrorDetail(
                    field=where,
                    reason="product_not_listed",
                    message=f"Product {pid} is not sold in this store",
                )
            )
            continue
        list_price = int(store_price) if store_price is not None else int(retail)
        source = "store" if store_price is not None else "retail"
        unit = list_price
        if member and member_prices and member_price is not None and int(member_price) < list_price:
            unit, source = int(member_price), "member"
        off = 0
        if member and discount_bp > 0 and source != "member":
            off = tier_discount(list_price * line.quantity, discount_bp)
        priced.append(
            PricedLine(
                line_no=i + 1,
                product_id=int(pid),
                barcode=line.barcode,
                name=str(name),
                spec=str(spec),
                list_price_fen=list_price,
                unit_price_fen=unit,
                quantity=line.quantity,
                price_source=source,
                terminal_unit_price_fen=line.unit_price_fen,
                discount_fen=off,
                tier_discount_fen=off,
            )
        )
    if problems:
        raise UnknownProduct("Some lines name products this store does not sell", details=problems)
    for promotion in PROMOTIONS:
        promotion(priced, member)
    result = PricedOrder(lines=priced, terminal_total_fen=terminal_total_fen)
    for ln in priced:
        if (
            ln.terminal_unit_price_fen is not None
            and ln.terminal_unit_price_fen != ln.unit_price_fen
        ):
            result.differences.append(
                {
                    "line_no": ln.line_no,
                    "product_id": ln.product_id,
                    "terminal_unit_price_fen": ln.terminal_unit_price_fen,
                    "unit_price_fen": ln.unit_price_fen,
                }
            )
    return result

"""Finding orders: the console's filters, sorts and pagination, as one query builder that the
list, the export and the live panel share. Store scoping is part of every query."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import Query
from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.config import get_settings
from selfmart.errors import ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.iam.permissions import Perm
from selfmart.kit.ids import QueryId, QueryIds
from selfmart.kit.money import FEN_MAX
from selfmart.kit.pagination import PageParams
from selfmart.models import Order, OrderLine, Store, Terminal
from selfmart.orders.statemachine import OrderStatus

SortKey = Literal[
    "created_at",
    "-created_at",
    "purchased_at",
    "-purchased_at",
    "paid_at",
    "-paid_at",
    "total_fen",
    "-total_fen",
    "order_no",
    "-order_no",
]

_SORT_COLUMNS: dict[str, Any] = {
    "created_at": Order.created_at,
    "purchased_at": Order.purchased_at,
    "paid_at": Order.paid_at,
    "total_fen": Order.total_fen,
    "order_no": Order.order_no,
}

_TIME_COLUMNS: dict[str, Any] = {
    "created": Order.created_at,
    "purchased": Order.purchased_at,
    "paid": Order.paid_at,
}

AnySelect = Select[*tuple[Any, ...]]


@dataclass
class OrderFilters:
    q: str | None = None
    order_no: str | None = None
    client_order_id: str | None = None
    customer: str | None = None
    phone: str | None = None
    member_no: str | None = None
    store_id: list[int] = field(default_factory=list)
    terminal_id: list[int] = field(default_factory=list)
    status: list[OrderStatus] = field(default_factory=list)
    payment_method: list[str] = field(default_factory=list)
    product_id: int | None = None
    barcode: str | None = None
    amount_min_fen: int | None = None
    amount_max_fen: int | None = None
    time_field: Literal["created", "purchased", "paid"] = "created"
    time_from: datetime | None = None
    time_to: datetime | None = None
    abnormal: bool | None = None
    sort: SortKey = "-created_at"


def order_filters(
    q: Annotated[
        str | None,
        Query(
            max_length=64,
            description="part of the order no. (4+ characters), client order id, phone or its "
            "last 4+ digits, member no.",
        ),
    ] = None,
    order_no: Annotated[
        str | None, Query(max_length=24, description="the order no. or 4+ characters of it")
    ] = None,
    client_order_id: Annotated[str | None, Query(max_length=64)] = None,
    customer: Annotated[
        str | None, Query(max_length=100, description="customer name (part of it) or phone")
    ] = None,
    phone: Annotated[
        str | None, Query(max_length=32, description="the phone or its last 4+ digits")
    ] = None,
    member_no: Annotated[str | None, Query(max_length=32)] = None,
    store_id: QueryIds = None,
    terminal_id: QueryIds = None,
    status: Annotated[list[OrderStatus] | None, Query()] = None,
    payment_method: Annotated[list[str] | None, Query()] = None,
    product_id: QueryId = None,
    barcode: Annotated[str | None, Query(max_length=32)] = None,
    amount_min_fen: Annotated[int | None, Query(ge=0, le=FEN_MAX)] = None,
    amount_max_fen: Annotated[int | None, Query(ge=0, le=FEN_MAX)] = None,
    time_field: Annotated[Literal["created", "purchased", "paid"], Query()] = "created",
    time_from: Annotated[
        datetime | None,
        Query(description="inclusive; without an offset it is read in the store's zone"),
    ] = None,
    time_to: Annotated[datetime | None, Query(description="exclusive")] = None,
    abnormal: Annotated[bool | None, Query(description="only orders with open issues")] = None,
    sort: Annotated[SortKey, Query()] = "-created_at",
) -> OrderFilters:
    if amount_min_fen is not None and amount_max_fen is not None:
        if amount_min_fen > amount_max_fen:
            raise ValidationFailed("amount_min_fen is above amount_max_fen", field="amount_min_fen")
    f = OrderFilters(
        q=q or None,
        order_no=order_no or None,
        client_order_id=client_order_id or None,
        customer=customer or None,
        phone=phone or None,
        member_no=member_no or None,
        store_id=store_id or [],
        terminal_id=terminal_id or [],
        status=status or [],
        payment_method=payment_method or [],
        product_id=product_id,
        barcode=barcode or None,
        amount_min_fen=amount_min_fen,
        amount_max_fen=amount_max_fen,
        time_field=time_field,
        time_from=time_from,
        time_to=time_to,
        abnormal=abnormal,
        sort=sort,
    )
    if f.time_from and f.time_to and _aware(f.time_from) >= _aware(f.time_to):
        raise ValidationFailed("time_from must be before time_to", field="time_from")
    return f


def _aware(value: datetime, zone: str | None = None) -> datetime:
    """A time without an offset is read in the chain's default zone (the stores' zone)."""
    if value.tzinfo is not None:
        return value
    return value.replace(tzinfo=ZoneInfo(zone or get_settings().default_timezone))


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like(text: str) -> str:
    return f"%{_escape(text)}%"


#: Fewest characters of an order number searched as a part of one (the trigram index on
#: PostgreSQL needs three; four keeps a search from matching half the table).
MIN_PARTIAL_ORDER_NO = 4
#: The length of the order numbers intake makes (yymmdd and ten random digits).
ORDER_NO_LENGTH = 16
#: Fewest trailing digits of a phone searched as "ends with" (phone_last4 is indexed).
MIN_PHONE_DIGITS = 4
_FULL_PHONE_DIGITS = 11


def _digits(text: str) -> str | None:
    """The text as a phone's digits (spaces, dashes and a leading + dropped), if it is one."""
    digits = text.replace(" ", "").replace("-", "").removeprefix("+")
    return digits if digits.isdigit() else None


def phone_condition(text: str) -> Any:
    """A phone: the whole number, or its last 4+ digits (found through phone_last4's index)."""
    digits = _digits(text)
    if digits is None or len(digits) < MIN_PHONE_DIGITS:
        return Order.customer_phone == text
    ends_with = and_(
        Order.phone_last4 == digits[-4:],
        Order.customer_phone.like(f"%{_escape(digits)}", escape="\\"),
    )
    if len(digits) >= _FULL_PHONE_DIGITS:  # the whole number, perhaps stored with +86
        return or_(Order.customer_phone == text, ends_with)
    return ends_with


def order_no_condition(text: str) -> Any:
    """An order number, whole or any part of it of 4+ characters. A whole number (as long as
    the numbers intake makes) is looked up by the unique index, not through trigrams."""
    if len(text) < MIN_PARTIAL_ORDER_NO or len(text) >= ORDER_NO_LENGTH:
        return Order.order_no == text
    return Order.order_no.like(_like(text), escape="\\")


def mask_phone(phone: str | None) -> str | None:
    """138****5678: the last four digits stay (customers give them to be found)."""
    if not phone:
        return phone
    if len(phone) <= 4:
        return "*" * len(phone)
    head = phone[:3] if len(phone) >= _FULL_PHONE_DIGITS else ""
    return head + "*" * (len(phone) - len(head) - 4) + phone[-4:]


def shown_phone(phone: str | None, actor: Actor) -> str | None:
    """The phone as this actor may see it: whole with order:pii, masked without."""
    return phone if actor.can(Perm.ORDER_PII) else mask_phone(phone)


def scope(stmt: AnySelect, actor: Actor) -> AnySelect:
    if actor.store_ids is not None:
        stmt = stmt.where(Order.store_id.in_(actor.store_ids))
    return stmt


def apply_filters(stmt: AnySelect, f: OrderFilters, actor: Actor) -> AnySelect:
    stmt = scope(stmt, actor)
    if f.q:
        # One box for what a customer or a receipt gives: part of the order number, the
        # terminal's order id, the phone (or its last digits), the member number.
        stmt = stmt.where(
            or_(
                order_no_condition(f.q),
                Order.client_order_id == f.q,
                phone_condition(f.q),
                Order.member_no == f.q,
            )
        )
    if f.order_no:
        stmt = stmt.where(order_no_condition(f.order_no))
    if f.client_order_id:
        stmt = stmt.where(Order.client_order_id == f.client_order_id)
    if f.customer:
        stmt = stmt.where(
            or_(
                Order.customer_name.ilike(_like(f.customer), escape="\\"),
                phone_condition(f.customer),
            )
        )
    if f.phone:
        stmt = stmt.where(phone_condition(f.phone))
    if f.member_no:
        stmt = stmt.where(Order.member_no == f.member_no)
    if f.store_id:
        stmt = stmt.where(Order.store_id.in_(f.store_id))
    if f.terminal_id:
        stmt = stmt.where(Order.terminal_id.in_(f.terminal_id))
    if f.status:
        stmt = stmt.where(Order.status.in_([s.value for s in f.status]))
    if f.payment_method:
        stmt = stmt.where(Order.payment_method.in_(f.payment_method))
    if f.product_id is not None:
        stmt = stmt.where(
            exists().where(OrderLine.order_id == Order.id, OrderLine.product_id == f.product_id)
        )
    if f.barcode:
        stmt = stmt.where(
            exists().where(OrderLine.order_id == Order.id, OrderLine.barcode == f.barcode)
        )
    if f.amount_min_fen is not None:
        stmt = stmt.where(Order.total_fen >= f.amount_min_fen)
    if f.amount_max_fen is not None:
        stmt = stmt.where(Order.total_fen <= f.amount_max_fen)
    column = _TIME_COLUMNS[f.time_field]
    if f.time_from is not None:
        stmt = stmt.where(column >= _aware(f.time_from))
    if f.time_to is not None:
        stmt = stmt.where(column < _aware(f.time_to))
    if f.abnormal is True:
        stmt = stmt.where(Order.open_issues > 0)
    elif f.abnormal is False:
        stmt = stmt.where(Order.open_issues == 0)
    return stmt


def order_by(stmt: AnySelect, sort: str) -> AnySelect:
    desc = sort.startswith("-")
    column = _SORT_COLUMNS[sort.lstrip("-")]
    primary = column.desc() if desc else column.asc()
    tiebreak = Order.id.desc() if desc else Order.id.asc()
    if sort.lstrip("-") == "paid_at":
        primary = primary.nulls_last()
    return stmt.order_by(primary, tiebreak)


LIST_COLUMNS = (
    Order.id,
    Order.order_no,
    Order.client_order_id,
    Order.store_id,
    Store.code.label("store_code"),
    Store.name.label("store_name"),
    Store.timezone.label("store_timezone"),
    Order.terminal_id,
    Terminal.code.label("terminal_code"),
    Order.source,
    Order.status,
    Order.purchased_at,
    Order.created_at,
    Order.paid_at,
    Order.item_count,
    Order.subtotal_fen,
    Order.discount_fen,
    Order.total_fen,
    Order.paid_fen,
    Order.refunded_fen,
    Order.payment_method,
    Order.member_id,
    Order.member_no,
    Order.customer_name,
    Order.customer_phone,
    Order.price_mismatch,
    Order.stock_short,
    Order.open_issues,
)


def list_statement(f: OrderFilters, actor: Actor) -> AnySelect:
    stmt = (
        select(*LIST_COLUMNS)
        .join(Store, Store.id == Order.store_id)
        .outerjoin(Terminal, Terminal.id == Order.terminal_id)
    )
    return order_by(apply_filters(stmt, f, actor), f.sort)


async def search(
    session: AsyncSession, f: OrderFilters, params: PageParams, actor: Actor
) -> tuple[list[dict[str, Any]], int]:
    count_stmt = apply_filters(select(func.count(Order.id)), f, actor)
    total = int(await session.scalar(count_stmt) or 0)
    rows = (
        (await session.execute(list_statement(f, actor).limit(params.size).offset(params.offset)))
        .mappings()
        .all()
    )
    items = [dict(r) for r in rows]
    for item in items:
        item["customer_phone"] = shown_phone(item["customer_phone"], actor)
    return items, total

"""The ledger primitives every stock change goes through, in SQLAlchemy Core.

Each change is one statement on the balance row (a conditional `UPDATE ... WHERE quantity >= n
RETURNING` when the shelf must not go below zero), then one multi-row INSERT of the movements.
Rows are touched in product-id order so that two transactions never wait on each other in a
cycle. The balance statements also return the effective low-stock threshold (the store's
override, else the product's), so crossing a threshold costs no extra round trip. A sale on
PostgreSQL books all its lines, balances and movements, in one statement (`sell_pg`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, insert, literal_column, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import Actor
from selfmart.kit import hotsql
from selfmart.kit.hotsql import HotStatement
from selfmart.models import StockLevel, StockMovement

#: (document type, document id): the order, purchase order, transfer... that caused a movement.
Document = tuple[str, int | str]

levels = cast(Table, StockLevel.__table__)
movements = cast(Table, StockMovement.__table__)


#: The effective low-stock threshold of the balance row being changed: the store's override,
#: else the product's. Written as SQL because RETURNING clauses are rendered without table
#: qualification on some backends, which would break an ORM-built correlated subquery.
THRESHOLD_SQL = (
    "coalesce("
    "(SELECT sp.low_stock_threshold FROM store_products AS sp"
    " WHERE sp.store_id = stock_levels.store_id AND sp.product_id = stock_levels.product_id),"
    " (SELECT p.low_stock_threshold FROM products AS p WHERE p.id = stock_levels.product_id),"
    " 0)"
)


_RETURNING: tuple[Any, ...] = (levels.c.quantity, literal_column(THRESHOLD_SQL).label("threshold"))

#: Take n units only if they are there.
_TAKE = (
    update(levels)
    .where(
        levels.c.store_id == bindparam("b_store"),
        levels.c.product_id == bindparam("b_product"),
        levels.c.quantity >= bindparam("b_n"),
    )
    .values(
        quantity=levels.c.quantity - bindparam("b_n"),
        version=levels.c.version + 1,
        updated_at=bindparam("b_now"),
    )
    .returning(*_RETURNING)
)

#: Add delta (either sign) to an existing balance.
_ADD = (
    update(levels)
    .where(
        levels.c.store_id == bindparam("b_store"),
        levels.c.product_id == bindparam("b_product"),
    )
    .values(
        quantity=levels.c.quantity + bindparam("b_n"),
        version=levels.c.version + 1,
        updated_at=bindparam("b_now"),
    )
    .returning(*_RETURNING)
)

_CURRENT = select(levels.c.product_id, levels.c.quantity).where(
    levels.c.store_id == bindparam("b_store"),
    levels.c.product_id.in_(bindparam("b_products", expanding=True)),
)


def dialect_insert(session: AsyncSession, table: Table) -> Any:
    """INSERT with ON CONFLICT support for the session's backend."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _upsert_add(session: AsyncSession) -> Any:
    ins = dialect_insert(session, levels).values(
        store_id=bindparam("b_store"),
        product_id=bindparam("b_product"),
        quantity=bindparam("b_n"),
        version=1,
        updated_at=bindparam("b_now"),
    )
    return ins.on_conflict_do_update(
        index_elements=[levels.c.store_id, levels.c.product_id],
        set_={
            "quantity": levels.c.quantity + ins.excluded.quantity,
            "version": levels.c.version + 1,
            "updated_at": ins.excluded.updated_at,
        },
    ).returning(*_RETURNING)


@dataclass(frozen=True, slots=True)
class Booked:
    """One balance change as it happened: the new balance and the threshold that applies."""

    product_id: int
    delta: int
    balance_after: int
    threshold: int

    @property
    def balance_before(self) -> int:
        return self.balance_after - self.delta


async def take(
    session: AsyncSession, store_id: int, product_id: int, n: int, now: datetime
) -> Booked | None:
    """Take n units if the balance holds them (row count checked); None when it does not."""
    row = (
        await session.execute(
            _TAKE, {"b_store": store_id, "b_product": product_id, "b_n": n, "b_now": now}
        )
    ).first()
    if row is None:
        return None
    return Booked(product_id, -n, int(row[0]), int(row[1]))


async def add(
    session: AsyncSession, store_id: int, product_id: int, delta: int, now: datetime
) -> Booked:
    """Add delta (either sign, may go below zero), creating the balance row on first use."""
    params = {"b_store": store_id, "b_product": product_id, "b_n": delta, "b_now": now}
    row = (await session.execute(_ADD, params)).first()
    if row is None:
        row = (await session.execute(_upsert_add(session), params)).one()
    return Booked(product_id, delta, int(row[0]), int(row[1]))


async def current(
    session: AsyncSession, store_id: int, product_ids: Sequence[int]
) -> dict[int, int]:
    """Balances of some products in a store (0 for a product never stocked there)."""
    if not product_ids:
        return {}
    rows = await session.execute(
        _CURRENT, {"b_store": store_id, "b_products": list(set(product_ids))}
    )
    found = {int(pid): int(q) for pid, q in rows}
    return {pid: found.get(pid, 0) for pid in product_ids}


async def lock(session: AsyncSession, store_id: int, product_ids: Sequence[int]) -> dict[int, int]:
    """Lock balance rows (in product-id order) and return them, for read-then-write changes."""
    if not product_ids:
        return {}
    ordered = sorted(set(product_ids))
    stmt = (
        select(levels.c.product_id, levels.c.quantity)
        .where(levels.c.store_id == store_id, levels.c.product_id.in_(ordered))
        .order_by(levels.c.product_id)
        .with_for_update()
    )
    found = {int(pid): int(q) for pid, q in await session.execute(stmt)}
    return {pid: found.get(pid, 0) for pid in ordered}


async def lock_creating(
    session: AsyncSession, store_id: int, product_ids: Sequence[int], now: datetime
) -> None:
    """Lock the balance rows of `product_ids` in product-id order, creating the missing ones at
    zero in the same pass (PostgreSQL: one INSERT ... ON CONFLICT DO UPDATE whose rows are
    taken in the order given, a new row locked by its insert, an existing one by the no-op
    update). For a store that sells past an empty shelf, where a sale creates the row of a
    product never stocked: locking only the rows that exist left such a row to be created
    later, out of order, so a batch holding a larger id waited on a sale that had created a
    smaller one and wanted the larger (a deadlock CI caught). A zero row with no movement
    balances (check-stock)."""
    ordered = sorted(set(product_ids))
    if not ordered:
        return
    if session.get_bind().dialect.name != "postgresql":
        await lock(session, store_id, ordered)  # SQLite: one writer lock, no row order
        return
    ins = postgresql.insert(levels).values(
        [
            {"store_id": store_id, "product_id": pid, "quantity": 0, "version": 1,
             "updated_at": now}
            for pid in ordered
        ]
    )  # fmt: skip
    await session.execute(
        ins.on_conflict_do_update(
            index_elements=[levels.c.store_id, levels.c.product_id],
            set_={"quantity": levels.c.quantity},
        )
    )


def movement_row(
    *,
    store_id: int,
    booked: Booked,
    kind: str,
    document: Document | None,
    actor: Actor,
    now: datetime,
    reason: str | None = None,
    batch_id: int | None = None,
) -> dict[str, Any]:
    return {
        "store_id": store_id,
        "product_id": booked.product_id,
        "kind": kind,
        "quantity": booked.delta,
        "balance_after": booked.balance_after,
        "document_type": document[0] if document else None,
        "document_id": str(document[1]) if document else None,
        "reason": reason,
        "batch_id": batch_id,
        "actor_type": actor.kind,
        "actor_id": actor.audit_id,
        "actor_name": actor.name,
        "occurred_at": now,
    }


#: PostgreSQL: a whole sale in ONE statement: every line's balance change and its movement
#: (data-modifying CTEs), so an order of n lines costs one round trip, not n. The balance rows
#: are locked first in product-id order (a materialised `FOR UPDATE` sorted by product), so two
#: sales never wait on each other in a cycle. `{guard}` is the refusal condition or nothing:
#: with it a short line is simply not updated, and the caller sees fewer rows than lines.
#: Parameters are named `{p}name` (":" for SQLAlchemy text, rewritten to "$n" for the raw-SQL
#: baselines in bench/).
SELL_PG_TEMPLATE = """
WITH req AS (
    SELECT r.product, r.n
    FROM unnest(CAST({p}products AS INTEGER[]), CAST({p}quantities AS INTEGER[])) AS r(product, n)
), locked AS MATERIALIZED (
    SELECT stock_levels.id, req.n
    FROM stock_levels JOIN req ON stock_levels.product_id = req.product
    WHERE stock_levels.store_id = {p}store
    ORDER BY stock_levels.product_id
    FOR UPDATE OF stock_levels
), upd AS (
    UPDATE stock_levels
    SET quantity = stock_levels.quantity - locked.n, version = stock_levels.version + 1,
        updated_at = {p}now
    FROM locked
    WHERE stock_levels.id = locked.id{guard}
    RETURNING stock_levels.product_id, stock_levels.quantity, locked.n, {threshold} AS threshold
), mv AS (
    INSERT INTO stock_movements (store_id, product_id, kind, quantity, balance_after,
        document_type, document_id, actor_type, actor_id, actor_name, occurred_at)
    SELECT CAST({p}store AS INTEGER), upd.product_id, 'sale', -upd.n, upd.quantity,
        CAST({p}doc_type AS VARCHAR), CAST({p}doc_id AS VARCHAR),
        CAST({p}actor_type AS VARCHAR), CAST({p}actor_id AS VARCHAR),
        CAST({p}actor_name AS VARCHAR), CAST({p}now AS TIMESTAMP WITH TIME ZONE)
    FROM upd ORDER BY upd.product_id
    RETURNING id, product_id
)
SELECT upd.product_id, upd.quantity, upd.threshold, mv.id
FROM upd JOIN mv ON mv.product_id = upd.product_id
ORDER BY upd.product_id
"""
REFUSE_GUARD = " AND stock_levels.quantity >= locked.n"


def sell_pg_sql(*, refuse: bool, p: str = ":") -> str:
    guard = REFUSE_GUARD if refuse else ""
    return SELL_PG_TEMPLATE.format(p=p, guard=guard, threshold=THRESHOLD_SQL)


#: Run on the driver connection (kit.hotsql): a sale is on the terminals' hot path.
_SELL_PG = {refuse: HotStatement(text(sell_pg_sql(refuse=refuse))) for refuse in (True, False)}


async def sell_pg(
    session: AsyncSession,
    *,
    store_id: int,
    lines: dict[int, int],
    refuse: bool,
    now: datetime,
    document: Document,
    actor: Actor,
) -> dict[int, tuple[Booked, int]]:
    """PostgreSQL: take every line's units and write their sale movements in one statement.

    `lines` maps product id to units. Returns product id → (the booking, its movement id) for
    the lines booked; a line is missing when its balance row is missing, or (with `refuse`)
    does not hold its units."""
    products = sorted(lines)
    rows = await hotsql.fetch(
        session,
        _SELL_PG[refuse],
        {
            "products": products,
            "quantities": [lines[pid] for pid in products],
            "store": store_id,
            "now": now,
            "doc_type": document[0],
            "doc_id": str(document[1]),
            "actor_type": actor.kind,
            "actor_id": actor.audit_id,
            "actor_name": actor.name,
        },
    )
    out: dict[int, tuple[Booked, int]] = {}
    for product_id, balance, threshold, movement_id in rows:
        pid = int(product_id)
        out[pid] = (Booked(pid, -lines[pid], int(balance), int(threshold)), int(movement_id))
    return out


async def forget_movements(session: AsyncSession, ids: Sequence[int]) -> None:
    """Remove movements this transaction wrote and is taking back (a refused sale): they were
    never committed, so the committed ledger stays append-only."""
    if ids:
        await session.execute(delete(movements).where(movements.c.id.in_(list(ids))))


#: Compiled once and cached: a `.values(rows)` statement would be compiled on every sale.
_INSERT_MOVEMENTS = insert(movements)


async def write_movements(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """All the movements of one change: one statement (executemany batches the rows into
    multi-row INSERTs on PostgreSQL)."""
    if len(rows) == 1:
        await session.execute(_INSERT_MOVEMENTS, rows[0])
    elif rows:
        await session.execute(_INSERT_MOVEMENTS, rows)

"""How a product is named in a list: name, spec and barcode, so that two products of the same
name (加多宝凉茶 in cans and in bottles) can be told apart wherever they are listed.

Other domains' lists call `labels()` once per page (one query, never one per row) or join
`first_barcode()` into their own query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import Product, ProductBarcode

#: Products per query (IN lists stay well below SQLite's limits).
CHUNK = 500


@dataclass(frozen=True, slots=True)
class Label:
    name: str
    spec: str
    #: The product's first barcode (the lowest code), None when it has none.
    barcode: str | None

    def fields(self) -> dict[str, Any]:
        """As the list schemas name them: product_name, spec, barcode."""
        return {"product_name": self.name, "spec": self.spec, "barcode": self.barcode}


UNKNOWN = Label(name="", spec="", barcode=None)


def first_barcode() -> Any:
    """A correlated scalar subquery: the lowest barcode of `Product` in the enclosing query."""
    return (
        select(func.min(ProductBarcode.code))
        .where(ProductBarcode.product_id == Product.id)
        .correlate(Product)
        .scalar_subquery()
    )


async def labels(session: AsyncSession, product_ids: Sequence[int]) -> dict[int, Label]:
    """Name, spec and first barcode of each product, by id (absent when there is no product)."""
    ids = sorted(set(product_ids))
    out: dict[int, Label] = {}
    for i in range(0, len(ids), CHUNK):
        stmt = select(Product.id, Product.name, Product.spec, first_barcode()).where(
            Product.id.in_(ids[i : i + CHUNK])
        )
        for pid, name, spec, barcode in await session.execute(stmt):
            out[int(pid)] = Label(name=str(name), spec=str(spec or ""), barcode=barcode)
    return out

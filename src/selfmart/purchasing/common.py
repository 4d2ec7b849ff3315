"""Small helpers the purchasing services share: document numbers, state machines, products."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.errors import ErrorDetail, IllegalTransition, NotFound
from selfmart.kit.time import utcnow
from selfmart.models import Product


def new_number(prefix: str) -> str:
    """A document number people can read out: prefix, UTC timestamp, 6 random hex digits.

    Six, not four: with 16 bits, documents made in the same second (the demo seed makes its
    purchase orders, transfers and stocktakes in one go) clashed on the unique number often
    enough to fail a test run now and then."""
    return f"{prefix}{utcnow():%Y%m%d%H%M%S}{secrets.token_hex(3).upper()}"


def check_transition(
    what: str, number: str, current: str, target: str, allowed: Mapping[str, Iterable[str]]
) -> None:
    """Raise a 409 naming both states unless `current -> target` is in `allowed`."""
    if target not in allowed.get(current, ()):
        raise IllegalTransition(
            f"{what} {number} cannot go from {current} to {target}",
            details=[
                ErrorDetail(field="status", reason="illegal_transition", message=current),
                ErrorDetail(field="target_status", reason="illegal_transition", message=target),
            ],
        )


async def products_by_id(session: AsyncSession, ids: Iterable[int]) -> dict[int, Product]:
    """The products, or a 404 naming every missing id."""
    wanted = set(ids)
    if not wanted:
        return {}
    found = {
        p.id: p for p in (await session.scalars(select(Product).where(Product.id.in_(wanted))))
    }
    missing = sorted(wanted - set(found))
    if missing:
        raise NotFound(
            "No such product: " + ", ".join(map(str, missing)),
            details=[
                ErrorDetail(field="product_id", reason="not_found", message=str(pid))
                for pid in missing
            ],
        )
    return found


def no_duplicates(product_ids: Iterable[int], field: str = "lines") -> None:
    from selfmart.errors import ValidationFailed

    seen: set[int] = set()
    for i, pid in enumerate(product_ids):
        if pid in seen:
            raise ValidationFailed(f"Product {pid} appears twice", field=f"{field}[{i}].product_id")
        seen.add(pid)

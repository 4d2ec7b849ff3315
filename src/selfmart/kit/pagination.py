"""Page[T] for every list endpoint, and the query helper that fills it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Select, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


class PageParams(BaseModel):
    page: int = 1
    size: int = 20

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


def page_params(
    page: Annotated[int, Query(ge=1, le=100_000, description="1-based page number")] = 1,
    size: Annotated[int, Query(ge=1, le=200, description="rows per page")] = 20,
) -> PageParams:
    return PageParams(page=page, size=size)


#: A log's page counts at most this many matches: counting every entry of a year of logs on
#: each page load would slow the page as the log grows (bench/bench_logs.py).
LOG_COUNT_CAP = 10_000


class Page(BaseModel, Generic[T]):
    model_config = ConfigDict(from_attributes=True)

    items: list[T]
    total: int
    page: int
    size: int
    #: True when more rows than `total` match: a log counts up to LOG_COUNT_CAP, and then says
    #: "more than total" (narrow the filters, or export, to see them all)
    total_capped: bool = False


def page_of(
    items: Iterable[T], total: int, params: PageParams, *, count_cap: int | None = None
) -> Page[T]:
    """The page a list route answers: these items, of `total`, at `params`. With `count_cap`
    (the cap `paginate` counted up to), a total past it is answered as "more than the cap"."""
    capped = count_cap is not None and total > count_cap
    return Page(
        items=list(items),
        total=count_cap if capped and count_cap is not None else total,
        page=params.page,
        size=params.size,
        total_capped=capped,
    )


async def paginate(
    session: AsyncSession, stmt: Select[Any], params: PageParams, *, count_cap: int | None = None
) -> tuple[list[Any], int]:
    """Run `stmt` for one page; returns the rows (scalars) and the total count. With
    `count_cap`, counting stops past the cap (the total is then `count_cap + 1`: "more")."""
    counted = stmt.order_by(None)
    if count_cap is not None:
        # only the rows' existence: an index can answer it without reading the rows
        counted = counted.with_only_columns(literal(1), maintain_column_froms=True)
        counted = counted.limit(count_cap + 1)
    total = await session.scalar(select(func.count()).select_from(counted.subquery()))
    rows = (await session.scalars(stmt.limit(params.size).offset(params.offset))).all()
    return list(rows), int(total or 0)

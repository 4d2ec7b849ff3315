"""HTTP routes of the analytics domain: sales statistics, rankings, mixes and the heatmap."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query

from selfmart.analytics import service
from selfmart.analytics.products import Ranking
from selfmart.analytics.sales import Granularity
from selfmart.analytics.schemas import (
    CategoryShare,
    HeatCell,
    PaymentShare,
    ProductRank,
    SalesSeries,
    TodayFigures,
)
from selfmart.deps import SessionDep
from selfmart.errors import error_responses
from selfmart.iam.actor import Actor
from selfmart.iam.dependencies import require
from selfmart.iam.permissions import Perm

router = APIRouter(prefix="/analytics", tags=["analytics"])

Reader = Annotated[Actor, require(Perm.ANALYTICS_READ)]
StoreId = Annotated[
    int | None, Query(ge=1, le=2_147_483_647, description="one store (else every store you see)")
]
City = Annotated[str | None, Query(min_length=1, max_length=64, description="the stores of a city")]
ProductId = Annotated[int | None, Query(ge=1, le=2_147_483_647, description="one product")]
CategoryId = Annotated[
    int | None, Query(ge=1, le=2_147_483_647, description="a category and those below it")
]
Start = Annotated[date, Query(description="first local day of the window")]
End = Annotated[date, Query(description="last local day of the window (inclusive)")]
ERRORS = error_responses(401, 403, 404, 422)


@router.get("/sales", response_model=SalesSeries, operation_id="sales_statistics", responses=ERRORS)
async def sales_statistics(
    session: SessionDep,
    actor: Reader,
    start: Start,
    end: End,
    granularity: Granularity = "day",
    store_id: StoreId = None,
    city: City = None,
    product_id: ProductId = None,
    category_id: CategoryId = None,
) -> dict[str, Any]:
    return await service.sales_series(
        session,
        actor=actor,
        first=start,
        last=end,
        granularity=granularity,
        store_id=store_id,
        city=city,
        product_id=product_id,
        category_id=category_id,
    )


@router.get(
    "/today", response_model=TodayFigures, operation_id="today_statistics", responses=ERRORS
)
async def today_statistics(
    session: SessionDep, actor: Reader, store_id: StoreId = None, city: City = None
) -> dict[str, Any]:
    return await service.today(session, actor=actor, store_id=store_id, city=city)


@router.get(
    "/products",
    response_model=list[ProductRank],
    operation_id="product_ranking",
    responses=ERRORS,
)
async def product_ranking(
    session: SessionDep,
    actor: Reader,
    start: Start,
    end: End,
    order: Annotated[Ranking, Query(description="hot: best sellers; slow: slow movers")] = "hot",
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    store_id: StoreId = None,
    city: City = None,
    category_id: CategoryId = None,
) -> list[dict[str, Any]]:
    return await service.product_ranking(
        session,
        actor=actor,
        first=start,
        last=end,
        order=order,
        limit=limit,
        store_id=store_id,
        city=city,
        category_id=category_id,
    )


@router.get(
    "/categories",
    response_model=list[CategoryShare],
    operation_id="category_mix",
    responses=ERRORS,
)
async def category_mix(
    session: SessionDep,
    actor: Reader,
    start: Start,
    end: End,
    store_id: StoreId = None,
    city: City = None,
) -> list[dict[str, Any]]:
    return await service.category_mix(
        session, actor=actor, first=start, last=end, store_id=store_id, city=city
    )


@router.get(
    "/heatmap", response_model=list[HeatCell], operation_id="sales_heatmap", responses=ERRORS
)
async def sales_heatmap(
    session: SessionDep,
    actor: Reader,
    start: Start,
    end: End,
    store_id: StoreId = None,
    city: City = None,
) -> list[dict[str, Any]]:
    return await service.heatmap(
        session, actor=actor, first=start, last=end, store_id=store_id, city=city
    )


@router.get(
    "/payment-methods",
    response_model=list[PaymentShare],
    operation_id="payment_method_mix",
    responses=ERRORS,
)
async def payment_method_mix(
    session: SessionDep,
    actor: Reader,
    start: Start,
    end: End,
    store_id: StoreId = None,
    city: City = None,
) -> list[dict[str, Any]]:
    return await service.payment_mix(
        session, actor=actor, first=start, last=end, store_id=store_id, city=city
    )

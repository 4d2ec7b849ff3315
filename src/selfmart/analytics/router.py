"""HTTP routes of the analytics domain: sales statistics, rankings, mixes and the heatmap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from selfmart.analytics import baskets, export, service
from selfmart.analytics.basket_schemas import (
    BasketGraph,
    BasketRuleRead,
    BasketRunCreate,
    BasketRunRead,
    BoughtWith,
    RuleSort,
    RunProduct,
    Suggestion,
)
from selfmart.analytics.products import Ranking
from selfmart.analytics.sales import Granularity
from selfmart.analytics.schemas import (
    CategoryShare,
    HeatCell,
    MemberSeries,
    PaymentShare,
    ProductRank,
    SalesSeries,
    StockAnalysis,
    TodayFigures,
)
from selfmart.deps import SessionDep
from selfmart.errors import error_responses
from selfmart.iam.actor import Actor
from selfmart.iam.dependencies import require
from selfmart.iam.permissions import Perm
from selfmart.inventory import export as spreadsheet
from selfmart.kit.pagination import Page, PageParams, page_params
from selfmart.kit.searchlog import export_language
from selfmart.kit.time import utcnow

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
XLSX = {200: {"content": {spreadsheet.XLSX_TYPE: {}}}, **ERRORS}


@dataclass(frozen=True, slots=True)
class _Report:
    """A report as its query asks for it (the JSON route's body), and its export's file name."""

    body: Any
    filename: str


@dataclass(frozen=True, slots=True)
class _SeriesQuery:
    """A series' window, granularity and stores, as GET /sales and GET /members take them."""

    start: date
    end: date
    granularity: Granularity
    store_id: int | None
    city: str | None

    def as_kwargs(self) -> dict[str, Any]:
        return {
            "first": self.start,
            "last": self.end,
            "granularity": self.granularity,
            "store_id": self.store_id,
            "city": self.city,
        }

    def filename(self, name: str) -> str:
        return f"{name}-{self.start}-{self.end}-{self.granularity}.xlsx"


def _series_query(
    start: Start,
    end: End,
    granularity: Granularity = "day",
    store_id: StoreId = None,
    city: City = None,
) -> _SeriesQuery:
    return _SeriesQuery(start, end, granularity, store_id, city)


SeriesQuery = Annotated[_SeriesQuery, Depends(_series_query)]


def _catalog_filter(
    product_id: ProductId = None, category_id: CategoryId = None
) -> dict[str, int | None]:
    return {"product_id": product_id, "category_id": category_id}


CatalogFilter = Annotated[dict[str, int | None], Depends(_catalog_filter)]


async def _sales_report(
    session: SessionDep,
    actor: Reader,
    query: SeriesQuery,
    catalog: CatalogFilter,
) -> _Report:
    series = await service.sales_series(session, actor=actor, **query.as_kwargs(), **catalog)
    return _Report(series, query.filename("sales"))


async def _member_report(session: SessionDep, actor: Reader, query: SeriesQuery) -> _Report:
    series = await service.member_series(session, actor=actor, **query.as_kwargs())
    return _Report(series, query.filename("members"))


async def _stock_report(
    session: SessionDep,
    actor: Reader,
    start: Start,
    end: End,
    store_id: StoreId = None,
    city: City = None,
    category_id: CategoryId = None,
) -> _Report:
    analysis = await service.stock_analysis(
        session,
        actor=actor,
        first=start,
        last=end,
        store_id=store_id,
        city=city,
        category_id=category_id,
    )
    return _Report(analysis, f"stock-{start}-{end}.xlsx")


SalesReport = Annotated[_Report, Depends(_sales_report)]
MemberReport = Annotated[_Report, Depends(_member_report)]
StockReport = Annotated[_Report, Depends(_stock_report)]


@router.get("/sales", response_model=SalesSeries, operation_id="sales_statistics", responses=ERRORS)
async def sales_statistics(report: SalesReport) -> Any:
    return report.body


@router.get(
    "/sales/export",
    operation_id="sales_statistics_export",
    response_class=Response,
    responses=XLSX,
)
async def sales_statistics_export(
    session: SessionDep,
    actor: Reader,
    report: SalesReport,
    query: SeriesQuery,
    catalog: CatalogFilter,
    request: Request,
) -> Response:
    """The same figures as GET /sales as an xlsx workbook, then the window's breakdowns as the
    console shows them beside the chart: best sellers and slow movers (top 20, within the
    category if one is asked for), category mix, payment method mix and hour x weekday. Headers
    in the console's language (Accept-Language: en, else Chinese)."""
    breakdowns = await service.breakdowns(
        session,
        actor=actor,
        first=query.start,
        last=query.end,
        limit=20,
        category_id=catalog["category_id"],
        store_id=query.store_id,
        city=query.city,
    )
    content = export.sales_workbook(report.body, breakdowns, export_language(request))
    return spreadsheet.download(content, report.filename)


@router.get(
    "/members", response_model=MemberSeries, operation_id="member_statistics", responses=ERRORS
)
async def member_statistics(report: MemberReport) -> Any:
    """Member versus guest sales and orders, new members and the repurchase rate (members who
    paid in the period and had paid before it, over members who paid in it) per period, with
    the previous period beside each."""
    return report.body


@router.get(
    "/members/export",
    operation_id="member_statistics_export",
    response_class=Response,
    responses=XLSX,
)
async def member_statistics_export(report: MemberReport, request: Request) -> Response:
    """The same figures as GET /members as an xlsx workbook, in the console's language."""
    content = export.member_workbook(report.body, export_language(request))
    return spreadsheet.download(content, report.filename)


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


@router.get("/stock", response_model=StockAnalysis, operation_id="stock_analysis", responses=ERRORS)
async def stock_analysis(report: StockReport) -> Any:
    """Turnover days, sell-through, shrinkage and stock value at cost from the stock ledger,
    by store and by category."""
    return report.body


@router.get(
    "/stock/export",
    operation_id="stock_analysis_export",
    response_class=Response,
    responses=XLSX,
)
async def stock_analysis_export(report: StockReport, request: Request) -> Response:
    """The same figures as GET /stock as an xlsx workbook, in the console's language."""
    content = export.stock_workbook(report.body, export_language(request))
    return spreadsheet.download(content, report.filename)


# ---------------------------------------------------------------- frequently bought together

RunId = Annotated[int, Path(ge=1, le=2**53, description="a basket analysis run")]
Fraction = Annotated[float | None, Query(ge=0, le=1)]


@router.post(
    "/basket-runs",
    response_model=BasketRunRead,
    status_code=202,
    operation_id="basket_run_start",
    responses=error_responses(401, 403, 404, 422),
)
async def start_basket_run(
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.ANALYTICS_RUN)],
    body: BasketRunCreate,
) -> dict[str, Any]:
    """Start an analysis of the baskets of a store (or the chain) over a window: a job with
    progress; the run's rules are read once it has succeeded."""
    run = await baskets.create_run(session, body, actor=actor)
    return await baskets.read_run(session, run.id, actor=actor)


@router.get(
    "/basket-runs",
    response_model=Page[BasketRunRead],
    operation_id="basket_runs",
    responses=ERRORS,
)
async def basket_runs(
    session: SessionDep,
    actor: Reader,
    params: Annotated[PageParams, Depends(page_params)],
    store_id: StoreId = None,
    chain: Annotated[bool, Query(description="only the chain's runs (every store)")] = False,
    status: Annotated[Literal["queued", "running", "succeeded", "failed"] | None, Query()] = None,
) -> Page[Any]:
    items, total = await baskets.list_runs(
        session, actor=actor, params=params, store_id=store_id, chain=chain, status=status
    )
    return Page(items=items, total=total, page=params.page, size=params.size)


@router.get(
    "/basket-runs/{run_id}",
    response_model=BasketRunRead,
    operation_id="basket_run",
    responses=ERRORS,
)
async def basket_run(session: SessionDep, actor: Reader, run_id: RunId) -> dict[str, Any]:
    return await baskets.read_run(session, run_id, actor=actor)


@dataclass(frozen=True, slots=True)
class _RuleFilters:
    """Which of a run's rules, and in what order: GET .../rules and its export."""

    run_id: int
    product_id: int | None
    min_support: float | None
    min_confidence: float | None
    min_lift: float | None
    items: int | None
    sort: RuleSort

    def as_kwargs(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "min_support": self.min_support,
            "min_confidence": self.min_confidence,
            "min_lift": self.min_lift,
            "items": self.items,
            "sort": self.sort,
        }


def _rule_filters(
    run_id: RunId,
    product_id: ProductId = None,
    min_support: Fraction = None,
    min_confidence: Fraction = None,
    min_lift: Annotated[float | None, Query(ge=0, le=1_000_000)] = None,
    items: Annotated[int | None, Query(ge=2, le=4, description="products in the rule")] = None,
    sort: RuleSort = "lift",
) -> _RuleFilters:
    return _RuleFilters(run_id, product_id, min_support, min_confidence, min_lift, items, sort)


RuleFilters = Annotated[_RuleFilters, Depends(_rule_filters)]


@router.get(
    "/basket-runs/{run_id}/rules",
    response_model=Page[BasketRuleRead],
    operation_id="basket_rules",
    responses=ERRORS,
)
async def basket_rules(
    session: SessionDep,
    actor: Reader,
    filters: RuleFilters,
    params: Annotated[PageParams, Depends(page_params)],
) -> Page[Any]:
    rows, total = await baskets.rules(
        session, filters.run_id, actor=actor, params=params, **filters.as_kwargs()
    )
    return Page(items=rows, total=total, page=params.page, size=params.size)


@router.get(
    "/basket-runs/{run_id}/rules/export",
    operation_id="basket_rules_export",
    response_class=Response,
    responses=XLSX,
)
async def basket_rules_export(
    session: SessionDep, actor: Reader, filters: RuleFilters, request: Request
) -> Response:
    """The run's rules, filtered and sorted as GET .../rules, every page, as xlsx, in the
    console's language."""
    content = await export.rules_workbook(
        session, filters.run_id, actor=actor, lang=export_language(request), **filters.as_kwargs()
    )
    name = f"basket-rules-{filters.run_id}-{utcnow():%Y%m%d%H%M}.xlsx"
    return spreadsheet.download(content, name)


@router.get(
    "/basket-runs/{run_id}/products",
    response_model=list[RunProduct],
    operation_id="basket_run_products",
    responses=ERRORS,
)
async def basket_run_products(
    session: SessionDep,
    actor: Reader,
    run_id: RunId,
    q: Annotated[
        str | None, Query(min_length=1, max_length=64, description="part of a name")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[dict[str, Any]]:
    """The run's frequent products, the most frequent first."""
    return await baskets.run_products(session, run_id, actor=actor, q=q, limit=limit)


@router.get(
    "/basket-runs/{run_id}/products/{product_id}",
    response_model=BoughtWith,
    operation_id="basket_bought_with",
    responses=ERRORS,
)
async def bought_with(
    session: SessionDep,
    actor: Reader,
    run_id: RunId,
    product_id: Annotated[int, Path(ge=1, le=2_147_483_647)],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> dict[str, Any]:
    """What is bought with a product: its partners, the most confident first."""
    return await baskets.bought_with(session, run_id, product_id, actor=actor, limit=limit)


@router.get(
    "/basket-runs/{run_id}/graph",
    response_model=BasketGraph,
    operation_id="basket_graph",
    responses=ERRORS,
)
async def basket_graph(
    session: SessionDep,
    actor: Reader,
    run_id: RunId,
    limit: Annotated[int, Query(ge=1, le=300, description="strongest pairs to draw")] = 60,
) -> dict[str, Any]:
    return await baskets.graph(session, run_id, actor=actor, limit=limit)


@router.get(
    "/basket-runs/{run_id}/suggestions",
    response_model=list[Suggestion],
    operation_id="basket_suggestions",
    responses=ERRORS,
)
async def basket_suggestions(
    session: SessionDep,
    actor: Reader,
    run_id: RunId,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> list[dict[str, Any]]:
    """Shelf placements and bundles from the run's strongest rules."""
    return await baskets.suggestions(session, run_id, actor=actor, limit=limit)

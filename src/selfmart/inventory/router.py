"""HTTP routes of the inventory domain: stock per store, the ledger, adjustments, alerts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.catalog.labels import UNKNOWN as UNKNOWN_PRODUCT
from selfmart.catalog.labels import labels as product_labels
from selfmart.deps import SessionDep
from selfmart.errors import error_responses
from selfmart.iam.actor import Actor
from selfmart.iam.dependencies import require
from selfmart.iam.permissions import Perm
from selfmart.inventory import alert_routes, alerts, batches, discrepancies, export, queries
from selfmart.inventory import service as inventory
from selfmart.inventory.dependencies import StoreInScope
from selfmart.inventory.schemas import (
    AlertRead,
    AlertRouteIn,
    AlertRouteRead,
    AlertRouteTestRead,
    AlertRouteUpdate,
    BalanceSeries,
    BatchRead,
    BatchWriteOff,
    BulkLineRead,
    BulkStockIn,
    BulkStockResult,
    DiscrepancyRead,
    MovementRead,
    ReceiptIn,
    ReceiptRead,
    ResolveIn,
    ResolveRequired,
    RoleOptionRead,
    SeriesPointRead,
    StockAdjust,
    StockChangeRead,
    StockRow,
    WriteOff,
)
from selfmart.kit.ids import BigPathId, PathId, QueryId
from selfmart.kit.pagination import Page, PageParams, page_params
from selfmart.kit.time import utcnow

router = APIRouter(tags=["inventory"])

Pages = Annotated[PageParams, Depends(page_params)]
StockReader = Annotated[Actor, require(Perm.STOCK_READ)]
StockWriter = Annotated[Actor, require(Perm.STOCK_WRITE)]


def stock_filter(
    q: Annotated[
        str | None, Query(max_length=100, description="name, brand, pinyin, barcode")
    ] = None,
    state: Annotated[str | None, Query(pattern="^(ok|low|out)$")] = None,
    category_id: QueryId = None,
    sort: Annotated[str, Query(description=", ".join(queries.STOCK_SORTS))] = "name",
) -> queries.StockFilter:
    return queries.StockFilter(q=q, state=state, category_id=category_id, sort=sort)


def movement_filter(
    product_id: QueryId = None,
    kind: Annotated[list[str] | None, Query(description="one or more movement kinds")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    document_type: Annotated[str | None, Query(max_length=32)] = None,
    document_id: Annotated[str | None, Query(max_length=64)] = None,
) -> queries.MovementFilter:
    return queries.MovementFilter(
        product_id=product_id,
        kinds=kind,
        since=since,
        until=until,
        document_type=document_type,
        document_id=document_id,
    )


StockFilterDep = Annotated[queries.StockFilter, Depends(stock_filter)]
MovementFilterDep = Annotated[queries.MovementFilter, Depends(movement_filter)]


def _change(
    store_id: int, product_id: int, booked: inventory.Booked | None, now: int
) -> StockChangeRead:
    if booked is None:
        return StockChangeRead(
            store_id=store_id, product_id=product_id, before=now, after=now, changed=False
        )
    return StockChangeRead(
        store_id=store_id,
        product_id=product_id,
        before=booked.balance_before,
        after=booked.balance_after,
        changed=True,
    )


# --- stock ---------------------------------------------------------------------------------


@router.get(
    "/stores/{store_id}/stock",
    response_model=Page[StockRow],
    operation_id="listStock",
    responses=error_responses(401, 403, 404),
)
async def list_stock(
    store_id: PathId,
    flt: StockFilterDep,
    params: Pages,
    session: SessionDep,
    actor: StockReader,
    store: StoreInScope,
) -> Page[StockRow]:
    rows, total = await queries.list_stock(session, store_id, flt, params, actor=actor)
    return Page(
        items=[StockRow.model_validate(r) for r in rows],
        total=total,
        page=params.page,
        size=params.size,
    )


STOCK_COLUMNS: list[export.Column] = [
    ("商品ID", lambda r: r["product_id"]),
    ("商品名称", lambda r: r["product_name"]),
    ("品牌", lambda r: r["brand"]),
    ("规格", lambda r: r["spec"]),
    ("单位", lambda r: r["unit"]),
    ("条码", lambda r: r["barcode"]),
    ("库存", lambda r: r["quantity"]),
    ("预警阈值", lambda r: r["threshold"]),
    ("状态", lambda r: {"ok": "正常", "low": "库存低", "out": "缺货"}[r["state"]]),
]


@router.get(
    "/stores/{store_id}/stock/export",
    operation_id="exportStock",
    response_class=Response,
    responses={200: {"content": {export.XLSX_TYPE: {}}}, **error_responses(401, 403, 404)},
)
async def export_stock(
    store_id: PathId,
    flt: StockFilterDep,
    session: SessionDep,
    actor: StockReader,
    store: StoreInScope,
) -> Response:
    content = await export.xlsx(
        queries.iter_stock(session, store_id, flt, actor=actor), STOCK_COLUMNS, "库存"
    )
    return export.download(content, f"stock-{store_id}-{utcnow():%Y%m%d%H%M}.xlsx")


@router.get(
    "/stores/{store_id}/stock/movements",
    response_model=Page[MovementRead],
    operation_id="listStockMovements",
    responses=error_responses(401, 403, 404),
)
async def list_movements(
    store_id: PathId,
    flt: MovementFilterDep,
    params: Pages,
    session: SessionDep,
    actor: StockReader,
    store: StoreInScope,
) -> Page[MovementRead]:
    rows, total = await queries.list_movements(session, store_id, flt, params, actor=actor)
    return Page(
        items=[MovementRead.model_validate(r) for r in rows],
        total=total,
        page=params.page,
        size=params.size,
    )


KIND_NAMES = {
    "purchase_receipt": "进货入库",
    "sale": "销售出库",
    "customer_return": "顾客退货",
    "transfer_out": "调拨出库",
    "transfer_in": "调拨入库",
    "stocktake_gain": "盘盈",
    "stocktake_loss": "盘亏",
    "write_off": "报损",
    "supplier_return": "退供应商",
    "adjustment": "手工调整",
}


@router.get(
    "/stores/{store_id}/stock/movements/export",
    operation_id="exportStockMovements",
    response_class=Response,
    responses={200: {"content": {export.XLSX_TYPE: {}}}, **error_responses(401, 403, 404)},
)
async def export_movements(
    store_id: PathId,
    flt: MovementFilterDep,
    session: SessionDep,
    actor: StockReader,
    store: StoreInScope,
) -> Response:
    store = await queries.visible_store(session, store_id, actor)
    when = export.local_time(store.timezone)
    columns: list[export.Column] = [
        ("时间", lambda r: when(r["occurred_at"])),
        ("商品ID", lambda r: r["product_id"]),
        ("商品名称", lambda r: r["product_name"]),
        ("规格", lambda r: r["spec"]),
        ("条码", lambda r: r["barcode"]),
        ("类型", lambda r: KIND_NAMES.get(r["kind"], r["kind"])),
        ("数量", lambda r: r["quantity"]),
        ("结存", lambda r: r["balance_after"]),
        ("单据", lambda r: f"{r['document_type'] or ''} {r['document_id'] or ''}".strip()),
        ("原因", lambda r: r["reason"]),
        ("操作人", lambda r: r["actor_name"]),
    ]
    content = await export.xlsx(
        queries.iter_movements(session, store_id, flt, actor=actor), columns, "出入库记录"
    )
    return export.download(content, f"stock-movements-{store.code}-{utcnow():%Y%m%d%H%M}.xlsx")


@router.post(
    "/stores/{store_id}/stock/receipts",
    response_model=ReceiptRead,
    status_code=201,
    operation_id="receiveStock",
    responses=error_responses(401, 403, 404),
)
async def receive_stock(
    store_id: PathId, body: ReceiptIn, session: SessionDep, actor: StockWriter, store: StoreInScope
) -> ReceiptRead:
    document, booked = await inventory.receive_direct(
        session,
        store_id=store_id,
        lines=[
            inventory.ReceiptLine(ln.product_id, ln.quantity, ln.expiry_date, ln.batch_no)
            for ln in body.lines
        ],
        actor=actor,
        note=body.note,
    )
    return ReceiptRead(
        document_type=document[0],
        document_id=str(document[1]),
        lines=[_change(store_id, b.product_id, b, 0) for b in booked],
    )


@router.get(
    "/stores/{store_id}/stock/{product_id}",
    response_model=StockRow,
    operation_id="getStock",
    responses=error_responses(401, 403, 404),
)
async def get_stock(
    store_id: PathId,
    product_id: PathId,
    session: SessionDep,
    actor: StockReader,
    store: StoreInScope,
) -> dict[str, Any]:
    return await queries.stock_of(session, store_id, product_id, actor=actor)


@router.get(
    "/stores/{store_id}/stock/{product_id}/series",
    response_model=BalanceSeries,
    operation_id="getStockSeries",
    responses=error_responses(401, 403, 404),
)
async def stock_series(
    store_id: PathId,
    product_id: PathId,
    session: SessionDep,
    actor: StockReader,
    store: StoreInScope,
    since: datetime | None = None,
    until: datetime | None = None,
    bucket: Annotated[str, Query(pattern="^(none|hour|day)$")] = "day",
) -> BalanceSeries:
    until = until or utcnow()
    since = since or until - timedelta(days=30)
    opening, points = await queries.balance_series(
        session, store_id, product_id, since=since, until=until, bucket=bucket, actor=actor
    )
    return BalanceSeries(
        store_id=store_id,
        product_id=product_id,
        bucket=bucket,
        opening_balance=opening,
        in_total=sum(p.in_qty for p in points),
        out_total=sum(p.out_qty for p in points),
        points=[
            SeriesPointRead(
                at=p.at, balance=p.balance, change=p.change, in_qty=p.in_qty, out_qty=p.out_qty
            )
            for p in points
        ],
    )


@router.post(
    "/stores/{store_id}/stock/{product_id}/adjust",
    response_model=StockChangeRead,
    operation_id="adjustStock",
    responses=error_responses(401, 403, 404),
)
async def adjust_stock(
    store_id: PathId,
    product_id: PathId,
    body: StockAdjust,
    session: SessionDep,
    actor: StockWriter,
    store: StoreInScope,
) -> StockChangeRead:
    booked = await inventory.adjust(
        session,
        store_id=store_id,
        product_id=product_id,
        actor=actor,
        reason=body.reason,
        delta=body.delta,
        set_to=body.set_to,
    )
    return _change(store_id, product_id, booked, body.set_to or 0)


@router.post(
    "/stores/{store_id}/stock/{product_id}/write-off",
    response_model=StockChangeRead,
    operation_id="writeOffStock",
    responses=error_responses(401, 403, 404, 409),
)
async def write_off_stock(
    store_id: PathId,
    product_id: PathId,
    body: WriteOff,
    session: SessionDep,
    actor: StockWriter,
    store: StoreInScope,
) -> StockChangeRead:
    booked = await inventory.write_off(
        session,
        store_id=store_id,
        product_id=product_id,
        quantity=body.quantity,
        reason=body.reason,
        actor=actor,
    )
    return _change(store_id, product_id, booked, 0)


def _bulk_result(store_id: int, lines: list[inventory.BulkLine], applied: bool) -> BulkStockResult:
    return BulkStockResult(
        store_id=store_id,
        applied=applied,
        changed=sum(1 for ln in lines if ln.change),
        lines=[
            BulkLineRead(
                product_id=ln.product_id,
                product_name=ln.product_name,
                spec=ln.spec,
                barcode=ln.barcode,
                before=ln.before,
                after=ln.after,
                change=ln.change,
            )
            for ln in lines
        ],
    )


@router.post(
    "/stock/bulk/preview",
    response_model=BulkStockResult,
    operation_id="previewBulkStock",
    responses=error_responses(401, 403, 404),
)
async def preview_bulk_stock(
    body: BulkStockIn, session: SessionDep, actor: StockWriter
) -> BulkStockResult:
    """Every change a bulk set/adjust would make; nothing is written."""
    lines = await inventory.plan_bulk(
        session,
        store_id=body.store_id,
        product_ids=body.product_ids,
        mode=body.mode,
        value=body.value,
        actor=actor,
    )
    return _bulk_result(body.store_id, lines, applied=False)


@router.post(
    "/stock/bulk/apply",
    response_model=BulkStockResult,
    operation_id="applyBulkStock",
    responses=error_responses(401, 403, 404),
)
async def apply_bulk_stock(
    body: BulkStockIn, session: SessionDep, actor: StockWriter
) -> BulkStockResult:
    lines = await inventory.apply_bulk(
        session,
        store_id=body.store_id,
        product_ids=body.product_ids,
        mode=body.mode,
        value=body.value,
        reason=body.reason,
        actor=actor,
    )
    return _bulk_result(body.store_id, lines, applied=True)


# --- batches -------------------------------------------------------------------------------


def _batch(view: batches.BatchView) -> BatchRead:
    b = view.batch
    return BatchRead(
        id=b.id,
        store_id=b.store_id,
        product_id=b.product_id,
        batch_no=b.batch_no,
        expiry_date=b.expiry_date,
        quantity_received=b.quantity_received,
        quantity_written_off=b.quantity_written_off,
        remaining=view.remaining,
        received_at=b.received_at,
        document_type=b.document_type,
        document_id=b.document_id,
    )


@router.get(
    "/stores/{store_id}/stock-batches",
    response_model=list[BatchRead],
    operation_id="listStockBatches",
    responses=error_responses(401, 403, 404),
)
async def list_batches(
    store_id: PathId,
    session: SessionDep,
    actor: StockReader,
    store: StoreInScope,
    product_id: QueryId = None,
    expiring_within_days: Annotated[int | None, Query(ge=0, le=3650)] = None,
) -> list[BatchRead]:
    views = await batches.list_batches(
        session,
        store_id,
        actor=actor,
        product_id=product_id,
        expiring_within_days=expiring_within_days,
    )
    return [_batch(v) for v in views]


@router.post(
    "/stores/{store_id}/stock-batches/{batch_id}/write-off",
    response_model=BatchRead,
    operation_id="writeOffStockBatch",
    responses=error_responses(401, 403, 404, 409),
)
async def write_off_batch(
    store_id: PathId,
    batch_id: BigPathId,
    body: BatchWriteOff,
    session: SessionDep,
    actor: StockWriter,
    store: StoreInScope,
) -> BatchRead:
    view, _ = await batches.write_off_batch(
        session, store_id, batch_id, actor=actor, reason=body.reason, quantity=body.quantity
    )
    return _batch(view)


# --- alerts and discrepancies --------------------------------------------------------------

_Labelled = TypeVar("_Labelled", AlertRead, DiscrepancyRead)


async def _labelled(
    session: AsyncSession, rows: Sequence[Any], schema: type[_Labelled]
) -> list[_Labelled]:
    """Rows with their product's name, spec and barcode, in one query for the whole page."""
    names = await product_labels(session, [r.product_id for r in rows])
    return [
        schema.model_validate(r).model_copy(
            update=names.get(r.product_id, UNKNOWN_PRODUCT).fields()
        )
        for r in rows
    ]


@router.get(
    "/stock-alerts",
    response_model=Page[AlertRead],
    operation_id="listStockAlerts",
    responses=error_responses(401, 403),
)
async def list_alerts(
    params: Pages,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.ALERT_READ)],
    store_id: QueryId = None,
    status: Annotated[str | None, Query(pattern="^(open|resolved)$")] = None,
    kind: Annotated[str | None, Query(pattern="^(low_stock|near_expiry)$")] = None,
    product_id: QueryId = None,
) -> Page[AlertRead]:
    items, total = await alerts.list_alerts(
        session,
        actor=actor,
        params=params,
        store_id=store_id,
        status=status,
        kind=kind,
        product_id=product_id,
    )
    return Page(
        items=await _labelled(session, items, AlertRead),
        total=total,
        page=params.page,
        size=params.size,
    )


@router.post(
    "/stock-alerts/{alert_id}/resolve",
    response_model=AlertRead,
    operation_id="resolveStockAlert",
    responses=error_responses(401, 403, 404, 409),
)
async def resolve_alert(
    alert_id: BigPathId,
    body: ResolveIn,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.ALERT_WRITE)],
) -> AlertRead:
    alert = await alerts.resolve(session, alert_id, actor=actor, note=body.note or None)
    return (await _labelled(session, [alert], AlertRead))[0]


@router.get(
    "/stock-discrepancies",
    response_model=Page[DiscrepancyRead],
    operation_id="listStockDiscrepancies",
    responses=error_responses(401, 403),
)
async def list_discrepancies(
    params: Pages,
    session: SessionDep,
    actor: StockReader,
    store_id: QueryId = None,
    status: Annotated[str | None, Query(pattern="^(open|resolved)$")] = None,
    product_id: QueryId = None,
) -> Page[DiscrepancyRead]:
    items, total = await discrepancies.list_discrepancies(
        session, actor=actor, params=params, store_id=store_id, status=status, product_id=product_id
    )
    return Page(
        items=await _labelled(session, items, DiscrepancyRead),
        total=total,
        page=params.page,
        size=params.size,
    )


@router.post(
    "/stock-discrepancies/{discrepancy_id}/resolve",
    response_model=DiscrepancyRead,
    operation_id="resolveStockDiscrepancy",
    responses=error_responses(401, 403, 404, 409),
)
async def resolve_discrepancy(
    discrepancy_id: BigPathId, body: ResolveRequired, session: SessionDep, actor: StockWriter
) -> DiscrepancyRead:
    item = await discrepancies.resolve(session, discrepancy_id, actor=actor, note=body.note)
    return (await _labelled(session, [item], DiscrepancyRead))[0]


# --- alert routes --------------------------------------------------------------------------


@router.get(
    "/stock-alert-routes",
    response_model=list[AlertRouteRead],
    operation_id="listStockAlertRoutes",
    responses=error_responses(401, 403),
)
async def list_alert_routes(
    session: SessionDep, actor: Annotated[Actor, require(Perm.ALERT_READ)]
) -> list[dict[str, Any]]:
    names = await alert_routes.role_names(session)
    return [
        alert_routes.read(r, names) for r in await alert_routes.list_routes(session, actor=actor)
    ]


@router.get(
    "/stock-alert-routes/role-options",
    response_model=list[RoleOptionRead],
    operation_id="listStockAlertRouteRoles",
    responses=error_responses(401, 403),
)
async def list_alert_route_roles(
    session: SessionDep, actor: Annotated[Actor, require(Perm.ALERT_WRITE)]
) -> list[RoleOptionRead]:
    return [RoleOptionRead.model_validate(r) for r in await alert_routes.role_options(session)]


@router.post(
    "/stock-alert-routes",
    response_model=AlertRouteRead,
    status_code=201,
    operation_id="createStockAlertRoute",
    responses=error_responses(401, 403, 404),
)
async def create_alert_route(
    body: AlertRouteIn, session: SessionDep, actor: Annotated[Actor, require(Perm.ALERT_WRITE)]
) -> dict[str, Any]:
    route = await alert_routes.create_route(session, body, actor=actor)
    return alert_routes.read(route, await alert_routes.role_names(session))


@router.patch(
    "/stock-alert-routes/{route_id}",
    response_model=AlertRouteRead,
    operation_id="updateStockAlertRoute",
    responses=error_responses(401, 403, 404),
)
async def update_alert_route(
    route_id: PathId,
    body: AlertRouteUpdate,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.ALERT_WRITE)],
) -> dict[str, Any]:
    route = await alert_routes.update_route(session, route_id, body, actor=actor)
    return alert_routes.read(route, await alert_routes.role_names(session))


@router.delete(
    "/stock-alert-routes/{route_id}",
    status_code=204,
    operation_id="deleteStockAlertRoute",
    responses=error_responses(401, 403, 404),
)
async def delete_alert_route(
    route_id: PathId, session: SessionDep, actor: Annotated[Actor, require(Perm.ALERT_WRITE)]
) -> Response:
    await alert_routes.delete_route(session, route_id, actor=actor)
    return Response(status_code=204)


@router.post(
    "/stock-alert-routes/{route_id}/test",
    response_model=AlertRouteTestRead,
    operation_id="testStockAlertRoute",
    responses=error_responses(401, 403, 404),
)
async def send_alert_route_test(
    route_id: PathId, session: SessionDep, actor: Annotated[Actor, require(Perm.ALERT_WRITE)]
) -> AlertRouteTestRead:
    sent = await alert_routes.send_test(session, route_id, actor=actor)
    return AlertRouteTestRead(
        messages=sent.messages, deliveries=sent.deliveries, unreachable=sent.unreachable
    )

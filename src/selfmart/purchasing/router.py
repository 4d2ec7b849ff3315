"""HTTP routes of the purchasing domain: suppliers, purchase orders, reorder suggestions,
transfers and stocktakes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from selfmart.deps import SessionDep
from selfmart.errors import error_responses
from selfmart.iam.actor import Actor
from selfmart.iam.dependencies import require
from selfmart.iam.permissions import Perm
from selfmart.inventory.dependencies import StoreInScope
from selfmart.kit.ids import PathId, QueryId
from selfmart.kit.pagination import Page, PageParams, page_of, page_params
from selfmart.purchasing import (
    purchase_orders,
    reorder,
    returns,
    stocktakes,
    suppliers,
    transfers,
)
from selfmart.purchasing.schemas import (
    CountsIn,
    NoteIn,
    POCreate,
    PODetail,
    PORead,
    POReceive,
    POUpdate,
    ReorderParams,
    ReorderSuggestionRead,
    ReorderToOrders,
    StocktakeCreate,
    StocktakeDetail,
    StocktakePost,
    StocktakeRead,
    SupplierCreate,
    SupplierDetail,
    SupplierProductIn,
    SupplierProductRead,
    SupplierRead,
    SupplierReturnIn,
    SupplierReturnRead,
    SupplierUpdate,
    TransferCreate,
    TransferDetail,
    TransferRead,
    TransferReceive,
)

router = APIRouter(tags=["purchasing"])

Pages = Annotated[PageParams, Depends(page_params)]
SupplierReader = Annotated[Actor, require(Perm.SUPPLIER_READ)]
SupplierWriter = Annotated[Actor, require(Perm.SUPPLIER_WRITE)]
PurchaseReader = Annotated[Actor, require(Perm.PURCHASE_READ)]
PurchaseWriter = Annotated[Actor, require(Perm.PURCHASE_WRITE)]
StockReader = Annotated[Actor, require(Perm.STOCK_READ)]
StockWriter = Annotated[Actor, require(Perm.STOCK_WRITE)]
StocktakeWriter = Annotated[Actor, require(Perm.STOCKTAKE_WRITE)]

R404 = error_responses(401, 403, 404)
R409 = error_responses(401, 403, 404, 409)


# --- suppliers -----------------------------------------------------------------------------


@router.get(
    "/suppliers", response_model=Page[SupplierRead], operation_id="listSuppliers", responses=R404
)
async def list_suppliers(
    params: Pages,
    session: SessionDep,
    actor: SupplierReader,
    q: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(pattern="^(active|inactive)$")] = None,
    product_id: QueryId = None,
) -> Page[SupplierRead]:
    items, total = await suppliers.list_suppliers(
        session, params, q=q, status=status, product_id=product_id
    )
    return page_of([SupplierRead.model_validate(s) for s in items], total, params)


@router.post(
    "/suppliers",
    response_model=SupplierRead,
    status_code=201,
    operation_id="createSupplier",
    responses=R409,
)
async def create_supplier(body: SupplierCreate, session: SessionDep, actor: SupplierWriter) -> Any:
    return await suppliers.create_supplier(session, body, actor=actor)


@router.get(
    "/suppliers/{supplier_id}",
    response_model=SupplierDetail,
    operation_id="getSupplier",
    responses=R404,
)
async def get_supplier(supplier_id: PathId, session: SessionDep, actor: SupplierReader) -> Any:
    supplier = await suppliers.get_supplier(session, supplier_id)
    return {
        **SupplierRead.model_validate(supplier).model_dump(),
        "products": await suppliers.supplier_products(session, supplier_id),
    }


@router.patch(
    "/suppliers/{supplier_id}",
    response_model=SupplierRead,
    operation_id="updateSupplier",
    responses=R404,
)
async def update_supplier(
    supplier_id: PathId, body: SupplierUpdate, session: SessionDep, actor: SupplierWriter
) -> Any:
    return await suppliers.update_supplier(session, supplier_id, body, actor=actor)


@router.post(
    "/suppliers/{supplier_id}/returns",
    response_model=SupplierReturnRead,
    status_code=201,
    operation_id="returnToSupplier",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def return_to_supplier(
    supplier_id: PathId, body: SupplierReturnIn, session: SessionDep, actor: PurchaseWriter
) -> Any:
    """Send goods back to the supplier from one store: they leave its ledger now and are
    deducted from the supplier's next settlement statement."""
    return await returns.return_to_supplier(session, supplier_id, body, actor=actor)


@router.put(
    "/suppliers/{supplier_id}/products/{product_id}",
    response_model=SupplierProductRead,
    operation_id="setSupplierProduct",
    responses=R404,
)
async def set_supplier_product(
    supplier_id: PathId,
    product_id: PathId,
    body: SupplierProductIn,
    session: SessionDep,
    actor: SupplierWriter,
) -> Any:
    return await suppliers.set_supplier_product(session, supplier_id, product_id, body, actor=actor)


@router.delete(
    "/suppliers/{supplier_id}/products/{product_id}",
    status_code=204,
    operation_id="removeSupplierProduct",
    responses=R404,
)
async def remove_supplier_product(
    supplier_id: PathId, product_id: PathId, session: SessionDep, actor: SupplierWriter
) -> Response:
    await suppliers.remove_supplier_product(session, supplier_id, product_id, actor=actor)
    return Response(status_code=204)


# --- purchase orders -----------------------------------------------------------------------


@router.get(
    "/purchase-orders",
    response_model=Page[PORead],
    operation_id="listPurchaseOrders",
    responses=R404,
)
async def list_purchase_orders(
    params: Pages,
    session: SessionDep,
    actor: PurchaseReader,
    store_id: QueryId = None,
    status: Annotated[
        str | None, Query(pattern="^(" + "|".join(purchase_orders.STATUSES) + ")$")
    ] = None,
    supplier_id: QueryId = None,
    q: Annotated[str | None, Query(max_length=32, description="order number")] = None,
) -> Page[PORead]:
    rows, total = await purchase_orders.list_orders(
        session,
        params,
        actor=actor,
        store_id=store_id,
        status=status,
        supplier_id=supplier_id,
        q=q,
    )
    return page_of(
        [
            PORead.model_validate(
                {**{c: getattr(po, c) for c in purchase_orders.READ_FIELDS}, "supplier_name": n}
            )
            for po, n in rows
        ],
        total,
        params,
    )


@router.post(
    "/purchase-orders",
    response_model=PODetail,
    status_code=201,
    operation_id="createPurchaseOrder",
    responses=R404,
)
async def create_purchase_order(
    body: POCreate, session: SessionDep, actor: PurchaseWriter
) -> dict[str, Any]:
    po = await purchase_orders.create_order(session, body, actor=actor)
    return await purchase_orders.detail(session, po)


@router.get(
    "/purchase-orders/{po_id}",
    response_model=PODetail,
    operation_id="getPurchaseOrder",
    responses=R404,
)
async def get_purchase_order(
    po_id: PathId, session: SessionDep, actor: PurchaseReader
) -> dict[str, Any]:
    po = await purchase_orders.get_order(session, po_id, actor=actor)
    return await purchase_orders.detail(session, po)


@router.patch(
    "/purchase-orders/{po_id}",
    response_model=PODetail,
    operation_id="updatePurchaseOrder",
    responses=R409,
)
async def update_purchase_order(
    po_id: PathId, body: POUpdate, session: SessionDep, actor: PurchaseWriter
) -> dict[str, Any]:
    po = await purchase_orders.update_order(session, po_id, body, actor=actor)
    return await purchase_orders.detail(session, po)


@router.post(
    "/purchase-orders/{po_id}/submit",
    response_model=PODetail,
    operation_id="submitPurchaseOrder",
    responses=R409,
)
async def submit_purchase_order(
    po_id: PathId, session: SessionDep, actor: PurchaseWriter
) -> dict[str, Any]:
    po = await purchase_orders.submit(session, po_id, actor=actor)
    return await purchase_orders.detail(session, po)


@router.post(
    "/purchase-orders/{po_id}/receive",
    response_model=PODetail,
    operation_id="receivePurchaseOrder",
    responses=R409,
)
async def receive_purchase_order(
    po_id: PathId, body: POReceive, session: SessionDep, actor: PurchaseWriter
) -> dict[str, Any]:
    po = await purchase_orders.receive(session, po_id, body, actor=actor)
    return await purchase_orders.detail(session, po)


@router.post(
    "/purchase-orders/{po_id}/close",
    response_model=PODetail,
    operation_id="closePurchaseOrder",
    responses=R409,
)
async def close_purchase_order(
    po_id: PathId, body: NoteIn, session: SessionDep, actor: PurchaseWriter
) -> dict[str, Any]:
    po = await purchase_orders.close(session, po_id, actor=actor, note=body.note)
    return await purchase_orders.detail(session, po)


@router.post(
    "/purchase-orders/{po_id}/cancel",
    response_model=PODetail,
    operation_id="cancelPurchaseOrder",
    responses=R409,
)
async def cancel_purchase_order(
    po_id: PathId, body: NoteIn, session: SessionDep, actor: PurchaseWriter
) -> dict[str, Any]:
    po = await purchase_orders.cancel(session, po_id, actor=actor, note=body.note)
    return await purchase_orders.detail(session, po)


# --- reorder suggestions -------------------------------------------------------------------


@router.get(
    "/stores/{store_id}/reorder-suggestions",
    response_model=list[ReorderSuggestionRead],
    operation_id="listReorderSuggestions",
    responses=R404,
)
async def reorder_suggestions(
    store_id: PathId,
    session: SessionDep,
    actor: PurchaseReader,
    store: StoreInScope,
    params: Annotated[ReorderParams, Query()],
) -> list[ReorderSuggestionRead]:
    items = await reorder.suggest(session, store_id, params, actor=actor)
    return [ReorderSuggestionRead.model_validate(s) for s in items]


@router.post(
    "/stores/{store_id}/reorder-suggestions/purchase-orders",
    response_model=list[PODetail],
    status_code=201,
    operation_id="createPurchaseOrdersFromSuggestions",
    responses=R404,
)
async def reorder_to_purchase_orders(
    store_id: PathId,
    body: ReorderToOrders,
    session: SessionDep,
    actor: PurchaseWriter,
    store: StoreInScope,
) -> list[dict[str, Any]]:
    orders = await reorder.to_purchase_orders(session, store_id, body, actor=actor)
    return [await purchase_orders.detail(session, po) for po in orders]


# --- transfers -----------------------------------------------------------------------------


@router.get(
    "/transfers", response_model=Page[TransferRead], operation_id="listTransfers", responses=R404
)
async def list_transfers(
    params: Pages,
    session: SessionDep,
    actor: StockReader,
    store_id: QueryId = None,
    status: Annotated[
        str | None, Query(pattern="^(draft|in_transit|partially_received|received|cancelled)$")
    ] = None,
) -> Page[TransferRead]:
    items, total = await transfers.list_transfers(
        session, params, actor=actor, store_id=store_id, status=status
    )
    return page_of([TransferRead.model_validate(t) for t in items], total, params)


@router.post(
    "/transfers",
    response_model=TransferDetail,
    status_code=201,
    operation_id="createTransfer",
    responses=R404,
)
async def create_transfer(
    body: TransferCreate, session: SessionDep, actor: StockWriter
) -> dict[str, Any]:
    transfer = await transfers.create_transfer(session, body, actor=actor)
    return await transfers.detail(session, transfer)


@router.get(
    "/transfers/{transfer_id}",
    response_model=TransferDetail,
    operation_id="getTransfer",
    responses=R404,
)
async def get_transfer(
    transfer_id: PathId, session: SessionDep, actor: StockReader
) -> dict[str, Any]:
    transfer = await transfers.get_transfer(session, transfer_id, actor=actor)
    return await transfers.detail(session, transfer)


@router.post(
    "/transfers/{transfer_id}/ship",
    response_model=TransferDetail,
    operation_id="shipTransfer",
    responses=R409,
)
async def ship_transfer(
    transfer_id: PathId, session: SessionDep, actor: StockWriter
) -> dict[str, Any]:
    transfer = await transfers.ship(session, transfer_id, actor=actor)
    return await transfers.detail(session, transfer)


@router.post(
    "/transfers/{transfer_id}/receive",
    response_model=TransferDetail,
    operation_id="receiveTransfer",
    responses=R409,
)
async def receive_transfer(
    transfer_id: PathId, body: TransferReceive, session: SessionDep, actor: StockWriter
) -> dict[str, Any]:
    transfer = await transfers.receive(session, transfer_id, body, actor=actor)
    return await transfers.detail(session, transfer)


@router.post(
    "/transfers/{transfer_id}/cancel",
    response_model=TransferDetail,
    operation_id="cancelTransfer",
    responses=R409,
)
async def cancel_transfer(
    transfer_id: PathId, session: SessionDep, actor: StockWriter
) -> dict[str, Any]:
    transfer = await transfers.cancel(session, transfer_id, actor=actor)
    return await transfers.detail(session, transfer)


# --- stocktakes ----------------------------------------------------------------------------


@router.get(
    "/stocktakes",
    response_model=Page[StocktakeRead],
    operation_id="listStocktakes",
    responses=R404,
)
async def list_stocktakes(
    params: Pages,
    session: SessionDep,
    actor: StockReader,
    store_id: QueryId = None,
    status: Annotated[str | None, Query(pattern="^(counting|posted|cancelled)$")] = None,
) -> Page[StocktakeRead]:
    items, total = await stocktakes.list_stocktakes(
        session, params, actor=actor, store_id=store_id, status=status
    )
    return page_of([StocktakeRead.model_validate(t) for t in items], total, params)


@router.post(
    "/stocktakes",
    response_model=StocktakeDetail,
    status_code=201,
    operation_id="createStocktake",
    responses=R404,
)
async def create_stocktake(
    body: StocktakeCreate, session: SessionDep, actor: StocktakeWriter
) -> dict[str, Any]:
    take = await stocktakes.create_stocktake(session, body, actor=actor)
    return await stocktakes.report(session, take)


@router.get(
    "/stocktakes/{stocktake_id}",
    response_model=StocktakeDetail,
    operation_id="getStocktake",
    responses=R404,
)
async def get_stocktake(
    stocktake_id: PathId, session: SessionDep, actor: StockReader
) -> dict[str, Any]:
    """The stocktake with its variance report."""
    take = await stocktakes.get_stocktake(session, stocktake_id, actor=actor)
    return await stocktakes.report(session, take)


@router.post(
    "/stocktakes/{stocktake_id}/counts",
    response_model=StocktakeDetail,
    operation_id="enterStocktakeCounts",
    responses=R409,
)
async def enter_counts(
    stocktake_id: PathId, body: CountsIn, session: SessionDep, actor: StocktakeWriter
) -> dict[str, Any]:
    take = await stocktakes.enter_counts(session, stocktake_id, body, actor=actor)
    return await stocktakes.report(session, take)


@router.post(
    "/stocktakes/{stocktake_id}/post",
    response_model=StocktakeDetail,
    operation_id="postStocktake",
    responses=R409,
)
async def post_stocktake(
    stocktake_id: PathId, body: StocktakePost, session: SessionDep, actor: StocktakeWriter
) -> dict[str, Any]:
    take = await stocktakes.post(session, stocktake_id, actor=actor, uncounted=body.uncounted)
    return await stocktakes.report(session, take)


@router.post(
    "/stocktakes/{stocktake_id}/cancel",
    response_model=StocktakeDetail,
    operation_id="cancelStocktake",
    responses=R409,
)
async def cancel_stocktake(
    stocktake_id: PathId, session: SessionDep, actor: StocktakeWriter
) -> dict[str, Any]:
    take = await stocktakes.cancel(session, stocktake_id, actor=actor)
    return await stocktakes.report(session, take)

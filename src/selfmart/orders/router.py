"""HTTP routes of the orders domain: the console API (/api/v1/orders...)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from sqlalchemy.exc import DBAPIError

from selfmart.deps import SessionDep, get_sessionmaker
from selfmart.errors import Forbidden, error_responses
from selfmart.iam.actor import Actor
from selfmart.iam.dependencies import require
from selfmart.iam.permissions import Perm
from selfmart.jobs.schemas import JobRead
from selfmart.kit.ids import INT64_MAX, QueryIds
from selfmart.kit.pagination import Page, PageParams, page_params
from selfmart.kit.ratelimit import ORDER_LOOKUP, limiter, rate_limited
from selfmart.kit.time import utcnow
from selfmart.orders import (
    attempts,
    export,
    intake,
    issues,
    live,
    lookup,
    productsync,
    refund_requests,
    refunds,
    search,
    service,
)
from selfmart.orders.schemas import (
    BatchIn,
    BatchResult,
    CancelBody,
    CompleteBody,
    IntakeResult,
    IssueAction,
    IssueQueueItem,
    IssueRead,
    ManualPaymentBody,
    OrderDetail,
    OrderIn,
    OrderListItem,
    OrderStatusRead,
    PaymentFailureIn,
    PaymentFailureResult,
    PaymentRead,
    ProductSync,
    RefundBody,
    RefundDecision,
    RefundRead,
    RefundRequestQueueItem,
    RefundRequestRead,
)
from selfmart.orders.search import OrderFilters, order_filters
from selfmart.terminals.dependencies import SIGNED, TerminalDep
from selfmart.terminals.service import TerminalContext

router = APIRouter(prefix="/orders", tags=["orders"])

OrderId = Annotated[int, Path(ge=1, le=2**53)]
IssueId = Annotated[int, Path(ge=1, le=2**53)]
RequestId = Annotated[int, Path(ge=1, le=2**53)]
Filters = Annotated[OrderFilters, Depends(order_filters)]


@router.get(
    "",
    response_model=Page[OrderListItem],
    operation_id="orders_search",
    responses=error_responses(401, 403),
)
async def search_orders(
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.ORDER_READ)],
    filters: Filters,
    params: Annotated[PageParams, Depends(page_params)],
) -> dict[str, Any]:
    items, total = await search.search(session, filters, params, actor)
    return {"items": items, "total": total, "page": params.page, "size": params.size}


@router.get(
    "/export",
    operation_id="orders_export",
    response_class=StreamingResponse,
    responses={200: {"content": {export.XLSX_MEDIA_TYPE: {}}}, **error_responses(401, 403)},
)
async def export_orders(
    request: Request,
    actor: Annotated[Actor, require(Perm.ORDER_EXPORT)],
    filters: Filters,
    lang: Annotated[Literal["zh-CN", "en"], Query()] = "zh-CN",
) -> StreamingResponse:
    """The current search as xlsx, streamed while it is read (any size)."""
    name = f"orders-{utcnow():%Y%m%d-%H%M%S}.xlsx"
    return StreamingResponse(
        export.stream_xlsx(get_sessionmaker(request), filters, actor, lang=lang),
        media_type=export.XLSX_MEDIA_TYPE,
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


@router.post(
    "/exports",
    response_model=JobRead,
    status_code=202,
    operation_id="orders_export_start",
    responses=error_responses(401, 403),
)
async def start_export(
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.ORDER_EXPORT)],
    filters: Filters,
    lang: Annotated[Literal["zh-CN", "en"], Query()] = "zh-CN",
) -> Any:
    """The current search as an xlsx file made by a job: follow its progress at
    GET /orders/exports/{id}, then download it from /orders/exports/{id}/file."""
    return await service.start_export(session, filters, lang=lang, actor=actor)


@router.get(
    "/exports/{job_id}",
    response_model=JobRead,
    operation_id="orders_export_status",
    responses=error_responses(401, 403, 404),
)
async def export_status(
    job_id: Annotated[int, Path(ge=1, le=2**53)],
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.ORDER_EXPORT)],
) -> Any:
    """How far the export job has got (rows written of the total)."""
    return await service.export_job(session, job_id, actor=actor)


@router.get(
    "/exports/{job_id}/file",
    operation_id="orders_export_file",
    response_class=FileResponse,
    responses={200: {"content": {export.XLSX_MEDIA_TYPE: {}}}, **error_responses(401, 403, 404)},
)
async def export_file(
    job_id: Annotated[int, Path(ge=1, le=2**53)],
    request: Request,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.ORDER_EXPORT)],
) -> FileResponse:
    path = await service.export_file(
        session, job_id, media_dir=request.app.state.settings.media_dir, actor=actor
    )
    return FileResponse(path, media_type=export.XLSX_MEDIA_TYPE, filename=path.name)


@router.get(
    "/live",
    operation_id="orders_live",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **error_responses(401, 403)},
)
async def live_orders(
    request: Request,
    actor: Annotated[Actor, require(Perm.ORDER_READ)],
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0, le=INT64_MAX)] = None,
    after: Annotated[
        int | None, Query(ge=0, le=INT64_MAX, description="resume after this event id")
    ] = None,
    stream_seconds: Annotated[
        int | None,
        Query(alias="timeout", ge=1, le=3600, description="end the stream after this many s"),
    ] = None,
) -> StreamingResponse:
    """Server-sent events: one `order` event per timeline entry of the actor's stores.

    Resume with `Last-Event-ID` (or `after`); without either the stream starts from now."""
    return StreamingResponse(
        live.stream(
            get_sessionmaker(request),
            store_ids=actor.store_ids,
            after_id=after if after is not None else last_event_id,
            is_disconnected=request.is_disconnected,
            max_seconds=stream_seconds,
        ),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


@router.get(
    "/issues",
    response_model=Page[IssueQueueItem],
    operation_id="orders_issue_queue",
    responses=error_responses(401, 403),
)
async def issue_queue(
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.ORDER_READ)],
    params: Annotated[PageParams, Depends(page_params)],
    status: Annotated[Literal["open", "resolved"], Query()] = "open",
    kind: Annotated[list[str] | None, Query()] = None,
    store_id: QueryIds = None,
    stage: Annotated[Literal["auto", "person"] | None, Query()] = None,
) -> dict[str, Any]:
    """Abnormal orders, longest waiting first."""
    items, total = await issues.queue(
        session, actor, params, status=status, kinds=kind, store_ids=store_id, stage=stage
    )
    return {"items": items, "total": total, "page": params.page, "size": params.size}


@router.post(
    "/issues/{issue_id}/actions",
    response_model=IssueRead,
    operation_id="orders_issue_act",
    responses=error_responses(401, 403, 404, 409),
)
async def act_on_issue(
    issue_id: IssueId,
    body: IssueAction,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.ORDER_WRITE)],
) -> dict[str, Any]:
    if body.action == "refund_difference" and not actor.can(Perm.ORDER_REFUND):
        raise Forbidden(f"Permission {Perm.ORDER_REFUND.value} is required")
    issue = await issues.get_for_actor(session, issue_id, actor)
    issue = await issues.act(session, issue, body, actor=actor)
    facts = await issues.order_facts(session, [issue.order_id])
    return issues.present(issue, facts.get(issue.order_id), utcnow())


@router.get(
    "/refund-requests",
    response_model=Page[RefundRequestQueueItem],
    operation_id="orders_refund_requests",
    responses=error_responses(401, 403),
)
async def refund_request_queue(
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.ORDER_REFUND)],
    params: Annotated[PageParams, Depends(page_params)],
    status: Annotated[Literal["pending", "approved", "rejected"], Query()] = "pending",
    order_id: Annotated[int | None, Query(ge=1, le=2**53)] = None,
) -> dict[str, Any]:
    """Refunds waiting for approval that the caller may decide (their limit covers them),
    and the caller's own requests; oldest first."""
    items, total = await refund_requests.queue(
        session, actor, params, status=status, order_id=order_id
    )
    return {"items": items, "total": total, "page": params.page, "size": params.size}


@router.post(
    "/refund-requests/{request_id}/approve",
    response_model=RefundRequestRead,
    operation_id="orders_refund_request_approve",
    responses=error_responses(401, 403, 404, 409),
)
async def approve_refund_request(
    request_id: RequestId,
    body: RefundDecision,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.ORDER_REFUND)],
) -> dict[str, Any]:
    """Make the refund asked for, as the caller (403 if it is above the caller's limit too;
    409 if it was decided meanwhile)."""
    request = await refund_requests.get_for_actor(session, request_id, actor)
    request = await refund_requests.approve(session, request, note=body.note, actor=actor)
    return refund_requests.present(request, actor)


@router.post(
    "/refund-requests/{request_id}/reject",
    response_model=RefundRequestRead,
    operation_id="orders_refund_request_reject",
    responses=error_responses(401, 403, 404, 409),
)
async def reject_refund_request(
    request_id: RequestId,
    body: RefundDecision,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.ORDER_REFUND)],
) -> dict[str, Any]:
    """Refuse the refund, saying why in the note."""
    request = await refund_requests.get_for_actor(session, request_id, actor)
    request = await refund_requests.reject(session, request, note=body.note, actor=actor)
    return refund_requests.present(request, actor)


@router.get(
    "/{order_id}",
    response_model=OrderDetail,
    operation_id="orders_get",
    responses=error_responses(401, 403, 404),
)
async def get_order(
    order_id: OrderId, session: SessionDep, actor: Annotated[Actor, require(Perm.ORDER_READ)]
) -> dict[str, Any]:
    order = await service.get_for_actor(session, order_id, actor)
    return await service.detail(session, order, actor=actor)


@router.post(
    "/{order_id}/cancel",
    response_model=OrderDetail,
    operation_id="orders_cancel",
    responses=error_responses(401, 403, 404, 409),
)
async def cancel_order(
    order_id: OrderId,
    body: CancelBody,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.ORDER_WRITE)],
) -> dict[str, Any]:
    order = await service.get_for_actor(session, order_id, actor)
    await service.cancel(session, order, reason=body.reason, actor=actor)
    return await service.detail(session, order, actor=actor)


@router.post(
    "/{order_id}/complete",
    response_model=OrderDetail,
    operation_id="orders_complete",
    responses=error_responses(401, 403, 404, 409),
)
async def complete_order(
    order_id: OrderId,
    body: CompleteBody,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.ORDER_WRITE)],
) -> dict[str, Any]:
    order = await service.get_for_actor(session, order_id, actor)
    await service.complete(session, order, note=body.note, actor=actor)
    return await service.detail(session, order, actor=actor)


@router.post(
    "/{order_id}/payments",
    response_model=PaymentRead,
    status_code=201,
    operation_id="orders_record_payment",
    responses=error_responses(401, 403, 404, 409),
)
async def record_payment(
    order_id: OrderId,
    body: ManualPaymentBody,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.PAYMENT_WRITE)],
) -> Any:
    """Record money collected by hand (the manual channel)."""
    order = await service.get_for_actor(session, order_id, actor, for_update=True)
    return await service.record_manual_payment(session, order, body, actor=actor)


@router.post(
    "/{order_id}/refunds",
    response_model=RefundRead,
    status_code=201,
    operation_id="orders_refund",
    responses=error_responses(401, 403, 404, 409),
)
async def refund_order(
    order_id: OrderId,
    body: RefundBody,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.ORDER_REFUND)],
) -> Any:
    """Refund by line and quantity (or in full), through the original payment channel."""
    order = await service.get_for_actor(session, order_id, actor, for_update=True)
    record = await refunds.refund(session, order, body, actor=actor)
    await session.refresh(record, attribute_names=["lines"])
    return record


@router.post(
    "/{order_id}/refund-requests",
    response_model=RefundRequestRead,
    status_code=201,
    operation_id="orders_refund_request_create",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def request_refund(
    order_id: OrderId,
    body: RefundBody,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.ORDER_REFUND)],
) -> dict[str, Any]:
    """A refund above the caller's limit, sent for approval: it is priced and checked now, and
    made when someone whose limit covers it approves it."""
    order = await service.get_for_actor(session, order_id, actor, for_update=True)
    request = await refund_requests.create(session, order, body, actor=actor)
    return refund_requests.present(request, actor)


# ---------------------------------------------------------------- terminal API (signed)

terminal_router = APIRouter(tags=["terminal-api"])


def _terminal(ctx: TerminalContext) -> intake.Terminal:
    return intake.Terminal(terminal_id=ctx.terminal.id, store=ctx.store, actor=ctx.actor)


@terminal_router.post(
    "/orders",
    response_model=IntakeResult,
    status_code=201,
    operation_id="terminal_create_order",
    openapi_extra=SIGNED,
    responses={
        **error_responses(401, 403, 409, 413, 503),
        200: {"model": IntakeResult, "description": "already accepted: the same order"},
    },
)
async def terminal_create_order(
    body: OrderIn, session: SessionDep, ctx: TerminalDep, response: Response
) -> dict[str, Any]:
    """Create an order, once per client order id: the same id and body answer 200 with the
    order already made; the same id with another body is a 409."""
    try:
        result = await intake.accept(session, _terminal(ctx), body)
    except DBAPIError as exc:
        intake.raise_if_retryable(exc)
        raise
    if result["outcome"] == "duplicate":
        response.status_code = 200
    return result


@terminal_router.post(
    "/orders/batch",
    response_model=BatchResult,
    operation_id="terminal_upload_orders",
    openapi_extra=SIGNED,
    responses=error_responses(401, 403, 413, 503),
)
async def terminal_upload_orders(
    body: BatchIn, session: SessionDep, ctx: TerminalDep
) -> dict[str, Any]:
    """Orders captured offline, with their original times: each accepted once; the answer says
    per order what happened, and a refused order does not hold back the others."""
    return await intake.accept_batch(session, _terminal(ctx), body)


@terminal_router.get(
    "/orders/{order_no}",
    response_model=OrderStatusRead,
    operation_id="terminal_order_status",
    openapi_extra=SIGNED,
    responses=error_responses(401, 403, 404),
)
async def terminal_order_status(
    order_no: Annotated[str, Path(min_length=1, max_length=24)],
    session: SessionDep,
    ctx: TerminalDep,
) -> dict[str, Any]:
    """An order of this terminal's store, by the number on its receipt."""
    return await lookup.for_terminal(session, order_no, store_id=ctx.store.id)


@terminal_router.post(
    "/orders/{order_no}/payment-failures",
    response_model=PaymentFailureResult,
    status_code=201,
    operation_id="terminal_report_payment_failure",
    openapi_extra=SIGNED,
    responses={
        **error_responses(401, 403, 404, 409, 413, 503),
        200: {"model": PaymentFailureResult, "description": "already reported: the same answer"},
    },
)
async def terminal_report_payment_failure(
    order_no: Annotated[str, Path(min_length=1, max_length=24, pattern=r"^[0-9A-Za-z]+$")],
    body: PaymentFailureIn,
    session: SessionDep,
    ctx: TerminalDep,
    response: Response,
) -> dict[str, Any]:
    """The terminal tried to charge an order of its store and the payment failed: the order
    moves to payment_failed and into the abnormal-order queue. Once per attempt id: the same
    id and body answer 200 with the first answer; the same id with another body is a 409."""
    try:
        result = await attempts.report_failure(
            session, store_id=ctx.store.id, order_no=order_no, body=body, actor=ctx.actor
        )
    except DBAPIError as exc:
        intake.raise_if_retryable(exc)
        raise
    if result["outcome"] == "duplicate":
        response.status_code = 200
    return result


@terminal_router.get(
    "/products",
    response_model=ProductSync,
    operation_id="terminal_products",
    openapi_extra=SIGNED,
    responses=error_responses(401, 403),
)
async def terminal_products(
    session: SessionDep,
    ctx: TerminalDep,
    since: Annotated[
        int | None,
        Query(ge=0, le=productsync.MAX_VERSION, description="the version you hold"),
    ] = None,
) -> dict[str, Any]:
    """The store's products with prices and barcodes: all of them, or the changes since a
    version. Apply items as upserts and removals as deletes: changes of the last two minutes
    come again, so that one committed late is never missed (docs/terminal-protocol.md §5a)."""
    return await productsync.sync(session, store_id=ctx.store.id, since=since)


# ---------------------------------------------------------------- customers (public)

public_router = APIRouter(prefix="/public/orders", tags=["customer"])


@public_router.get(
    "/receipt/{token}",
    response_model=OrderStatusRead,
    operation_id="public_order_by_receipt",
    responses=error_responses(404, 429),
    dependencies=[rate_limited(ORDER_LOOKUP)],
)
async def order_by_receipt(
    token: Annotated[str, Path(min_length=1, max_length=64)],
    session: SessionDep,
) -> dict[str, Any]:
    """The page behind the receipt's QR code (a signed link)."""
    return await lookup.by_receipt(session, token)


@public_router.get(
    "/lookup",
    response_model=OrderStatusRead,
    operation_id="public_order_lookup",
    responses=error_responses(404, 429),
    dependencies=[rate_limited(ORDER_LOOKUP)],
)
async def order_lookup(
    request: Request,
    session: SessionDep,
    order_no: Annotated[str, Query(min_length=6, max_length=24, pattern=r"^[0-9A-Za-z]+$")],
    phone_last4: Annotated[str, Query(pattern=r"^[0-9]{4}$")],
) -> dict[str, Any]:
    """An order by its number and the last four digits of the customer's phone."""
    return await lookup.by_number(session, order_no, phone_last4, limiter=limiter(request))

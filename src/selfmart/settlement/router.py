"""HTTP routes of settlement: the platform fee report, store settlement, supplier statements
(generate, review, approve, mark paid, export)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response

from selfmart.deps import SessionDep
from selfmart.errors import error_responses
from selfmart.iam.actor import Actor
from selfmart.iam.dependencies import require
from selfmart.iam.permissions import Perm
from selfmart.inventory import export
from selfmart.kit import searchlog
from selfmart.kit.ids import PathId, QueryId
from selfmart.kit.pagination import Page, PageParams, page_of, page_params
from selfmart.kit.time import utcnow
from selfmart.models import SupplierStatement
from selfmart.payments.schemas import PlatformChannel
from selfmart.settlement import statements, stores
from selfmart.settlement.exports import fees_xlsx, statement_xlsx, stores_xlsx
from selfmart.settlement.schemas import (
    FeeRow,
    StatementCreate,
    StatementDetail,
    StatementNote,
    StatementPay,
    StatementRead,
    StatementStatus,
    StoreSettlement,
)

router = APIRouter(prefix="/settlement", tags=["settlement"])

Reader = Annotated[Actor, require(Perm.SETTLEMENT_READ)]
Writer = Annotated[Actor, require(Perm.SETTLEMENT_WRITE)]
Approver = Annotated[Actor, require(Perm.SETTLEMENT_APPROVE)]
Pages = Annotated[PageParams, Depends(page_params)]
DateFrom = Annotated[date, Query(description="first day (inclusive)")]
DateTo = Annotated[date, Query(description="last day (inclusive)")]
Group = Annotated[stores.Group, Query(description="one row per day or per month")]
XLSX: dict[int | str, dict[str, Any]] = {200: {"content": {export.XLSX_TYPE: {}}}}
R = error_responses(401, 403, 422)
R_ID = error_responses(401, 403, 404, 409, 422)
Route = TypeVar("Route", bound=Callable[..., Coroutine[Any, Any, Any]])


def _statement(stmt: SupplierStatement, supplier_name: str) -> StatementRead:
    return StatementRead.model_validate(
        {
            **{c: getattr(stmt, c) for c in StatementRead.model_fields if c != "supplier_name"},
            "supplier_name": supplier_name,
        }
    )


async def _read(session: SessionDep, stmt: SupplierStatement, *, lines: bool) -> dict[str, Any]:
    name = await statements.supplier_name(session, stmt.supplier_id)
    out = _statement(stmt, name).model_dump()
    if lines:
        out["lines"] = stmt.lines
    return out


# --- store settlement and fees ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Report:
    """A report as the filters ask for it, and the range its export is named by."""

    body: Any
    span: str


async def _store_report(
    session: SessionDep,
    actor: Reader,
    date_from: DateFrom,
    date_to: DateTo,
    store_id: QueryId = None,
    group: Group = "day",
) -> _Report:
    report = await stores.store_settlement(
        session, actor=actor, date_from=date_from, date_to=date_to, store_id=store_id, group=group
    )
    return _Report(report, f"{date_from}-{date_to}")


async def _fee_report(
    session: SessionDep,
    actor: Reader,
    date_from: DateFrom,
    date_to: DateTo,
    store_id: QueryId = None,
    channel: PlatformChannel | None = None,
    flagged: bool = False,
) -> _Report:
    rows = await stores.fee_report(
        session,
        actor=actor,
        date_from=date_from,
        date_to=date_to,
        store_id=store_id,
        channel=channel,
        flagged_only=flagged,
    )
    return _Report(rows, f"{date_from}-{date_to}")


StoreReport = Annotated[_Report, Depends(_store_report)]
FeeReport = Annotated[_Report, Depends(_fee_report)]


@router.get(
    "/stores",
    response_model=StoreSettlement,
    operation_id="storeSettlement",
    responses=R,
)
async def store_settlement(report: StoreReport) -> Any:
    """Per store, day (or month) and channel: sales, refunds, fees and what the platform paid
    out; from reconciled bills where there are any, else from our records (`source: ours`,
    fees estimated at the configured rate)."""
    return report.body


@router.get(
    "/stores/export",
    operation_id="exportStoreSettlement",
    response_class=Response,
    responses={**XLSX, **R},
)
async def export_store_settlement(report: StoreReport, request: Request) -> Response:
    """As xlsx, its headers in the console's language (Accept-Language: en, else Chinese)."""
    data = await stores_xlsx(report.body, searchlog.export_language(request))
    return export.download(data, f"store-settlement-{report.span}.xlsx")


@router.get("/fees", response_model=list[FeeRow], operation_id="feeReport", responses=R)
async def fee_report(report: FeeReport) -> Any:
    """Per bill day, channel, store and merchant account: fees charged beside the fees the
    configured rate gives; `flagged` rows differ (or have no rate to check against)."""
    return report.body


@router.get(
    "/fees/export",
    operation_id="exportFeeReport",
    response_class=Response,
    responses={**XLSX, **R},
)
async def export_fee_report(report: FeeReport, request: Request) -> Response:
    """As xlsx, its headers in the console's language (Accept-Language: en, else Chinese)."""
    data = await fees_xlsx(report.body, searchlog.export_language(request))
    return export.download(data, f"platform-fees-{report.span}.xlsx")


# --- supplier statements ---------------------------------------------------------------------


@router.get(
    "/statements",
    response_model=Page[StatementRead],
    operation_id="listSupplierStatements",
    responses=R,
)
async def list_statements(
    params: Pages,
    session: SessionDep,
    actor: Reader,
    supplier_id: QueryId = None,
    status: StatementStatus | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> Page[StatementRead]:
    rows, total = await statements.list_statements(
        session,
        params,
        actor=actor,
        supplier_id=supplier_id,
        status=status,
        date_from=date_from,
        date_to=date_to,
    )
    return page_of((_statement(s, name) for s, name in rows), total, params)


@router.post(
    "/statements",
    response_model=StatementDetail,
    status_code=201,
    operation_id="generateSupplierStatement",
    responses=R_ID,
)
async def generate(body: StatementCreate, session: SessionDep, actor: Writer) -> Any:
    """A draft statement for the supplier and period (409 when it overlaps another)."""
    stmt = await statements.generate(
        session, body.supplier_id, body.period_start, body.period_end, note=body.note, actor=actor
    )
    return await _read(session, stmt, lines=True)


@router.get(
    "/statements/{statement_id}",
    response_model=StatementDetail,
    operation_id="getSupplierStatement",
    responses=R_ID,
)
async def get_statement(statement_id: PathId, session: SessionDep, actor: Reader) -> Any:
    stmt = await statements.get_statement(session, statement_id, actor=actor)
    return await _read(session, stmt, lines=True)


def _step(action: str, operation_id: str) -> Callable[[Route], Route]:
    """A statement's step (regenerate, review, approve, mark paid): answered with the
    statement as it now is, lines and all."""
    return router.post(
        f"/statements/{{statement_id}}/{action}",
        response_model=StatementDetail,
        operation_id=operation_id,
        responses=R_ID,
    )


async def _detail(session: SessionDep, stmt: SupplierStatement) -> dict[str, Any]:
    return await _read(session, stmt, lines=True)


@_step("regenerate", "regenerateSupplierStatement")
async def regenerate(statement_id: PathId, session: SessionDep, actor: Writer) -> Any:
    return await _detail(session, await statements.regenerate(session, statement_id, actor=actor))


@_step("review", "reviewSupplierStatement")
async def review(
    statement_id: PathId, body: StatementNote, session: SessionDep, actor: Writer
) -> Any:
    stmt = await statements.review(session, statement_id, actor=actor, note=body.note)
    return await _detail(session, stmt)


@_step("approve", "approveSupplierStatement")
async def approve(
    statement_id: PathId, body: StatementNote, session: SessionDep, actor: Approver
) -> Any:
    """Freeze a reviewed statement whose period is over; a second approval is a 409."""
    stmt = await statements.approve(session, statement_id, actor=actor, note=body.note)
    return await _detail(session, stmt)


@_step("pay", "markSupplierStatementPaid")
async def mark_paid(
    statement_id: PathId, body: StatementPay, session: SessionDep, actor: Approver
) -> Any:
    stmt = await statements.mark_paid(
        session, statement_id, body.payment_reference, actor=actor, note=body.note
    )
    return await _detail(session, stmt)


@router.delete(
    "/statements/{statement_id}",
    status_code=204,
    operation_id="deleteSupplierStatement",
    responses=R_ID,
)
async def delete_statement(statement_id: PathId, session: SessionDep, actor: Writer) -> Response:
    await statements.delete_statement(session, statement_id, actor=actor)
    return Response(status_code=204)


@router.get(
    "/statements/{statement_id}/export",
    operation_id="exportSupplierStatement",
    response_class=Response,
    responses={**XLSX, **R_ID},
)
async def export_statement(
    statement_id: PathId, session: SessionDep, actor: Reader, request: Request
) -> Response:
    """As xlsx, in the console's language (Accept-Language: en, else Chinese)."""
    stmt = await statements.get_statement(session, statement_id, actor=actor)
    name = await statements.supplier_name(session, stmt.supplier_id)
    data = await statement_xlsx(stmt, name, searchlog.export_language(request))
    return export.download(data, f"statement-{stmt.number}-{utcnow():%Y%m%d%H%M}.xlsx")

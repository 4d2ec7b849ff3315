"""HTTP routes of reconciliation: runs and day totals, differences (list, drill down,
resolve), rerunning a day, and the fee rate agreed per merchant account."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from selfmart.deps import SessionDep
from selfmart.errors import ValidationFailed, error_responses
from selfmart.iam.actor import Actor
from selfmart.iam.dependencies import CurrentActor, require
from selfmart.iam.permissions import Perm
from selfmart.kit.ids import INT64_MAX
from selfmart.kit.pagination import Page, PageParams, page_params
from selfmart.kit.tabular import XLSX_MEDIA_TYPE
from selfmart.models import PaymentAccount, ReconciliationFeeRate, ReconciliationRun
from selfmart.payments.schemas import PlatformChannel
from selfmart.reconciliation import differences, export, fees, reports, runs
from selfmart.reconciliation.schemas import (
    Calendar,
    DayTotals,
    DifferenceClass,
    DifferenceDetail,
    DifferenceRead,
    DifferenceState,
    FeeRateIn,
    FeeRateRead,
    FeeReportRow,
    RerunIn,
    ResolveIn,
    RunRead,
    RunStatus,
)

router = APIRouter(prefix="/reconciliation", tags=["reconciliation"])

DifferenceId = Annotated[int, Path(ge=1, le=INT64_MAX)]
AccountId = Annotated[int, Path(ge=1, le=2_147_483_647)]
#: the most days a calendar spans (six weeks: a month view with its edges)
CALENDAR_DAYS = 42


async def _difference_in_scope(
    difference_id: DifferenceId, session: SessionDep, actor: CurrentActor
) -> int:
    """The path's difference if the caller may see it (after the permission, before the body:
    another store's difference is a 404 whatever was sent)."""
    await differences.visible(session, difference_id, actor=actor)
    return difference_id


DifferenceInScope = Annotated[int, Depends(_difference_in_scope)]


async def _account_in_scope(
    account_id: AccountId, session: SessionDep, actor: CurrentActor
) -> PaymentAccount:
    return await reports.account_for(session, account_id, actor=actor)


AccountInScope = Annotated[PaymentAccount, Depends(_account_in_scope)]


@router.get(
    "/runs",
    response_model=list[RunRead],
    operation_id="list_reconciliation_runs",
    responses=error_responses(401, 403),
)
async def list_runs(
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.RECONCILIATION_READ)],
    date_from: date | None = None,
    date_to: date | None = None,
    channel: PlatformChannel | None = None,
    account_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    status: RunStatus | None = None,
) -> list[ReconciliationRun]:
    return await reports.list_runs(
        session,
        actor=actor,
        date_from=date_from,
        date_to=date_to,
        channel=channel,
        account_id=account_id,
        status=status,
    )


@router.post(
    "/runs",
    response_model=RunRead,
    operation_id="rerun_reconciliation",
    responses=error_responses(401, 403, 404, 422),
)
async def rerun(
    body: RerunIn,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.RECONCILIATION_RUN)],
) -> ReconciliationRun:
    """Download and reconcile one account's bill of one day now, replacing that day's result.
    A bill that cannot be read is answered with the run naming why (`last_error`)."""
    account = await reports.account_for(session, body.account_id, actor=actor)
    return await runs.reconcile(session, account, body.bill_date, body.kind, actor=actor)


@router.get(
    "/totals",
    response_model=list[DayTotals],
    operation_id="reconciliation_totals",
    responses=error_responses(401, 403),
)
async def totals(
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.RECONCILIATION_READ)],
    date_from: date | None = None,
    date_to: date | None = None,
    channel: PlatformChannel | None = None,
) -> list[dict[str, Any]]:
    """Per day and channel: gross, refunds, fees and net from the bills, the platforms' own
    trailer totals, and ours."""
    return await reports.totals(
        session, actor=actor, date_from=date_from, date_to=date_to, channel=channel
    )


@router.get(
    "/differences",
    response_model=Page[DifferenceRead],
    operation_id="list_reconciliation_differences",
    responses=error_responses(401, 403),
)
async def list_differences(
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.RECONCILIATION_READ)],
    params: Annotated[PageParams, Depends(page_params)],
    run_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    date_from: date | None = None,
    date_to: date | None = None,
    channel: PlatformChannel | None = None,
    difference: DifferenceClass | None = None,
    state: DifferenceState | None = None,
) -> Page[dict[str, Any]]:
    return await differences.list_differences(
        session,
        params,
        actor=actor,
        run_id=run_id,
        date_from=date_from,
        date_to=date_to,
        channel=channel,
        difference=difference,
        state=state,
    )


@router.get(
    "/differences/{difference_id}",
    response_model=DifferenceDetail,
    operation_id="get_reconciliation_difference",
    responses=error_responses(401, 403, 404),
)
async def get_difference(
    difference_id: DifferenceId,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.RECONCILIATION_READ)],
) -> dict[str, Any]:
    """The difference, the bill line, our payment (attempts, callbacks, refunds) and order."""
    return await differences.detail(session, difference_id, actor=actor)


@router.post(
    "/differences/{difference_id}/resolve",
    response_model=DifferenceRead,
    operation_id="resolve_reconciliation_difference",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def resolve_difference(
    difference_id: DifferenceInScope,
    body: ResolveIn,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.RECONCILIATION_RESOLVE)],
) -> dict[str, Any]:
    """Record the decision and carry it out: accept; refund the customer through our payment;
    record a manual payment on our order."""
    return await differences.resolve(
        session, difference_id, body.resolution, body.note, actor=actor, amount_fen=body.amount_fen
    )


@router.get(
    "/fee-rates",
    response_model=list[FeeRateRead],
    operation_id="list_reconciliation_fee_rates",
    responses=error_responses(401, 403),
)
async def list_fee_rates(
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.RECONCILIATION_READ)],
) -> list[ReconciliationFeeRate]:
    return await fees.visible_rates(session, actor=actor)


@router.put(
    "/fee-rates/{account_id}",
    response_model=FeeRateRead,
    operation_id="set_reconciliation_fee_rate",
    responses=error_responses(401, 403, 404, 422),
)
async def set_fee_rate(
    account: AccountInScope,
    body: FeeRateIn,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.RECONCILIATION_RUN)],
) -> ReconciliationFeeRate:
    """The fee rate agreed with the platform for the account, in basis points (60 = 0.60%)."""
    return await fees.set_rate(session, account, body.rate_bp, actor=actor)


@router.get(
    "/calendar",
    response_model=Calendar,
    operation_id="reconciliation_calendar",
    responses=error_responses(401, 403, 422),
)
async def calendar(
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.RECONCILIATION_READ)],
    date_from: date,
    date_to: date,
) -> dict[str, Any]:
    """Each account × day of the span (at most 42 days) with its status: matched, open
    (differences to work), not_run, no_bill, refused (the bill could not be read)."""
    if date_to < date_from:
        raise ValidationFailed("date_to is before date_from", field="date_to")
    if (date_to - date_from).days >= CALENDAR_DAYS:
        raise ValidationFailed(f"At most {CALENDAR_DAYS} days at once", field="date_to")
    return await reports.calendar(session, actor=actor, date_from=date_from, date_to=date_to)


@router.get(
    "/fees",
    response_model=list[FeeReportRow],
    operation_id="reconciliation_fee_report",
    responses=error_responses(401, 403, 422),
)
async def fee_report(
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.RECONCILIATION_READ)],
    date_from: date | None = None,
    date_to: date | None = None,
    channel: PlatformChannel | None = None,
    store_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
) -> list[dict[str, Any]]:
    """The bills' fees per day, channel, account and store beside the configured rate's."""
    return await reports.fee_report(
        session,
        actor=actor,
        date_from=date_from,
        date_to=date_to,
        channel=channel,
        store_id=store_id,
    )


@router.get(
    "/export",
    operation_id="reconciliation_export_day",
    response_class=Response,
    responses={200: {"content": {XLSX_MEDIA_TYPE: {}}}, **error_responses(401, 403, 422)},
)
async def export_day(
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.RECONCILIATION_READ)],
    bill_date: date,
    channel: PlatformChannel | None = None,
    lang: Literal["zh-CN", "en"] = "zh-CN",
) -> Response:
    """A day's totals per account and its differences, as xlsx."""
    data = await export.day_workbook(session, bill_date, actor=actor, channel=channel, lang=lang)
    name = f"reconciliation-{bill_date.isoformat()}.xlsx"
    return Response(
        data,
        media_type=XLSX_MEDIA_TYPE,
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )

"""HTTP routes of the payments domain: channel settings (merchant accounts)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from selfmart.deps import SessionDep
from selfmart.errors import error_responses
from selfmart.iam.actor import Actor
from selfmart.iam.dependencies import CurrentActor, require
from selfmart.iam.permissions import Perm
from selfmart.models import PaymentAccount
from selfmart.payments import accounts
from selfmart.payments.schemas import (
    PaymentAccountCreate,
    PaymentAccountRead,
    PaymentAccountTest,
    PaymentAccountUpdate,
    PlatformChannel,
)

router = APIRouter(prefix="/payment-accounts", tags=["payments"])

AccountId = Annotated[int, Path(ge=1, le=2_147_483_647)]


async def _account_in_scope(
    account_id: AccountId, session: SessionDep, actor: CurrentActor
) -> PaymentAccount:
    """The path's account if the caller may see it (listed after the permission, so a caller
    without it gets 403 before anything is looked up; another store's account is a 404)."""
    return await accounts.get_account(session, account_id, actor=actor, for_update=True)


AccountInScope = Annotated[PaymentAccount, Depends(_account_in_scope)]


@router.get(
    "",
    response_model=list[PaymentAccountRead],
    operation_id="list_payment_accounts",
    responses=error_responses(401, 403),
)
async def list_payment_accounts(
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.PAYMENT_ACCOUNT_READ)],
    store_id: Annotated[
        int | None,
        Query(ge=1, le=2_147_483_647, description="this store's accounts and the chain's"),
    ] = None,
    channel: PlatformChannel | None = None,
) -> list[PaymentAccountRead]:
    return await accounts.list_accounts(session, actor=actor, store_id=store_id, channel=channel)


@router.post(
    "",
    response_model=PaymentAccountRead,
    status_code=201,
    operation_id="create_payment_account",
    responses=error_responses(401, 403, 404, 409),
)
async def create_payment_account(
    body: PaymentAccountCreate,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.PAYMENT_ACCOUNT_WRITE)],
) -> PaymentAccountRead:
    return await accounts.create_account(session, body, actor=actor)


@router.get(
    "/{account_id}",
    response_model=PaymentAccountRead,
    operation_id="get_payment_account",
    responses=error_responses(401, 403, 404),
)
async def get_payment_account(
    actor: Annotated[Actor, require(Perm.PAYMENT_ACCOUNT_READ)],
    account: AccountInScope,
) -> PaymentAccountRead:
    return accounts.read(account)


@router.patch(
    "/{account_id}",
    response_model=PaymentAccountRead,
    operation_id="update_payment_account",
    responses=error_responses(401, 403, 404, 409),
)
async def update_payment_account(
    body: PaymentAccountUpdate,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.PAYMENT_ACCOUNT_WRITE)],
    account: AccountInScope,
) -> PaymentAccountRead:
    return await accounts.update_account(session, account, body, actor=actor)


@router.post(
    "/{account_id}/test",
    response_model=PaymentAccountTest,
    operation_id="test_payment_account",
    responses=error_responses(401, 403, 404, 409),
)
async def test_payment_account(
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.PAYMENT_ACCOUNT_WRITE)],
    account: AccountInScope,
) -> PaymentAccountTest:
    """Ask the platform with the stored keys about a payment that cannot exist."""
    return await accounts.test_account(session, account, actor=actor)

"""The console's payments: every attempt listed with filters (store, channel, status, time,
amount, order), and one payment whole with its order's other attempts, every callback about
it and its refunds; scoped to the caller's stores."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.permissions import Perm
from selfmart.kit.time import utcnow
from selfmart.models import Payment
from tests.builders import auth_headers, make_role, make_store, make_user
from tests.payments.test_callbacks import _account_id, _callback_for_qr_payment, _deliver
from tests.payments.test_refund_callbacks import _refund_one_unit
from tests.payments.test_terminal_pay import pay, setup
from tests.payments.wechatpay.support import Sandbox


async def test_list_filters_and_detail(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    store, creds, order = await setup(session, wechat)
    codes = wechat.credentials()["test_auth_codes"]
    r = await pay(client, creds, order.order_no, auth_code=codes["declined"], attempt_id="C1")
    declined = r.json()
    started, call = await _callback_for_qr_payment(client, wechat, creds, order, attempt="Q1")
    r = await _deliver(client, await _account_id(session), call)
    assert r.status_code in (200, 204)
    headers = await auth_headers(session, await make_user(session, role="super_admin"))

    r = await client.get("/api/v1/payments", params={"store_id": store.id}, headers=headers)
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["total"] == 2
    assert [p["id"] for p in page["items"]] == [started["payment_id"], declined["payment_id"]]
    assert page["items"][0]["order_no"] == order.order_no
    for params, ids in (
        ({"status": "succeeded"}, [started["payment_id"]]),
        ({"status": "failed"}, [declined["payment_id"]]),
        ({"channel": "alipay"}, []),
        ({"order_no": order.order_no}, [started["payment_id"], declined["payment_id"]]),
        ({"amount_min_fen": 701}, []),
        ({"amount_max_fen": 700}, [started["payment_id"], declined["payment_id"]]),
        ({"created_from": "2100-01-01T00:00:00Z"}, []),
    ):
        r = await client.get(
            "/api/v1/payments", params={"store_id": store.id, **params}, headers=headers
        )
        assert r.status_code == 200, (params, r.text)
        assert [p["id"] for p in r.json()["items"]] == ids, params

    r = await client.get(f"/api/v1/payments/{started['payment_id']}", headers=headers)
    assert r.status_code == 200, r.text
    detail = r.json()
    assert detail["status"] == "succeeded"
    assert detail["mode"] == "qr"
    assert [a["id"] for a in detail["attempts"]] == [declined["payment_id"]]
    assert [(c["verified"], c["outcome"]) for c in detail["callbacks"]] == [(True, "applied")]
    assert detail["raw_request"]["url"].endswith("/v3/pay/transactions/native")
    secrets = wechat.credentials()
    for secret in (secrets["api_v3_key"], secrets["merchant_private_key"].splitlines()[1]):
        assert secret not in r.text

    # Another store's user sees none of it.
    other = await make_store(session)
    role = await make_role(session, [Perm.PAYMENT_READ.value])
    theirs = await auth_headers(session, await make_user(session, role=role, stores=[other]))
    r = await client.get("/api/v1/payments", headers=theirs)
    assert r.json()["total"] == 0
    r = await client.get(f"/api/v1/payments/{started['payment_id']}", headers=theirs)
    assert r.status_code == 404


async def test_the_list_is_newest_first_by_time_and_sortable(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    store, creds, order = await setup(session, wechat)
    codes = wechat.credentials()["test_auth_codes"]
    r = await pay(client, creds, order.order_no, auth_code=codes["declined"], attempt_id="C1")
    first = r.json()["payment_id"]
    r = await pay(client, creds, order.order_no, auth_code=codes["success"], attempt_id="C2")
    second = r.json()["payment_id"]
    # Recorded out of order (a backfilled attempt): time decides, not the id.
    now = utcnow()
    await session.execute(
        update(Payment).where(Payment.id == first).values(created_at=now - timedelta(minutes=1))
    )
    await session.execute(
        update(Payment)
        .where(Payment.id == second)
        .values(created_at=now - timedelta(hours=1), amount_fen=1)
    )
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    for sort, ids in (
        (None, [first, second]),
        ("-created_at", [first, second]),
        ("created_at", [second, first]),
        ("amount_fen", [second, first]),
        ("-amount_fen", [first, second]),
    ):
        params: dict[str, str | int] = {"store_id": store.id}
        if sort:
            params["sort"] = sort
        r = await client.get("/api/v1/payments", params=params, headers=headers)
        assert r.status_code == 200, r.text
        assert [p["id"] for p in r.json()["items"]] == ids, sort
    r = await client.get("/api/v1/payments", params={"sort": "status"}, headers=headers)
    assert r.status_code == 422, r.text
    assert "sort" in r.text


async def test_the_detail_lists_the_payments_refunds(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    _, creds, order = await setup(session, wechat)
    codes = wechat.credentials()["test_auth_codes"]
    r = await pay(client, creds, order.order_no, auth_code=codes["success"], attempt_id="C1")
    assert r.json()["state"] == "paid", r.text
    payment_id = r.json()["payment_id"]
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    refund = await _refund_one_unit(client, session, order, headers)  # one cola of the two
    assert refund.payment_id == payment_id

    r = await client.get(f"/api/v1/payments/{payment_id}", headers=headers)
    assert r.status_code == 200, r.text
    [shown] = r.json()["refunds"]
    assert (shown["id"], shown["amount_fen"], shown["reason"], shown["status"]) == (
        refund.id, 350, "顾客退货", refund.status,
    )  # fmt: skip
    assert shown["out_refund_no"] == refund.out_refund_no
    assert shown["out_refund_no"]
    assert shown["actor_name"] == refund.actor_name
    assert shown["raw_request"]["url"].endswith("/v3/refund/domestic/refunds")
    secrets = wechat.credentials()
    for secret in (secrets["api_v3_key"], secrets["merchant_private_key"].splitlines()[1]):
        assert secret not in r.text

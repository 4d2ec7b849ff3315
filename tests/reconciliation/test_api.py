"""The console's reconciliation API: set a fee rate, rerun a day, list runs and differences
with filters, drill into one (our payment and order beside the bill line), resolve it with a
note (audited, kept across a rerun, not twice); bad input names the field; the daily job."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.iam.actor import job_actor
from selfmart.jobs import runtime
from selfmart.jobs.registry import JOBS, Cron
from selfmart.kit.time import utcnow
from selfmart.models import AuditLog, ReconciliationRun
from selfmart.reconciliation import tasks
from selfmart.reconciliation.bills import BEIJING
from tests.builders import auth_headers, make_store, make_user
from tests.payments.builders import make_payment_account, sandbox_account
from tests.payments.wechatpay.support import Sandbox
from tests.reconciliation.test_reconcile import open_shop, today
from tests.support import settings_for

ACTOR = job_actor("test.reconcile")
API = "/api/v1/reconciliation"


async def test_rerun_list_drill_down_and_resolve(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    shop = await open_shop(session, wechat)
    good = await shop.paid(client, session, 1)
    off = await shop.paid(client, session, 2)
    off.amount_fen = 800
    await session.flush()
    headers = await auth_headers(session, await make_user(session, role="super_admin"))

    r = await client.put(
        f"{API}/fee-rates/{shop.account.id}", json={"rate_bp": 60}, headers=headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["rate_bp"] == 60
    r = await client.get(f"{API}/fee-rates", headers=headers)
    assert [(x["account_id"], x["rate_bp"]) for x in r.json()] == [(shop.account.id, 60)]

    body = {"account_id": shop.account.id, "bill_date": today().isoformat()}
    r = await client.post(f"{API}/runs", json=body, headers=headers)
    assert r.status_code == 200, r.text
    run = r.json()
    assert (run["status"], run["line_count"], run["difference_count"]) == ("reconciled", 2, 1)
    assert run["trailer_gross_fen"] == run["bill_gross_fen"] == 350 + 700

    r = await client.get(f"{API}/runs", params={"date_from": today().isoformat()}, headers=headers)
    assert [x["id"] for x in r.json()] == [run["id"]]
    r = await client.get(f"{API}/runs", params={"status": "refused"}, headers=headers)
    assert r.json() == []

    r = await client.get(f"{API}/differences", params={"run_id": run["id"]}, headers=headers)
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["total"] == 1
    (diff,) = page["items"]
    assert (diff["difference"], diff["state"], diff["out_trade_no"]) == (
        "amount_differs",
        "open",
        off.out_trade_no,
    )
    for params, total in (
        ({"difference": "amount_differs"}, 1),
        ({"difference": "ours_only"}, 0),
        ({"state": "resolved"}, 0),
        ({"channel": "alipay"}, 0),
        ({"date_to": (today() - timedelta(days=1)).isoformat()}, 0),
    ):
        r = await client.get(f"{API}/differences", params=params, headers=headers)
        assert r.json()["total"] == total, params

    r = await client.get(f"{API}/differences/{diff['id']}", headers=headers)
    assert r.status_code == 200, r.text
    detail = r.json()
    assert detail["line"]["商户订单号"] == off.out_trade_no
    assert detail["line"]["订单金额"] == "7.00"
    assert (detail["our_amount_fen"], detail["bill_amount_fen"]) == (800, 700)
    assert detail["payment"]["id"] == off.id
    assert detail["payment"]["out_trade_no"] == off.out_trade_no
    assert detail["order"]["id"] == off.order_id
    assert detail["order"]["total_fen"] == 700

    r = await client.post(
        f"{API}/differences/{diff['id']}/resolve",
        json={"resolution": "accept", "note": "我们记错了金额，平台为准"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["resolution"]) == ("resolved", "accept")
    again = await client.post(
        f"{API}/differences/{diff['id']}/resolve",
        json={"resolution": "refund_customer", "note": "again"},
        headers=headers,
    )
    assert again.status_code == 409, again.text
    entry = await session.scalar(
        select(AuditLog).where(AuditLog.action == "reconciliation.resolve")
    )
    assert entry is not None
    assert entry.entity_id == str(diff["id"])
    assert entry.note == "我们记错了金额，平台为准"

    # A rerun replaces the result but keeps the decision on the same difference.
    r = await client.post(f"{API}/runs", json=body, headers=headers)
    assert r.json()["attempts"] == 2
    r = await client.get(f"{API}/differences", params={"run_id": run["id"]}, headers=headers)
    (kept,) = r.json()["items"]
    assert (kept["state"], kept["resolution"], kept["note"]) == (
        "resolved",
        "accept",
        "我们记错了金额，平台为准",
    )
    assert good.out_trade_no not in {x["out_trade_no"] for x in r.json()["items"]}


async def test_bad_input_names_the_field(client: httpx.AsyncClient, session: AsyncSession) -> None:
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.post(
        f"{API}/runs", json={"account_id": 1, "bill_date": "2026-13-01"}, headers=headers
    )
    assert r.status_code == 422
    assert [d["field"] for d in r.json()["details"]] == ["body.bill_date"]
    r = await client.post(
        f"{API}/runs", json={"account_id": 999_999, "bill_date": "2026-12-01"}, headers=headers
    )
    assert r.status_code == 404, r.text
    account = await make_payment_account(session, None)
    r = await client.put(f"{API}/fee-rates/{account.id}", json={"rate_bp": 10_001}, headers=headers)
    assert r.status_code == 422
    assert [d["field"] for d in r.json()["details"]] == ["body.rate_bp"]
    r = await client.get(f"{API}/differences", params={"difference": "bogus"}, headers=headers)
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "query.difference"


async def test_the_daily_job_reconciles_each_account(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_url: str,
    wechat: Sandbox,
) -> None:
    shop = await open_shop(session, wechat)
    await shop.paid(client, session, 1)
    async with runtime.running(settings_for(db_url), sessionmaker):
        async with runtime.sessionmaker()() as s:
            results = await tasks.reconcile_accounts(s, today(), actor=job_actor(tasks.DAILY))
    assert results == [(shop.account.id, "reconciled", None)]
    found = {
        r.kind: r
        for r in await session.scalars(
            select(ReconciliationRun).where(ReconciliationRun.account_id == shop.account.id)
        )
    }
    run = found["trade"]
    assert (run.line_count, run.difference_count, run.actor_name) == (1, 0, tasks.DAILY)
    # WeChat Pay's fund-flow bill comes with it: the payment's income and its fee
    flow = found["fundflow"]
    assert (flow.status, flow.line_count, flow.bill_gross_fen) == ("reconciled", 2, 350)


async def test_a_store_admin_sees_only_their_stores_accounts(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    """A chain account's bill holds every store's money: a user of some stores neither sees
    nor reruns it; their own store's account they do."""
    shop = await open_shop(session, wechat)  # a chain account
    await shop.paid(client, session, 1)
    own = await make_payment_account(session, shop.store, "card")
    root = await auth_headers(session, await make_user(session, role="super_admin"))
    body = {"account_id": shop.account.id, "bill_date": today().isoformat()}
    assert (await client.post(f"{API}/runs", json=body, headers=root)).status_code == 200
    admin = await auth_headers(session, await make_user(session, role="admin", stores=[shop.store]))

    r = await client.get(f"{API}/runs", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json() == []
    assert (await client.get(f"{API}/differences", headers=admin)).json()["total"] == 0
    assert (await client.get(f"{API}/totals", headers=admin)).json() == []
    r = await client.post(f"{API}/runs", json=body, headers=admin)
    assert r.status_code == 404, r.text
    r = await client.put(f"{API}/fee-rates/{shop.account.id}", json={"rate_bp": 60}, headers=admin)
    assert r.status_code == 404, r.text
    r = await client.put(f"{API}/fee-rates/{own.id}", json={"rate_bp": 55}, headers=admin)
    assert r.status_code == 200, r.text
    r = await client.get(f"{API}/fee-rates", headers=admin)
    assert [(x["account_id"], x["rate_bp"]) for x in r.json()] == [(own.id, 55)]


async def test_the_scheduled_job_reconciles_yesterday(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_url: str,
    wechat: Sandbox,
) -> None:
    account = await sandbox_account(session, None, wechat.credentials())
    registered = JOBS[tasks.DAILY]
    assert [s.expr for s in registered.schedules if isinstance(s, Cron)] == ["30 10 * * *"]
    async with runtime.running(settings_for(db_url), sessionmaker):
        assert await tasks.daily() == 1
    run = await session.scalar(
        select(ReconciliationRun).where(ReconciliationRun.account_id == account.id)
    )
    assert run is not None
    assert (run.bill_date, run.status) == (today() - timedelta(days=1), "no_bill")


async def test_the_daily_job_catches_up_the_week_it_missed(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_url: str,
    wechat: Sandbox,
) -> None:
    """The server was down for days (or the job failed): the next morning's run reconciles the
    bills of the week before yesterday that no run covers, but not days before the account was
    set up here, and none twice."""
    old = await sandbox_account(session, None, wechat.credentials())
    old.created_at = utcnow() - timedelta(days=30)
    new = await sandbox_account(session, await make_store(session), wechat.credentials())
    new.created_at = utcnow() - timedelta(days=3)
    await session.flush()
    yesterday = today() - timedelta(days=1)
    # one day already reconciled (by a person): left as it is
    async with runtime.running(settings_for(db_url), sessionmaker):
        async with sessionmaker() as s:
            await tasks.reconcile_accounts(s, yesterday - timedelta(days=2), actor=ACTOR)
        assert await tasks.daily() == 2
        assert await tasks.daily() == 2  # a second run: yesterday again, nothing caught up twice

    async def days(account_id: int) -> list[tuple[date, str, int]]:
        rows = await session.execute(
            select(ReconciliationRun.bill_date, ReconciliationRun.kind, ReconciliationRun.attempts)
            .where(ReconciliationRun.account_id == account_id)
            .order_by(ReconciliationRun.bill_date, ReconciliationRun.kind)
        )
        return [(d, k, n) for d, k, n in rows.all()]

    def week(first: date, attempts: dict[date, int]) -> list[tuple[date, str, int]]:
        out = []
        for n in range((yesterday - first).days + 1):
            day = first + timedelta(days=n)
            out += [(day, "fundflow", attempts.get(day, 1)), (day, "trade", attempts.get(day, 1))]
        return out

    twice = {yesterday: 2}  # the day a person ran: once, not again
    assert await days(old.id) == week(yesterday - timedelta(days=tasks.CATCH_UP_DAYS), twice)
    opened = new.created_at.astimezone(BEIJING).date()
    assert await days(new.id) == week(opened, twice)

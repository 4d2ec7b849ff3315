"""Reconciliation end to end against the WeChat Pay sandbox: orders paid (and refunded)
through it by a terminal, its trade bill downloaded and matched into each class exactly; a
payment across midnight held and matched in the next day's bill; the same bill twice doubles
nothing; a day with no bill, a truncated file and a broken line are recorded as such."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.iam.actor import job_actor
from selfmart.jobs import runtime
from selfmart.kit.time import utcnow
from selfmart.models import (
    AuditLog,
    Payment,
    PaymentAccount,
    ReconciliationItem,
    ReconciliationRun,
    Refund,
    Store,
)
from selfmart.payments import accounts, tasks
from selfmart.payments.platform import PayRequest, PlatformAccount
from selfmart.payments.wechatpay.account import WechatPayAccount
from selfmart.reconciliation import fees, reports, runs, settled
from selfmart.reconciliation.bills import BEIJING
from selfmart.sandbox.wechatpay.state import STATE
from tests.builders import auth_headers, make_store, make_user
from tests.orders.builders import make_order, make_product
from tests.payments.builders import sandbox_account
from tests.payments.test_terminal_pay import pay
from tests.payments.wechatpay.support import Sandbox
from tests.support import settings_for
from tests.terminals.builders import Credentials, make_active_terminal

ACTOR = job_actor("test.reconcile")


def today() -> date:
    return utcnow().astimezone(BEIJING).date()


@dataclass
class Shop:
    store: Store
    creds: Credentials
    account: PaymentAccount
    product: Any
    wechat: Sandbox
    count: int = 0

    async def paid(
        self, client: httpx.AsyncClient, session: AsyncSession, quantity: int = 1
    ) -> Payment:
        """An order of `quantity` colas (350 fen each) paid by payment code at the sandbox."""
        self.count += 1
        order = await make_order(
            session, self.store, [(self.product, quantity)], terminal=self.creds.terminal
        )
        codes = self.wechat.credentials()["test_auth_codes"]
        r = await pay(
            client, self.creds, order.order_no, attempt_id=f"A{self.count}",
            auth_code=codes["success"],
        )  # fmt: skip
        assert r.status_code == 201, r.text
        assert r.json()["state"] == "paid"
        payment = await session.get(Payment, r.json()["payment_id"])
        assert payment is not None
        await session.refresh(payment)
        return payment

    @staticmethod
    async def refund_whole(
        client: httpx.AsyncClient, headers: dict[str, str], *payments: Payment
    ) -> None:
        """Each payment's order refunded in full from the console (the refund goes to the
        sandbox, which settles it a moment later)."""
        for payment in payments:
            r = await client.post(
                f"/api/v1/orders/{payment.order_id}/refunds",
                json={"full": True, "reason": "顾客退货"},
                headers=headers,
            )
            assert r.status_code in (200, 201), r.text
        await asyncio.sleep(0.1)  # the sandbox settles refunds (its delay over the time scale)

    async def paid_before_midnight(
        self, client: httpx.AsyncClient, session: AsyncSession, day: date
    ) -> Payment:
        """A cola paid across the midnight before `day`: ours at 23:59:58 the day before, the
        platform's at 00:00:02 (so in its bill of `day`)."""
        payment = await self.paid(client, session, 1)
        eve = day - timedelta(days=1)
        payment.succeeded_at = datetime(eve.year, eve.month, eve.day, 23, 59, 58, tzinfo=BEIJING)
        await session.flush()
        assert payment.out_trade_no is not None
        STATE.transactions[payment.out_trade_no].success_time = datetime(
            day.year, day.month, day.day, 0, 0, 2, tzinfo=BEIJING
        )
        return payment


async def open_shop(session: AsyncSession, wechat: Sandbox) -> Shop:
    store = await make_store(session)
    cola = await make_product(session, stores=[store], price_fen=350)
    creds = await make_active_terminal(session, store)
    account = await sandbox_account(
        session, None, wechat.credentials(), notify_url=f"{wechat.receiver.url}/notify"
    )
    return Shop(store, creds, account, cola, wechat)


async def items_of(session: AsyncSession, run: ReconciliationRun) -> list[ReconciliationItem]:
    rows = await session.scalars(
        select(ReconciliationItem)
        .where(ReconciliationItem.run_id == run.id)
        .order_by(ReconciliationItem.id)
    )
    return list(rows.all())


async def run_actions(session: AsyncSession) -> list[str]:
    """The audited actions on reconciliation runs, in order."""
    rows = await session.scalars(
        select(AuditLog.action)
        .where(AuditLog.entity_type == "reconciliation_run")
        .order_by(AuditLog.id)
    )
    return list(rows.all())


def classes(items: list[ReconciliationItem]) -> dict[str, list[str | None]]:
    out: dict[str, list[str | None]] = {}
    for i in items:
        out.setdefault(i.difference, []).append(i.out_trade_no)
    return {k: sorted(v, key=str) for k, v in out.items()}


async def test_each_class_exactly_with_totals_beside_the_trailer(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_url: str,
    wechat: Sandbox,
) -> None:
    shop = await open_shop(session, wechat)
    matched = await shop.paid(client, session, 2)  # 700
    amount = await shop.paid(client, session, 1)  # 350 there, we say 450
    status = await shop.paid(client, session, 1)  # paid there, failed here
    ours_only = await shop.paid(client, session, 3)  # the platform forgets it
    refunded = await shop.paid(client, session, 2)  # paid 700, refunded 700, matched
    refund_pending = await shop.paid(client, session, 1)  # refunded there, pending here
    amount.amount_fen = 450
    status.status, status.failure_reason = "failed", "declined"
    await session.flush()
    assert ours_only.out_trade_no is not None
    del STATE.transactions[ours_only.out_trade_no]
    # Paid at the platform with our account but never recorded by us.
    stranger = WechatPayAccount(
        accounts.config_of(shop.account), http=httpx.AsyncClient(timeout=10)
    )
    answer = await stranger.pay(
        PayRequest(
            out_trade_no="STRANGER0001",
            amount_fen=990,
            description="?",
            mode="code",
            auth_code=wechat.credentials()["test_auth_codes"]["success"],
        )
    )
    assert answer.status == "succeeded"

    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    await shop.refund_whole(client, headers, refunded, refund_pending)
    pending = await session.scalar(select(Refund).where(Refund.payment_id == refund_pending.id))
    assert pending is not None
    async with runtime.running(settings_for(db_url), sessionmaker):
        # the refund job settles both; then ours of one is put back to pending
        assert await tasks.query_refunds(job_actor(tasks.QUERY_REFUNDS)) == 2
    await session.refresh(pending)
    assert pending.status == "succeeded"
    pending.status, pending.completed_at = "pending", None
    await session.flush()

    await fees.set_rate(session, shop.account, 60, actor=ACTOR)  # the sandbox's 0.60%
    run = await runs.reconcile(session, shop.account, today(), actor=ACTOR)
    assert (run.status, run.last_error) == ("reconciled", None)
    items = await items_of(session, run)
    assert classes(items) == {
        "matched": sorted(
            [matched.out_trade_no, refunded.out_trade_no, refunded.out_trade_no,
             refund_pending.out_trade_no],
            key=str,
        ),
        "amount_differs": [amount.out_trade_no],
        "status_differs": [status.out_trade_no],
        "platform_only": ["STRANGER0001"],
        "ours_only": [ours_only.out_trade_no],
        "refund_differs": [refund_pending.out_trade_no],
    }  # fmt: skip
    ours = next(i for i in items if i.difference == "ours_only")
    assert (ours.payment_id, ours.our_amount_fen, ours.state) == (ours_only.id, 1050, "pending")
    diff = next(i for i in items if i.difference == "amount_differs")
    assert (diff.our_amount_fen, diff.bill_amount_fen, diff.state) == (450, 350, "open")
    refund_line = next(i for i in items if i.difference == "refund_differs")
    assert (refund_line.kind, refund_line.our_status, refund_line.bill_status) == (
        "refund",
        "pending",
        "SUCCESS",
    )
    assert run.difference_count == 5

    # Totals: the bill's lines added up, the platform's trailer beside them, and ours.
    paid_there = 700 + 350 + 350 + 700 + 350 + 990
    fee = sum((x * 6 + 500) // 1000 for x in (700, 350, 350, 700, 350, 990))
    assert (run.bill_gross_fen, run.trailer_gross_fen) == (paid_there, paid_there)
    assert (run.bill_refund_fen, run.trailer_refund_fen) == (1050, 1050)
    refund_fee = (700 * 6 + 500) // 1000 + (350 * 6 + 500) // 1000
    assert (run.bill_fee_fen, run.trailer_fee_fen) == (fee - refund_fee, fee - refund_fee)
    assert run.expected_fee_fen == fee - refund_fee
    assert run.trailer_count == run.line_count == 8  # 6 payments, 2 refunds
    # ours: matched 700 + 700 + 350, amount 450, ours-only 1050 (status-differs is failed)
    assert run.our_gross_fen == 700 + 700 + 350 + 450 + 1050
    assert run.our_refund_fen == 700

    r = await client.get(
        "/api/v1/reconciliation/totals",
        params={"date_from": today().isoformat()},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    (day,) = r.json()
    assert (day["channel"], day["bill_gross_fen"], day["trailer_gross_fen"]) == (
        "wechat",
        paid_there,
        paid_there,
    )
    assert day["bill_net_fen"] == paid_there - 1050 - (fee - refund_fee)
    assert day["differences"] == 5


async def test_fee_differs_from_the_configured_rate(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    shop = await open_shop(session, wechat)
    big = await shop.paid(client, session, 10)  # 3500: 21 fen at 0.6%, 18 at 0.5%
    small = await shop.paid(client, session, 1)  # 350: 2 fen at either rate
    await fees.set_rate(session, shop.account, 50, actor=ACTOR)
    run = await runs.reconcile(session, shop.account, today(), actor=ACTOR)
    items = await items_of(session, run)
    assert classes(items) == {
        "fee_differs": [big.out_trade_no],
        "matched": [small.out_trade_no],
    }
    (fee,) = [i for i in items if i.difference == "fee_differs"]
    assert (fee.bill_fee_fen, fee.expected_fee_fen) == (21, 18)

    # No rate configured: fees are not judged.
    await fees.set_rate(session, shop.account, 60, actor=ACTOR)
    run = await runs.reconcile(session, shop.account, today(), actor=ACTOR)
    assert classes(await items_of(session, run)) == {
        "matched": sorted([big.out_trade_no, small.out_trade_no], key=str)
    }


async def test_the_same_bill_twice_doubles_nothing(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    shop = await open_shop(session, wechat)
    await shop.paid(client, session, 1)
    stray = await shop.paid(client, session, 2)
    stray.amount_fen = 1
    await session.flush()
    first = await runs.reconcile(session, shop.account, today(), actor=ACTOR)
    first_items = [(i.difference, i.out_trade_no) for i in await items_of(session, first)]
    second = await runs.reconcile(session, shop.account, today(), actor=ACTOR)
    assert second.id == first.id
    assert second.attempts == 2
    assert sorted(
        [(i.difference, i.out_trade_no) for i in await items_of(session, second)], key=str
    ) == sorted(first_items, key=str)
    count = await session.scalar(
        select(func.count())
        .select_from(ReconciliationRun)
        .where(ReconciliationRun.account_id == shop.account.id)
    )
    assert count == 1
    assert await session.scalar(select(func.count()).select_from(ReconciliationItem)) == 2
    assert (second.bill_gross_fen, second.difference_count) == (350 + 700, 1)


async def test_a_payment_across_midnight_is_held_then_matched_next_day(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    shop = await open_shop(session, wechat)
    day = today()
    eve = day - timedelta(days=1)
    # Ours: 23:59:58 the day before; the platform's: 00:00:02 today (its bill of today).
    late = await shop.paid_before_midnight(client, session, day)
    early = await shop.paid(client, session, 2)

    before = await runs.reconcile(session, shop.account, eve, actor=ACTOR)
    assert before.status == "no_bill"  # the platform had nothing that day
    (held,) = await items_of(session, before)
    assert (held.difference, held.state, held.payment_id) == ("ours_only", "pending", late.id)

    run = await runs.reconcile(session, shop.account, day, actor=ACTOR)
    assert classes(await items_of(session, run)) == {
        "matched": sorted([late.out_trade_no, early.out_trade_no], key=str)
    }
    await session.refresh(held)
    await session.refresh(before)
    assert (held.state, held.detail) == ("carried", f"in the bill of {day.isoformat()}")
    assert before.difference_count == 0

    # The day before again: the bill of today accounts for it, so it is not reported again.
    again = await runs.reconcile(session, shop.account, eve, actor=ACTOR)
    assert await items_of(session, again) == []
    open_ = await session.scalar(
        select(func.count())
        .select_from(ReconciliationItem)
        .where(ReconciliationItem.state.in_(("open", "pending")))
    )
    assert open_ == 0


async def test_ours_only_opens_once_the_next_day_is_in_without_it(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    shop = await open_shop(session, wechat)
    day = today()
    eve = day - timedelta(days=1)
    lost = await shop.paid(client, session, 1)
    lost.succeeded_at = datetime(eve.year, eve.month, eve.day, 23, 59, 59, tzinfo=BEIJING)
    await session.flush()
    assert lost.out_trade_no is not None
    del STATE.transactions[lost.out_trade_no]
    await shop.paid(client, session, 1)
    before = await runs.reconcile(session, shop.account, eve, actor=ACTOR)
    (held,) = await items_of(session, before)
    assert held.state == "pending"
    await runs.reconcile(session, shop.account, day, actor=ACTOR)
    await session.refresh(held)
    assert (held.difference, held.state) == ("ours_only", "open")


async def test_a_day_without_trade_is_no_bill(session: AsyncSession, wechat: Sandbox) -> None:
    store = await make_store(session)
    account = await sandbox_account(session, store, wechat.credentials())
    run = await runs.reconcile(session, account, today() - timedelta(days=3), actor=ACTOR)
    assert (run.status, run.line_count, run.difference_count, run.last_error) == (
        "no_bill",
        0,
        0,
        None,
    )
    assert await items_of(session, run) == []


class Truncating(httpx.AsyncHTTPTransport):
    """The network cuts the bill file's download short."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if "/v3/billdownload/file" not in request.url.path:
            return response
        body = await response.aread()
        return httpx.Response(response.status_code, content=body[: len(body) // 2])


async def test_a_truncated_file_is_refused_and_recorded_keeping_the_last_result(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    shop = await open_shop(session, wechat)
    await shop.paid(client, session, 1)

    def cut(account: PaymentAccount) -> PlatformAccount:
        return WechatPayAccount(
            accounts.config_of(account), http=httpx.AsyncClient(transport=Truncating())
        )

    first = await runs.reconcile(session, shop.account, today(), actor=ACTOR, opener=cut)
    assert first.status == "refused"
    assert first.last_error is not None
    assert "bad_answer" in first.last_error
    assert await items_of(session, first) == []

    good = await runs.reconcile(session, shop.account, today(), actor=ACTOR)
    assert (good.status, good.last_error, good.line_count) == ("reconciled", None, 1)
    again = await runs.reconcile(session, shop.account, today(), actor=ACTOR, opener=cut)
    assert again.status == "reconciled"  # the good result stands
    assert again.last_error is not None
    assert len(await items_of(session, again)) == 1
    assert await run_actions(session) == [
        "reconciliation.refuse", "reconciliation.run", "reconciliation.refuse",
    ]  # fmt: skip


async def test_a_broken_line_is_refused_naming_the_line(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    shop = await open_shop(session, wechat)
    await shop.paid(client, session, 1)
    broken = await shop.paid(client, session, 1)
    assert broken.out_trade_no is not None
    # A line break inside a value splits the record over two lines of the file.
    STATE.transactions[broken.out_trade_no].description = "可乐\r\n两瓶"
    run = await runs.reconcile(session, shop.account, today(), actor=ACTOR)
    assert run.status == "refused"
    assert run.last_error is not None
    assert "line 3:" in run.last_error, run.last_error
    assert await items_of(session, run) == []


async def test_another_merchants_bill_is_refused(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    shop = await open_shop(session, wechat)
    paid = await shop.paid(client, session, 1)
    assert paid.out_trade_no is not None
    STATE.transactions[paid.out_trade_no].mchid = "1230000109"
    run = await runs.reconcile(session, shop.account, today(), actor=ACTOR)
    assert run.status == "refused"
    assert run.last_error == "line 2: merchant '1230000109' is not this account's"


async def test_a_bill_that_arrives_late_replaces_no_bill(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    shop = await open_shop(session, wechat)
    early = await runs.reconcile(session, shop.account, today(), actor=ACTOR)
    assert (early.status, early.line_count) == ("no_bill", 0)
    paid = await shop.paid(client, session, 1)
    late = await runs.reconcile(session, shop.account, today(), actor=ACTOR)
    assert late.id == early.id
    assert (late.status, late.line_count, late.difference_count) == ("reconciled", 1, 0)
    assert classes(await items_of(session, late)) == {"matched": [paid.out_trade_no]}


async def test_a_bill_read_in_chunks_and_a_later_broken_line_keeps_the_last_result(
    client: httpx.AsyncClient,
    session: AsyncSession,
    wechat: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One line at a time: every line is its own chunk, ours only come a page of one at a time.
    monkeypatch.setattr(runs, "LINES", 1)
    shop = await open_shop(session, wechat)
    differs = await shop.paid(client, session, 1)
    matched = await shop.paid(client, session, 2)
    forgotten = [await shop.paid(client, session, 3), await shop.paid(client, session, 1)]
    for payment in forgotten:
        assert payment.out_trade_no is not None
        del STATE.transactions[payment.out_trade_no]
    differs.amount_fen = 999
    await session.flush()

    run = await runs.reconcile(session, shop.account, today(), actor=ACTOR)
    assert (run.status, run.line_count, run.difference_count) == ("reconciled", 2, 3)
    items = await items_of(session, run)
    assert classes(items) == {
        "matched": [matched.out_trade_no],
        "amount_differs": [differs.out_trade_no],
        "ours_only": sorted([p.out_trade_no for p in forgotten], key=str),
    }
    assert run.our_gross_fen == 999 + 700 + 1050 + 350
    assert (run.bill_gross_fen, run.trailer_gross_fen) == (350 + 700, 350 + 700)
    # The line as written is kept for a difference's drill-down, not for a matched line.
    by_class = {i.difference: i for i in items}
    assert by_class["amount_differs"].line["商户订单号"] == differs.out_trade_no
    assert by_class["matched"].line == {}

    # The second line breaks: the first, already written in its own chunk, is undone with it.
    assert matched.out_trade_no is not None
    STATE.transactions[matched.out_trade_no].description = "可乐\r\n两瓶"
    again = await runs.reconcile(session, shop.account, today(), actor=ACTOR)
    assert again.status == "reconciled"
    assert again.last_error is not None
    assert "line 3:" in again.last_error, again.last_error
    assert (again.line_count, again.difference_count) == (2, 3)
    assert [i.id for i in await items_of(session, again)] == [i.id for i in items]


class Altered:
    """The platform's bill file, downloaded (and hash-checked) as sent, then altered by `edit`
    before it is read: a file changed on disk, or by whatever handled it on the way."""

    def __init__(self, account: PaymentAccount, edit: Any) -> None:
        self.real, self.edit = accounts.open_platform(account), edit

    async def download_bill(self, bill_date: date, kind: Any = "trade") -> bytes | None:
        data = await self.real.download_bill(bill_date, kind)
        return None if data is None else self.edit(data)


def without_second_record(data: bytes) -> bytes:
    """The bill with its second record line dropped, the totals kept."""
    lines = data.split(b"\r\n")
    return b"\r\n".join(lines[:2] + lines[3:])


async def test_lines_that_do_not_add_up_to_the_trailer_are_refused_keeping_the_last_result(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    shop = await open_shop(session, wechat)
    await shop.paid(client, session, 1)
    await shop.paid(client, session, 2)

    def altered(account: PaymentAccount) -> PlatformAccount:
        return cast(PlatformAccount, Altered(account, without_second_record))

    # The first reconciliation of the day, refused: recorded, and no line written at all.
    first = await runs.reconcile(session, shop.account, today(), actor=ACTOR, opener=altered)
    assert (first.status, first.line_count) == ("refused", 0)
    # Whichever of the two lines was dropped: the totals name both figures, expected and found.
    assert first.last_error in {
        "the lines do not add up to the bill's own totals: lines 2 expected, 1 found; "
        f"gross 1050 fen expected, {gross} fen found; fees 6 fen expected, {fee} fen found"
        for gross, fee in ((350, 2), (700, 4))
    }, first.last_error
    assert await items_of(session, first) == []

    good = await runs.reconcile(session, shop.account, today(), actor=ACTOR)
    assert (good.status, good.line_count, good.difference_count) == ("reconciled", 2, 0)
    kept = [i.id for i in await items_of(session, good)]
    again = await runs.reconcile(session, shop.account, today(), actor=ACTOR, opener=altered)
    assert again.status == "reconciled"  # the last good result stands
    assert again.last_error is not None
    assert "lines 2 expected, 1 found" in again.last_error
    assert [i.id for i in await items_of(session, again)] == kept
    assert (again.line_count, again.bill_gross_fen, again.trailer_gross_fen) == (2, 1050, 1050)
    assert await run_actions(session) == [
        "reconciliation.refuse", "reconciliation.run", "reconciliation.refuse",
    ]  # fmt: skip


async def test_the_same_line_twice_is_a_duplicate_line_counted_once(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    shop = await open_shop(session, wechat)
    once = await shop.paid(client, session, 1)
    twice = await shop.paid(client, session, 2)
    assert twice.out_trade_no is not None
    # The platform writes the same payment twice, and counts both in its totals.
    original = STATE.transactions[twice.out_trade_no]
    STATE.transactions["again"] = replace(original)

    run = await runs.reconcile(session, shop.account, today(), actor=ACTOR)
    assert (run.status, run.last_error) == ("reconciled", None)
    items = await items_of(session, run)
    assert classes(items) == {
        "matched": sorted([once.out_trade_no, twice.out_trade_no], key=str),
        "duplicate_line": [twice.out_trade_no],
    }
    dup = next(i for i in items if i.difference == "duplicate_line")
    first = next(i for i in items if i.out_trade_no == twice.out_trade_no and i.id != dup.id)
    assert first.line_no is not None
    assert dup.detail == f"the same payment as line {first.line_no}; not counted again"
    assert (dup.state, dup.payment_id, dup.line_no) == ("open", twice.id, first.line_no + 1)
    # The trailer counts the line twice; our figures count it once, beside it.
    assert (run.trailer_count, run.trailer_gross_fen) == (3, 350 + 700 + 700)
    assert (run.line_count, run.difference_count) == (2, 1)
    assert (run.bill_gross_fen, run.our_gross_fen) == (350 + 700, 350 + 700)
    assert run.bill_fee_fen == 2 + 4
    # Nor does the fee report or store settlement count it twice.
    [fee_row] = await reports.fee_report(session, actor=ACTOR, date_from=today())
    assert (fee_row["lines"], fee_row["gross_fen"], fee_row["fee_fen"]) == (2, 1050, 6)
    [billed] = await settled.billed_sums(session, date_from=today(), date_to=today())
    assert (billed.lines, billed.amount_fen, billed.fee_fen) == (2, 1050, 6)

    # A rerun keeps a person's decision on it, and still counts it once.
    dup.state, dup.resolution, dup.note = "resolved", "accept", "the platform's double line"
    await session.flush()
    again = await runs.reconcile(session, shop.account, today(), actor=ACTOR)
    assert (again.line_count, again.difference_count, again.bill_gross_fen) == (2, 1, 1050)
    kept = [i for i in await items_of(session, again) if i.difference == "duplicate_line"]
    assert [(i.state, i.note) for i in kept] == [("resolved", "the platform's double line")]


async def test_a_duplicate_is_the_later_line_when_the_first_is_a_difference(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    """The first of a repeated payment is judged one by one (its amount differs) and the
    repeat matches (on SQLite, matched in SQL and written first): the later line is still the
    duplicate, naming the earlier."""
    shop = await open_shop(session, wechat)
    once = await shop.paid(client, session, 1)
    twice = await shop.paid(client, session, 2)
    assert twice.out_trade_no is not None
    original = STATE.transactions[twice.out_trade_no]
    STATE.transactions[twice.out_trade_no] = replace(original, total=original.total + 1)
    STATE.transactions["again"] = original

    run = await runs.reconcile(session, shop.account, today(), actor=ACTOR)
    assert (run.status, run.last_error) == ("reconciled", None)
    items = await items_of(session, run)
    assert classes(items) == {
        "matched": [once.out_trade_no],
        "amount_differs": [twice.out_trade_no],
        "duplicate_line": [twice.out_trade_no],
    }
    by_class = {i.difference: i for i in items}
    first, dup = by_class["amount_differs"], by_class["duplicate_line"]
    assert first.line_no is not None
    assert (first.bill_amount_fen, dup.line_no) == (701, first.line_no + 1)
    assert dup.detail == f"the same payment as line {first.line_no}; not counted again"
    assert (run.line_count, run.difference_count) == (2, 2)
    assert (run.bill_gross_fen, run.trailer_gross_fen) == (350 + 701, 350 + 701 + 700)


def _written(items: list[ReconciliationItem]) -> list[dict[str, Any]]:
    """Each item as written, every column but its id, in line order."""
    columns = [c.key for c in ReconciliationItem.__table__.columns if c.key != "id"]
    rows = [{c: getattr(i, c) for c in columns} for i in items]
    return sorted(rows, key=lambda r: (r["line_no"] is None, r["line_no"] or 0, str(r)))


@pytest.mark.parametrize("rate", [None, 60, 50])
async def test_matching_in_sql_writes_what_judging_each_line_writes(
    client: httpx.AsyncClient,
    session: AsyncSession,
    wechat: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    rate: int | None,
) -> None:
    """A bill of every class reconciled as it is (on SQLite the matched payment lines are
    matched in SQL) and again with every line looked up and judged one by one: the same items
    and the same totals, with or without a fee rate (at 0.5% the large payment's fee differs)."""
    shop = await open_shop(session, wechat)
    await shop.paid(client, session, 2)
    await shop.paid(client, session, 10)
    amount = await shop.paid(client, session, 1)
    status = await shop.paid(client, session, 1)
    refunded = await shop.paid(client, session, 2)
    lost = await shop.paid(client, session, 3)
    amount.amount_fen = 450
    status.status, status.failure_reason = "failed", "declined"
    lost.channel_txn_id = None  # found by our order number
    await session.flush()
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    await shop.refund_whole(client, headers, refunded)
    if rate is not None:
        await fees.set_rate(session, shop.account, rate, actor=ACTOR)

    async def reconciled() -> tuple[list[dict[str, Any]], tuple[Any, ...]]:
        run = await runs.reconcile(session, shop.account, today(), actor=ACTOR)
        assert (run.status, run.last_error) == ("reconciled", None)
        figures = (run.line_count, run.difference_count, run.bill_gross_fen,
                   run.bill_refund_fen, run.bill_fee_fen, run.our_gross_fen,
                   run.our_refund_fen, run.expected_fee_fen)  # fmt: skip
        return _written(await items_of(session, run)), figures

    as_is = await reconciled()

    async def judged_each(
        session: AsyncSession, account: PaymentAccount, lines: list[Any], *_: Any
    ) -> list[Any]:
        return lines

    monkeypatch.setattr(runs, "_match_in_sql", judged_each)
    assert await reconciled() == as_is
    assert {i["difference"] for i in as_is[0]} >= {"matched", "amount_differs", "status_differs"}


async def test_a_payment_without_the_platform_id_is_matched_by_our_order_number(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    """A payment whose transaction id we never recorded (the answer lost, say) is found by
    its out_trade_no, within the account; matching does not write the id back."""
    shop = await open_shop(session, wechat)
    kept = await shop.paid(client, session, 1)
    lost = await shop.paid(client, session, 2)
    assert lost.channel_txn_id is not None
    platform_id = lost.channel_txn_id
    lost.channel_txn_id = None
    await session.flush()

    run = await runs.reconcile(session, shop.account, today(), actor=ACTOR)
    assert (run.status, run.last_error) == ("reconciled", None)
    items = await items_of(session, run)
    assert sorted((i.difference, i.payment_id) for i in items) == sorted(
        [("matched", kept.id), ("matched", lost.id)]
    )
    found = next(i for i in items if i.payment_id == lost.id)
    assert (found.transaction_id, found.out_trade_no) == (platform_id, lost.out_trade_no)
    assert (run.difference_count, run.our_gross_fen) == (0, 350 + 700)
    await session.refresh(lost)
    assert lost.channel_txn_id is None

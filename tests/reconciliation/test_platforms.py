"""Alipay and UnionPay end to end. Alipay: a terminal pays through its sandbox with the
chain's account as `seed-demo` configures it, and that day's bill (Alipay's GBK zip) is
downloaded through the account and reconciled: one payment matched, one whose amount we hold
wrongly reported. UnionPay: consumes sent to its sandbox through our account class (the
terminal's card route is tested in tests/payments/test_terminal_card.py), its ZM file
reconciled the same way."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import job_actor
from selfmart.kit.time import utcnow
from selfmart.models import AuditLog, Payment, PaymentAccount, ReconciliationItem
from selfmart.payments import accounts, sandboxes
from selfmart.payments.alipay import protocol as alipay
from selfmart.payments.platform import PayRequest, PlatformAccount
from selfmart.reconciliation import runs
from tests.builders import make_store
from tests.orders.builders import make_order, make_product
from tests.payments.builders import demo_sandbox_account
from tests.payments.test_terminal_pay import pay
from tests.payments.wechatpay.support import Sandbox
from tests.reconciliation.test_bills import with_alipay_detail
from tests.reconciliation.test_reconcile import Altered, items_of, today
from tests.terminals.builders import make_active_terminal

ACTOR = job_actor("test.reconcile")


async def alipay_day(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox, channel: str, mode: str
) -> tuple[PaymentAccount, list[Payment]]:
    """The chain's account of `channel` as `seed-demo` configures it against the sandbox (the
    server serves every sandbox; the WeChat one is emptied by the fixture, this one here), and
    two orders (one cola, two colas) a terminal paid through it today."""
    account = await demo_sandbox_account(session, wechat, channel)
    store = await make_store(session)
    cola = await make_product(session, stores=[store], price_fen=350)
    creds = await make_active_terminal(session, store)
    code = sandboxes.credentials(wechat.settings)[channel]["test_auth_codes"]["success"]
    paid: list[Payment] = []
    for n in (1, 2):
        order = await make_order(session, store, [(cola, n)], terminal=creds.terminal)
        r = await pay(
            client, creds, order.order_no, channel=channel, mode=mode, auth_code=code,
            attempt_id=f"A{n}",
        )  # fmt: skip
        assert r.status_code == 201, r.text
        assert r.json()["state"] == "paid", r.text
        payment = await session.get(Payment, r.json()["payment_id"])
        assert payment is not None
        paid.append(payment)
    return account, paid


@pytest.mark.parametrize(("channel", "mode"), [("alipay", "code")])
async def test_a_day_paid_through_the_sandbox_is_reconciled(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox, channel: str, mode: str
) -> None:
    account, paid = await alipay_day(client, session, wechat, channel, mode)
    wrong = paid[1]
    wrong.amount_fen = 9_999
    await session.flush()

    run = await runs.reconcile(session, account, today(), actor=ACTOR)
    assert (run.status, run.last_error) == ("reconciled", None)
    items = (
        await session.scalars(
            select(ReconciliationItem)
            .where(ReconciliationItem.run_id == run.id)
            .order_by(ReconciliationItem.id)
        )
    ).all()
    assert sorted((i.difference, i.out_trade_no) for i in items) == sorted(
        [("matched", paid[0].out_trade_no), ("amount_differs", wrong.out_trade_no)]
    )
    diff = next(i for i in items if i.difference == "amount_differs")
    assert (diff.our_amount_fen, diff.bill_amount_fen, diff.payment_id) == (
        9_999,
        700,
        wrong.id,
    )
    assert run.bill_gross_fen == 350 + 700

    # The same bill with a payment row taken out of its detail file: the 合计 line still counts
    # two, so it is refused and the result above stands.
    def altered(account: PaymentAccount) -> PlatformAccount:
        return cast(PlatformAccount, Altered(account, without_first_alipay_row))

    again = await runs.reconcile(session, account, today(), actor=ACTOR, opener=altered)
    assert again.status == "reconciled"
    assert again.last_error is not None
    assert "the lines do not add up to the bill's own totals: lines 2 expected, 1 found" in (
        again.last_error
    )
    assert (again.line_count, again.bill_gross_fen) == (2, 350 + 700)

    # The same bill re-saved as UTF-8 (Alipay writes GBK): refused saying so, the result stands.
    def utf8(account: PaymentAccount) -> PlatformAccount:
        return cast(PlatformAccount, Altered(account, detail_as_utf8))

    kept = sorted(i.id for i in items)
    third = await runs.reconcile(session, account, today(), actor=ACTOR, opener=utf8)
    assert third.status == "reconciled"
    assert third.last_error is not None
    assert third.last_error.startswith("not an Alipay bill: "), third.last_error
    assert third.last_error.endswith("_业务明细.csv is UTF-8, not GBK"), third.last_error
    after = await session.scalars(
        select(ReconciliationItem.id).where(ReconciliationItem.run_id == run.id)
    )
    assert sorted(after) == kept
    assert (third.line_count, third.bill_gross_fen) == (2, 350 + 700)


def detail_as_utf8(data: bytes) -> bytes:
    return with_alipay_detail(data, lambda body: body.decode("gbk").encode("utf-8"))


def without_first_alipay_row(data: bytes) -> bytes:
    """Alipay's bill zip with the first data row of its detail file dropped."""

    def drop(body: bytes) -> bytes:
        lines = body.split(b"\r\n")
        rows = [n for n, line in enumerate(lines) if line and not line.startswith(b"#")]
        del lines[rows[1]]  # rows[0] is the column header
        return b"\r\n".join(lines)

    return with_alipay_detail(data, drop)


async def test_a_card_day_paid_at_the_unionpay_sandbox_is_reconciled(
    session: AsyncSession, wechat: Sandbox
) -> None:
    """Consumes go to the UnionPay sandbox through our account class and are recorded as the
    attempts would be (the terminal's card route: tests/payments/test_terminal_card.py)."""
    account = await demo_sandbox_account(session, wechat, "card")
    store = await make_store(session)
    cola = await make_product(session, stores=[store], price_fen=350)
    card = sandboxes.credentials(wechat.settings)["card"]["test_auth_codes"]["success"]
    platform = accounts.open_platform(account)
    recorded: list[Payment] = []
    for n in (1, 2, 3):
        order = await make_order(session, store, [(cola, n)])
        out_trade_no = f"{order.order_no}P01"
        answer = await platform.pay(
            PayRequest(out_trade_no=out_trade_no, amount_fen=350 * n, description="可乐",
                       mode="card", auth_code=card)
        )  # fmt: skip
        assert answer.status == "succeeded", answer
        if n == 3:
            continue  # paid at the platform, never recorded here
        payment = Payment(
            order_id=order.id, store_id=store.id, channel="card", status="succeeded",
            amount_fen=350 * n, channel_txn_id=answer.channel_txn_id, created_at=utcnow(),
            succeeded_at=answer.paid_at or utcnow(), actor_type="terminal", account_id=account.id,
            mode="card", out_trade_no=out_trade_no,
        )  # fmt: skip
        session.add(payment)
        recorded.append(payment)
    await session.flush()

    run = await runs.reconcile(session, account, today(), actor=ACTOR)
    assert (run.status, run.last_error) == ("reconciled", None)
    items = (
        await session.scalars(select(ReconciliationItem).where(ReconciliationItem.run_id == run.id))
    ).all()
    assert sorted((i.difference, i.payment_id) for i in items) == sorted(
        [("matched", recorded[0].id), ("matched", recorded[1].id), ("platform_only", None)]
    )
    assert run.bill_gross_fen == 350 * 6
    assert run.our_gross_fen == 350 * 3


async def test_an_alipay_bill_not_in_gbk_on_the_first_run_is_refused_writing_nothing(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    account, _paid = await alipay_day(client, session, wechat, "alipay", "code")

    def utf8(account: PaymentAccount) -> PlatformAccount:
        return cast(PlatformAccount, Altered(account, detail_as_utf8))

    run = await runs.reconcile(session, account, today(), actor=ACTOR, opener=utf8)
    assert run.status == "refused"
    assert run.last_error is not None
    assert run.last_error.startswith("not an Alipay bill: "), run.last_error
    assert run.last_error.endswith("_业务明细.csv is UTF-8, not GBK"), run.last_error
    assert (run.attempts, run.line_count, run.difference_count, run.bill_gross_fen) == (
        1, 0, 0, 0,
    )  # fmt: skip
    assert run.file_sha256 is None
    assert await items_of(session, run) == []
    refusals = await session.scalars(
        select(AuditLog).where(
            AuditLog.entity_type == "reconciliation_run", AuditLog.entity_id == str(run.id)
        )
    )
    assert [a.action for a in refusals] == ["reconciliation.refuse"]


def with_second_row_twice(data: bytes) -> bytes:
    """Alipay's bill zip as the platform would write it with its second detail row twice (and
    counted twice in its 合计 and 交易合计 lines)."""
    bill = alipay.parse_bill(data)
    exported = datetime.now(UTC)
    return alipay.encode_bill(bill.account, bill.day, [*bill.rows, bill.rows[1]], exported)


async def test_an_alipay_bill_with_the_same_line_twice_has_a_duplicate_line_counted_once(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    account, (once, twice) = await alipay_day(client, session, wechat, "alipay", "code")

    def doubled(account: PaymentAccount) -> PlatformAccount:
        return cast(PlatformAccount, Altered(account, with_second_row_twice))

    run = await runs.reconcile(session, account, today(), actor=ACTOR, opener=doubled)
    assert (run.status, run.last_error) == ("reconciled", None)
    items = await items_of(session, run)
    assert sorted((i.difference, i.payment_id, i.line_no) for i in items) == [
        ("duplicate_line", twice.id, 8), ("matched", once.id, 6), ("matched", twice.id, 7),
    ]  # fmt: skip
    dup = next(i for i in items if i.difference == "duplicate_line")
    assert (dup.state, dup.detail) == ("open", "the same payment as line 7; not counted again")
    # The 合计 line counts it twice; our figures count it once.
    assert (run.trailer_count, run.line_count, run.difference_count) == (3, 2, 1)
    assert (run.bill_gross_fen, run.our_gross_fen) == (350 + 700, 350 + 700)

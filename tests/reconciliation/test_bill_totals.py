"""Alipay's bill checked against its own totals before any line is written: the 汇总 file's
合计 (counts, 订单金额 and 商家实收 net of refunds, 服务费) and the detail file's closing
`#交易合计：N笔，退款合计：M笔`. A bill that does not add up is refused, recorded, and nothing of
it is written (on a first run as on a rerun). UnionPay's ZM file has no totals record."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import date
from typing import cast

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import job_actor
from selfmart.models import AuditLog, PaymentAccount, ReconciliationItem
from selfmart.payments.alipay import protocol as alipay
from selfmart.payments.platform import PlatformAccount
from selfmart.reconciliation import bills, runs
from selfmart.reconciliation.bills import BillRefused
from tests.payments.builders import make_payment_account
from tests.reconciliation.test_bills import AT, DAY, alipay_bill, with_alipay_detail

ACTOR = job_actor("test.reconcile")
MERCHANT = "1900000109"  # make_payment_account's merchant id; Alipay's account starts with it


def without_summary(data: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            if not info.filename.endswith("_业务明细(汇总).csv"):
                target.writestr(info, source.read(info))
    return out.getvalue()


def detail_amount_changed(data: bytes) -> bytes:
    """The payment row's 订单金额 and 商家实收 7.00 -> 8.00, the totals kept."""
    return with_alipay_detail(data, lambda body: body.replace(b",7.00,7.00,", b",8.00,8.00,", 1))


def test_a_bill_that_adds_up_is_read() -> None:
    parsed = bills.parse("alipay", alipay_bill(), merchant_id="", bill_date=DAY)
    assert len(parsed.lines) == 2
    assert (parsed.trailer.count, parsed.trailer.fee_fen) == (2, 2)


def test_a_detail_amount_the_summary_does_not_add_up_to_is_refused_naming_the_figures() -> None:
    with pytest.raises(BillRefused) as refused:
        bills.parse("alipay", detail_amount_changed(alipay_bill()), merchant_id="", bill_date=DAY)
    assert str(refused.value) == (
        "the lines do not add up to the bill's own totals: amount 350 fen expected, 450 fen "
        "found; received 350 fen expected, 450 fen found (the 业务明细(汇总) file's 合计)"
    )


def test_a_fee_the_summary_does_not_add_up_to_is_refused() -> None:
    data = with_alipay_detail(
        alipay_bill(), lambda body: body.replace(b",0.02,", b",0.03,", 1), "_业务明细(汇总).csv"
    )
    with pytest.raises(BillRefused, match="fees 3 fen expected, 2 fen found"):
        bills.parse("alipay", data, merchant_id="", bill_date=DAY)


def test_the_detail_files_own_count_is_checked_without_a_summary() -> None:
    data = without_summary(alipay_bill())
    parsed = bills.parse("alipay", data, merchant_id="", bill_date=DAY)
    assert (parsed.trailer.count, parsed.trailer.fee_fen) == (2, None)
    data = with_alipay_detail(
        data,
        lambda body: body.replace("退款合计：1笔".encode("gbk"), "退款合计：2笔".encode("gbk")),
    )
    with pytest.raises(BillRefused) as refused:
        bills.parse("alipay", data, merchant_id="", bill_date=DAY)
    assert str(refused.value) == (
        "the lines do not add up to the bill's own totals: lines 3 expected, 2 found; "
        "refund lines 2 expected, 1 found (the 业务明细 file's 交易合计)"
    )


def test_a_summary_counting_a_refund_as_a_payment_is_refused() -> None:
    rows = alipay.parse_bill(alipay_bill()).rows
    trade = next(r for r in rows if r.kind == alipay.TRADE)
    # The detail's 合计 line and the 汇总 file both count 2 payments and no refund: the lines
    # (one of each) are the same count but not the same kinds.
    data = alipay.encode_bill("20880000000000010156", DAY, [trade, trade], AT)
    detail = zipfile.ZipFile(io.BytesIO(alipay_bill()))
    name = next(n for n in detail.namelist() if n.endswith("_业务明细.csv"))
    body = detail.read(name)
    data = with_alipay_detail(data, lambda _old: body)
    with pytest.raises(BillRefused, match="payment lines 2 expected, 1 found; refund lines 0"):
        bills.parse("alipay", data, merchant_id="", bill_date=DAY)


class _Bill:
    def __init__(self, data: bytes) -> None:
        self.data = data

    async def download_bill(self, bill_date: date, kind: str = "trade") -> bytes | None:
        return self.data


async def test_a_bill_refused_by_its_totals_is_recorded_and_nothing_is_written(
    session: AsyncSession,
) -> None:
    account = await make_payment_account(session, None, "alipay")

    def opener(data: bytes) -> Callable[[PaymentAccount], PlatformAccount]:
        return lambda _account: cast(PlatformAccount, _Bill(data))

    bad = detail_amount_changed(alipay_bill(MERCHANT + "0156"))
    run = await runs.reconcile(session, account, DAY, actor=ACTOR, opener=opener(bad))
    assert (run.status, run.line_count) == ("refused", 0)
    assert run.last_error is not None
    assert run.last_error.startswith(
        "the lines do not add up to the bill's own totals: amount 350 fen expected, 450 fen"
    )
    items = select(func.count()).select_from(ReconciliationItem)
    assert await session.scalar(items.where(ReconciliationItem.run_id == run.id)) == 0
    refusals = select(AuditLog.changes).where(
        AuditLog.action == "reconciliation.refuse", AuditLog.entity_id == str(run.id)
    )
    (changes,) = (await session.scalars(refusals)).all()
    assert "amount 350 fen expected" in str(changes)

    # The same day's good bill, then the bad one again: refused, the good result stands.
    good = await runs.reconcile(
        session, account, DAY, actor=ACTOR, opener=opener(alipay_bill(MERCHANT + "0156"))
    )
    assert (good.status, good.line_count, good.last_error) == ("reconciled", 2, None)
    kept = sorted(await session.scalars(select(ReconciliationItem.id).where(
        ReconciliationItem.run_id == run.id)))  # fmt: skip
    again = await runs.reconcile(session, account, DAY, actor=ACTOR, opener=opener(bad))
    assert (again.status, again.line_count) == ("reconciled", 2)
    assert again.last_error is not None
    assert "amount 350 fen expected" in again.last_error
    after = await session.scalars(
        select(ReconciliationItem.id).where(ReconciliationItem.run_id == run.id)
    )
    assert sorted(after) == kept

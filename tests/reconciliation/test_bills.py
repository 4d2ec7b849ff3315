"""Bills read into one shape from the files each platform's own encoder writes (the ones our
sandboxes serve): Alipay's zip (negative refunds, fees charged and given back) and UnionPay's
ZM file (C/D signed fees), and what is refused: another merchant's bill, a broken line named by
its number, a file that is not a bill."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import date, datetime

import pytest

from selfmart.payments.alipay import protocol as alipay
from selfmart.payments.unionpay import protocol as unionpay
from selfmart.payments.wechatpay import protocol as wechat
from selfmart.reconciliation import bills
from selfmart.reconciliation.bills import BEIJING, BillRefused

DAY = date(2026, 12, 5)
AT = datetime(2026, 12, 5, 10, 30, tzinfo=BEIJING)


def alipay_bill(account: str = "20880000000000010156") -> bytes:
    rows = [
        alipay.BillRow(
            trade_no="2026120522001", out_trade_no="T1", kind=alipay.TRADE, subject="可乐",
            created_at=AT, finished_at=AT, amount_fen=700, received_fen=700, fee_fen=4,
        ),
        alipay.BillRow(
            trade_no="2026120522001", out_trade_no="T1", kind=alipay.REFUND, subject="可乐",
            created_at=AT, finished_at=AT, amount_fen=-350, received_fen=-350, fee_fen=-2,
            refund_no="R1",
        ),
    ]  # fmt: skip
    return alipay.encode_bill(account, DAY, rows, AT)


def test_alipay_payments_and_negative_refunds() -> None:
    parsed = bills.parse("alipay", alipay_bill(), merchant_id="2088000000000001", bill_date=DAY)
    pay, refund = parsed.lines
    assert (pay.kind, pay.transaction_id, pay.out_trade_no, pay.amount_fen, pay.fee_fen) == (
        "payment", "2026120522001", "T1", 700, 4,
    )  # fmt: skip
    assert (refund.kind, refund.out_refund_no, refund.amount_fen, refund.fee_fen) == (
        "refund", "R1", 350, -2,
    )  # fmt: skip
    assert (parsed.trailer.count, parsed.trailer.fee_fen) == (2, 2)
    # lines are numbered as in the file (the # preamble and the header count), the way a
    # refusal names a bad line: the first data row is line 6 (see the refusals below)
    assert (pay.line_no, refund.line_no) == (6, 7)


def test_alipay_bill_of_another_merchant_is_refused() -> None:
    with pytest.raises(BillRefused, match="not this account's"):
        bills.parse("alipay", alipay_bill(), merchant_id="2088999999999999", bill_date=DAY)


def with_alipay_detail(
    data: bytes, edit: Callable[[bytes], bytes], file: str = "_业务明细.csv"
) -> bytes:
    """Alipay's bill zip `data` with its detail file (or the one named ending in `file`)
    changed by `edit`."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            body = source.read(info)
            if info.filename.endswith(file):
                body = edit(body)
            target.writestr(info, body)
    return out.getvalue()


def test_alipay_amount_with_three_decimals_is_refused() -> None:
    data = with_alipay_detail(alipay_bill(), lambda body: body.replace(b",7.00,", b",7.001,", 1))
    with pytest.raises(BillRefused, match="not an Alipay bill") as refused:
        bills.parse("alipay", data, merchant_id="", bill_date=DAY)
    assert str(refused.value).endswith(
        "业务明细 line 6: not a yuan amount with at most two decimals: '7.001'"
    ), str(refused.value)


def as_utf8(body: bytes) -> bytes:
    return body.decode("gbk").encode("utf-8")


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (as_utf8, "_业务明细.csv is UTF-8, not GBK"),
        (lambda body: b"\xef\xbb\xbf" + as_utf8(body), "starts with a byte order mark"),
        (lambda body: body.decode("gbk").encode("utf-16"), "_业务明细.csv is not GBK text"),
    ],
)
def test_alipay_bill_not_in_gbk_is_refused_saying_so(
    edit: Callable[[bytes], bytes], says: str
) -> None:
    data = with_alipay_detail(alipay_bill(), edit)
    with pytest.raises(BillRefused, match="not an Alipay bill: ") as refused:
        bills.parse("alipay", data, merchant_id="", bill_date=DAY)
    assert says in str(refused.value)


def zm(mer_id: str = "777290058110048") -> bytes:
    records = [
        unionpay.ZmRecord(
            txn_type=unionpay.CONSUME, query_id="Q1", order_id="T1", txn_time="1205103000",
            amount_fen=700, fee_fen=-4, settle_fen=700, card="621626*********0018",
            trace_no="000001", mer_id=mer_id,
        ),
        unionpay.ZmRecord(
            txn_type=unionpay.REFUND, query_id="Q2", order_id="R1", txn_time="1205113000",
            amount_fen=350, fee_fen=2, settle_fen=-350, card="621626*********0018",
            trace_no="000002", mer_id=mer_id, orig_query_id="Q1", orig_order_id="T1",
        ),
    ]  # fmt: skip
    return unionpay.build_archive(mer_id, DAY, records)[1]


def test_unionpay_consume_and_refund() -> None:
    parsed = bills.parse("card", zm(), merchant_id="777290058110048", bill_date=DAY)
    pay, refund = parsed.lines
    assert (pay.kind, pay.transaction_id, pay.out_trade_no, pay.amount_fen, pay.fee_fen) == (
        "payment", "Q1", "T1", 700, 4,
    )  # fmt: skip
    assert (refund.kind, refund.transaction_id, refund.out_trade_no) == ("refund", "Q1", "T1")
    assert (refund.out_refund_no, refund.refund_id, refund.fee_fen) == ("R1", "Q2", -2)
    assert pay.occurred_at == datetime(2026, 12, 5, 10, 30, tzinfo=BEIJING)


def test_unionpay_broken_line_is_named() -> None:
    data = zm()
    source = zipfile.ZipFile(io.BytesIO(data))
    (name,) = source.namelist()
    lines = source.read(name).split(b"\r\n")
    lines[1] = lines[1][:-10]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        target.writestr(name, b"\r\n".join(lines))
    with pytest.raises(BillRefused, match="ZM line 2 is"):
        bills.parse("card", out.getvalue(), merchant_id="777290058110048", bill_date=DAY)


def test_unionpay_other_merchant_and_not_a_zip_are_refused() -> None:
    with pytest.raises(BillRefused, match="line 1: merchant"):
        bills.parse("card", zm("777290058110099"), merchant_id="777290058110048", bill_date=DAY)
    with pytest.raises(BillRefused, match="not a zip"):
        bills.parse("card", zm()[:40], merchant_id="777290058110048", bill_date=DAY)


def test_unionpay_december_transaction_settled_in_january() -> None:
    records = [
        unionpay.ZmRecord(
            txn_type=unionpay.CONSUME, query_id="Q9", order_id="T9", txn_time="1231235959",
            amount_fen=100, fee_fen=-1, settle_fen=100, card="621626*********0018",
            trace_no="000009", mer_id="777290058110048",
        )
    ]  # fmt: skip
    data = unionpay.build_archive("777290058110048", date(2027, 1, 1), records)[1]
    parsed = bills.parse("card", data, merchant_id="777290058110048", bill_date=date(2027, 1, 1))
    assert parsed.lines[0].occurred_at == datetime(2026, 12, 31, 23, 59, 59, tzinfo=BEIJING)


def wechat_bill(n: int, *, blank_after: int | None = None) -> bytes:
    """A WeChat Pay trade bill of `n` payments of merchant 1900000109, in the protocol's own
    format; a blank line after the `blank_after`th record when given."""
    rows = []
    for i in range(n):
        doc = dict.fromkeys(wechat.TRADE_BILL_HEADER, "")
        doc.update(
            {"交易时间": f"2026-12-05 10:{i:02d}:00", "商户号": "1900000109",
             "微信订单号": f"42{i:026d}", "商户订单号": f"W{i:05d}", "交易状态": "SUCCESS",
             "订单金额": f"{i + 1}.00", "退款金额": "0.00", "手续费": "0.01"}
        )  # fmt: skip
        rows.append([doc[h] for h in wechat.TRADE_BILL_HEADER])
    totals = dict.fromkeys(wechat.TRADE_BILL_TOTALS_HEADER, "0.00")
    totals["总交易单数"] = str(n)
    totals["订单总金额"] = wechat.yuan(sum(range(1, n + 1)) * 100)
    totals["手续费总金额"] = wechat.yuan(n)
    data = wechat.format_bill(
        wechat.TRADE_BILL_HEADER, rows, wechat.TRADE_BILL_TOTALS_HEADER, list(totals.values())
    )
    if blank_after is None:
        return data
    lines = data.split(b"\r\n")
    return b"\r\n".join([*lines[: blank_after + 1], b"", *lines[blank_after + 1 :]])


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 100])
def test_wechat_bill_streamed_in_chunks_reads_as_a_whole(chunk: int) -> None:
    data = wechat_bill(7, blank_after=4)
    whole = bills.parse("wechat", data, merchant_id="1900000109", bill_date=DAY)
    streamed = bills.stream("wechat", data, merchant_id="1900000109", bill_date=DAY, chunk=chunk)
    pieces = list(streamed.chunks)
    assert all(len(p) <= chunk for p in pieces)
    assert [line for p in pieces for line in p] == whole.lines
    assert [x.line_no for x in whole.lines] == [2, 3, 4, 5, 6, 7, 8]
    assert streamed.trailer == whole.trailer
    assert whole.trailer.count == 7


@pytest.mark.parametrize("chunk", [2, 100])
def test_wechat_broken_line_in_a_later_chunk_names_its_line_in_the_file(chunk: int) -> None:
    # Record 6 is the file's line 8 (a blank line after record 4); it gains a column.
    data = wechat_bill(7, blank_after=4).replace(b"`W00005", b"`W00005,`extra")
    streamed = bills.stream("wechat", data, merchant_id="1900000109", bill_date=DAY, chunk=chunk)
    given: list[bills.BillLine] = []

    def read_all() -> None:
        for piece in streamed.chunks:
            given.extend(piece)

    with pytest.raises(BillRefused, match="line 8: a bill row does not have one value"):
        read_all()
    # pieces of two lines of the file: records 1-2, 3-4, the blank line and 5; then the break
    assert len(given) == (5 if chunk == 2 else 0)


def test_wechat_truncated_or_foreign_bill_is_refused_before_any_line() -> None:
    data = wechat_bill(5)
    with pytest.raises(BillRefused, match="line 7: bill values must start with a backtick"):
        bills.stream(
            "wechat", data[: len(data) - 61], merchant_id="1900000109", bill_date=DAY, chunk=2
        )
    with pytest.raises(BillRefused, match="not a WeChat Pay trade bill"):
        bills.stream("wechat", data[:30], merchant_id="1900000109", bill_date=DAY, chunk=2)
    with pytest.raises(BillRefused, match="line 2: merchant"):
        list(bills.stream("wechat", data, merchant_id="1900000999", bill_date=DAY, chunk=2).chunks)


def wechat_v2_bill(mchid: str = "1900000109", *, totals_header: list[str] | None = None) -> bytes:
    """A trade bill in the v2 downloadbill layout (24 columns, 总金额, five totals): a
    payment of 7.00 and a refund of 3.50 of it, fees 0.04 charged and 0.02 given back."""
    header = wechat.TRADE_BILL_HEADER_V2
    payment = dict.fromkeys(header, "")
    payment.update(
        {"交易时间": "2026-12-05 10:30:00", "公众账号ID": "wx8888888888888888", "商户号": mchid,
         "子商户号": "0", "微信订单号": "4200000001202612050000000001", "商户订单号": "T1",
         "交易类型": "MICROPAY", "交易状态": "SUCCESS", "付款银行": "OTHERS", "货币种类": "CNY",
         "总金额": "7.00", "代金券或立减优惠金额": "0.00", "退款金额": "0.00",
         "代金券或立减优惠退款金额": "0.00", "商品名称": "可乐", "手续费": "0.04",
         "费率": "0.60%"}
    )  # fmt: skip
    refund = payment | {
        "交易时间": "2026-12-05 11:00:00", "交易状态": "REFUND", "微信退款单号": "5030001",
        "商户退款单号": "R1", "退款金额": "3.50", "退款类型": "ORIGINAL", "退款状态": "SUCCESS",
        "手续费": "-0.02",
    }  # fmt: skip
    rows = [[payment[h] for h in header], [refund[h] for h in header]]
    return wechat.format_bill(
        header,
        rows,
        totals_header or wechat.TRADE_BILL_TOTALS_HEADER_V2,
        ["2", "7.00", "3.50", "0.00", "0.02", "7.00", "3.50"][: len(totals_header or "12345")],
    )


def test_wechat_v2_downloadbill_layout_is_read() -> None:
    parsed = bills.parse("wechat", wechat_v2_bill(), merchant_id="1900000109", bill_date=DAY)
    pay, refund = parsed.lines
    assert (pay.kind, pay.transaction_id, pay.out_trade_no, pay.amount_fen, pay.fee_fen) == (
        "payment", "4200000001202612050000000001", "T1", 700, 4,
    )  # fmt: skip
    assert (refund.kind, refund.refund_id, refund.out_refund_no, refund.amount_fen) == (
        "refund", "5030001", "R1", 350,
    )  # fmt: skip
    assert (refund.status, refund.fee_fen) == ("SUCCESS", -2)
    assert parsed.trailer == bills.Trailer(count=2, gross_fen=700, refund_fen=350, fee_fen=2)
    streamed = bills.stream(
        "wechat", wechat_v2_bill(), merchant_id="1900000109", bill_date=DAY, chunk=1
    )
    assert [line for chunk in streamed.chunks for line in chunk] == parsed.lines


def test_wechat_v2_layout_with_current_totals_or_another_merchant_is_refused() -> None:
    current_totals = wechat_v2_bill(totals_header=wechat.TRADE_BILL_TOTALS_HEADER)
    with pytest.raises(BillRefused, match="line 4: the totals' columns are not those of WeChat"):
        bills.parse("wechat", current_totals, merchant_id="1900000109", bill_date=DAY)
    with pytest.raises(BillRefused, match="line 2: merchant '1230000109' is not this account's"):
        bills.parse("wechat", wechat_v2_bill("1230000109"), merchant_id="1900000109", bill_date=DAY)


def test_wechat_bill_whose_lines_do_not_add_up_to_its_totals_is_refused_naming_both() -> None:
    """`stream` gives the totals first and the lines as they are read; what they add up to is
    checked against the totals once the last is read (the run does it inside its savepoint,
    so that a tampered bill's lines are undone: `test_reconcile`), naming both figures."""
    good = wechat_bill(7)
    given = bills.stream("wechat", good, merchant_id="1900000109", bill_date=DAY, chunk=2)
    assert len([line for chunk in given.chunks for line in chunk]) == 7
    tampered = good.replace(b"`4.00", b"`40.00", 1)
    dropped = b"\r\n".join(line for line in good.split(b"\r\n") if b"`W00002" not in line)
    for data, says in (
        (tampered, "gross 2800 fen expected, 6400 fen found"),
        (dropped, "lines 7 expected, 6 found; gross 2800 fen expected, 2500 fen found; "
                  "fees 7 fen expected, 6 fen found"),
    ):  # fmt: skip
        read = bills.stream("wechat", data, merchant_id="1900000109", bill_date=DAY, chunk=2)
        lines = [line for chunk in read.chunks for line in chunk]
        found = {"lines": len(lines), "gross": sum(x.amount_fen for x in lines),
                 "refunds": 0, "fees": sum(x.fee_fen for x in lines)}  # fmt: skip
        with pytest.raises(BillRefused, match="the lines do not add up") as refused:
            bills.check_totals(read.trailer, found)
        assert str(refused.value).endswith(says), str(refused.value)


# --- bad input per platform -----------------------------------------------------------------


def test_wechat_amount_with_three_decimals_is_refused_naming_its_line() -> None:
    # record 2 (the file's line 3) says 2.001 yuan: not rounded to 200 fen, refused
    data = wechat_bill(3).replace(b"`2.00,", b"`2.001,", 1)
    with pytest.raises(BillRefused, match=r"^line 3: amount is not an amount: '2\.001'$"):
        bills.parse("wechat", data, merchant_id="1900000109", bill_date=DAY)
    streamed = bills.stream("wechat", data, merchant_id="1900000109", bill_date=DAY, chunk=2)
    with pytest.raises(BillRefused, match=r"^line 3: amount is not an amount: '2\.001'$"):
        list(streamed.chunks)


@pytest.mark.parametrize(
    ("encoding", "says"),
    [
        ("gbk", "line 1: the bill is not UTF-8 text: byte 0xbd"),
        ("utf-16", "line 1: the bill is not UTF-8 text (it is UTF-16): byte 0xff"),
    ],
)
def test_wechat_bill_not_in_utf8_is_refused_saying_so(encoding: str, says: str) -> None:
    data = wechat_bill(3).decode("utf-8").encode(encoding)
    for read in (
        lambda: bills.parse("wechat", data, merchant_id="1900000109", bill_date=DAY),
        lambda: bills.stream("wechat", data, merchant_id="1900000109", bill_date=DAY, chunk=2),
    ):
        with pytest.raises(BillRefused, match="^not a WeChat Pay trade bill: ") as refused:
            read()
        assert str(refused.value).endswith(says), str(refused.value)


def test_wechat_line_in_gbk_is_refused_naming_its_line_in_the_file() -> None:
    # the file's line 8 (record 6, after a blank line) re-saved in GBK
    data = wechat_bill(7, blank_after=4).replace(b"`W00005", "`W可乐".encode("gbk"))
    for chunk in (2, 100):
        streamed = bills.stream(
            "wechat", data, merchant_id="1900000109", bill_date=DAY, chunk=chunk
        )
        with pytest.raises(BillRefused, match="line 8: the bill is not UTF-8 text: byte 0xbf"):
            list(streamed.chunks)


def with_zm(data: bytes, edit: Callable[[bytes], bytes]) -> bytes:
    """The UnionPay zip `data` with its ZM file changed by `edit`."""
    source = zipfile.ZipFile(io.BytesIO(data))
    (name,) = source.namelist()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        target.writestr(name, edit(source.read(name)))
    return out.getvalue()


def zm_field_at(name: str) -> int:
    """Where the ZM field `name` starts in its line (fields are one space apart)."""
    names = [n for n, _ in unionpay.ZM_FIELDS]
    return sum(w + 1 for _, w in unionpay.ZM_FIELDS[: names.index(name)])


def test_unionpay_zm_file_not_in_gbk_is_refused_saying_so() -> None:
    def not_gbk_on_line_2(body: bytes) -> bytes:
        lines = body.split(b"\r\n")
        at = zm_field_at("subMerAbbr")
        lines[1] = lines[1][:at] + b"\xff\xff" + lines[1][at + 2 :]
        return b"\r\n".join(lines)

    def utf8_with_a_shop_name(body: bytes) -> bytes:
        # a sub-merchant's short name in Chinese (6 bytes of GBK), the file then in UTF-8
        at = zm_field_at("subMerAbbr")
        named = body[:at] + "便利店".encode("gbk") + body[at + 6 :]
        return named.decode("gbk").encode("utf-8")

    for edit, says in (
        (not_gbk_on_line_2, "ZM line 2: subMerAbbr is not GBK text: byte 0xff at column "
                            f"{zm_field_at('subMerAbbr') + 1}"),
        (lambda body: body.decode("gbk").encode("utf-16"),
         "the ZM file is UTF-16 (it starts with a byte order mark), not GBK"),
        (utf8_with_a_shop_name,
         "ZM line 1 is UTF-8 text, not GBK (its Chinese takes 3 bytes a character)"),
    ):  # fmt: skip
        with pytest.raises(BillRefused, match="^not a UnionPay reconciliation file: ") as refused:
            bills.parse("card", with_zm(zm(), edit), merchant_id="777290058110048", bill_date=DAY)
        assert str(refused.value).endswith(says), str(refused.value)


def in_gbk(edit: Callable[[str], str]) -> Callable[[bytes], bytes]:
    return lambda body: edit(body.decode("gbk")).encode("gbk")


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (in_gbk(lambda text: text.replace(",备注\r\n", "\r\n", 1)),
         "the 业务明细 header is not Alipay's: missing 备注"),
        (in_gbk(lambda text: text.replace(",备注\r\n", ",备注,优惠券\r\n", 1)),
         "the 业务明细 header is not Alipay's: added 优惠券"),
        (in_gbk(lambda text: text.replace("商户订单号,", "商户单号,", 1)),
         "the 业务明细 header is not Alipay's: missing 商户订单号; added 商户单号"),
        (in_gbk(lambda text: text.replace(",操作员,", ",操作员,操作员,", 1)),
         "26 columns, Alipay's 25 in another order or repeated"),
    ],
)  # fmt: skip
def test_alipay_detail_with_a_column_added_or_removed_is_refused_naming_it(
    edit: Callable[[bytes], bytes], says: str
) -> None:
    with pytest.raises(BillRefused, match="^not an Alipay bill: ") as refused:
        bills.parse(
            "alipay", with_alipay_detail(alipay_bill(), edit), merchant_id="", bill_date=DAY
        )
    assert str(refused.value).endswith(says), str(refused.value)


def test_alipay_row_with_a_cell_more_or_less_is_refused_naming_its_line() -> None:
    def row(edit: Callable[[str], str]) -> Callable[[bytes], bytes]:
        # the first data row: the line after the header
        def on_first_row(text: str) -> str:
            lines = text.split("\r\n")
            n = next(i for i, x in enumerate(lines) if x.startswith("支付宝交易号")) + 1
            lines[n] = edit(lines[n])
            return "\r\n".join(lines)

        return in_gbk(on_first_row)

    for edit, says in (
        (row(lambda line: line + ",x"), "业务明细 line 6 has 26 columns, the header 25"),
        (row(lambda line: line.rsplit(",", 1)[0]), "业务明细 line 6 has 24 columns, the header 25"),
    ):
        data = with_alipay_detail(alipay_bill(), edit)
        with pytest.raises(BillRefused, match="^not an Alipay bill: ") as refused:
            bills.parse("alipay", data, merchant_id="", bill_date=DAY)
        assert str(refused.value).endswith(says), str(refused.value)

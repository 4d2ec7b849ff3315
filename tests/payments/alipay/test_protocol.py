"""Alipay's wire rules as pure functions, checked against the published sign-content rule and
against python-alipay-sdk's independent implementation (pycryptodome, not `cryptography`)."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, date, datetime
from urllib.parse import parse_qsl

import pytest
from alipay import AliPay

from selfmart.payments.alipay import protocol as p

PRIVATE, PUBLIC = p.generate_key_pair()
OTHER_PRIVATE, OTHER_PUBLIC = p.generate_key_pair()


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("12.34", 1234),
        ("0.01", 1),
        ("12", 1200),
        ("12.3", 1230),
        ("0", 0),
        ("100000000.00", 10_000_000_000),
        (" 1.50 ", 150),
    ],
)
def test_yuan_to_fen_exact(text: str, fen: int) -> None:
    assert p.yuan_to_fen(text) == fen


@pytest.mark.parametrize(
    "text",
    [
        "12.345",
        "0.001",
        "",
        " ",
        "abc",
        "1e3",
        "1E2",
        "NaN",
        "Infinity",
        "+1.00",
        "1,000",
        "1.",
        ".5",
        "-1.00",
        "0x10",
        "１２",
    ],
)
def test_yuan_to_fen_refuses(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each is a plain ValueError
        p.yuan_to_fen(text)


def test_signed_amounts_and_back() -> None:
    assert p.yuan_to_fen("-5.99", signed=True) == -599
    for fen in (0, 1, 9, 10, 99, 100, 101, 1234, -1, -599, 10_000_000_000):
        assert p.yuan_to_fen(p.fen_to_yuan(fen), signed=True) == fen
    assert p.fen_to_yuan(5) == "0.05"
    assert p.fen_to_yuan(-5) == "-0.05"
    with pytest.raises(TypeError):
        p.fen_to_yuan(12.34)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        p.fen_to_yuan(True)


def test_sign_content_follows_the_published_rule() -> None:
    # Alipay's documented example: sorted by name, `sign` and empty values left out,
    # sign_type kept, values raw (not URL-encoded)
    params = {
        "app_id": "2014072300007148",
        "method": "alipay.mobile.public.menu.add",
        "charset": "GBK",
        "sign_type": "RSA2",
        "timestamp": "2014-07-24 03:07:50",
        "biz_content": '{"button":[{"name":"a b&c"}]}',
        "version": "1.0",
        "sign": "xxx",
        "notify_url": "",
    }
    assert p.sign_content(params) == (
        'app_id=2014072300007148&biz_content={"button":[{"name":"a b&c"}]}&charset=GBK'
        "&method=alipay.mobile.public.menu.add&sign_type=RSA2&timestamp=2014-07-24 03:07:50"
        "&version=1.0"
    )
    # a notification also leaves sign_type out
    assert "sign_type" not in p.sign_content(params, ("sign", "sign_type"))


def _sdk(private: str = PRIVATE, public: str = PUBLIC) -> AliPay:
    return AliPay(
        appid="2021000000000001",
        app_notify_url=None,
        app_private_key_string=private,
        alipay_public_key_string=public,
        sign_type="RSA2",
    )


def test_signatures_agree_with_python_alipay_sdk() -> None:
    sdk = _sdk()
    # the SDK's signed request verifies with our code (it signs sign_type too)
    query = sdk.client_api("alipay.trade.query", {"out_trade_no": "订单-1"})
    params = dict(parse_qsl(query))
    p.verify_params(params, PUBLIC)
    with pytest.raises(p.SignatureError):
        p.verify_params({**params, "biz_content": '{"out_trade_no":"2"}'}, PUBLIC)
    with pytest.raises(p.SignatureError):
        p.verify_params(params, OTHER_PUBLIC)
    # our signature verifies with the SDK's
    content = "a=1&b=中文&c=x y"
    assert sdk._verify(content, p.rsa_sign(content, PRIVATE))
    assert not sdk._verify(content + "!", p.rsa_sign(content, PRIVATE))
    # and our notifications pass the SDK's notification check (sign and sign_type left out)
    note = p.sign_notification({"out_trade_no": "1", "total_amount": "1.00"}, PRIVATE)
    data = dict(note)
    signature = data.pop("sign")
    assert sdk.verify(data, signature)


def test_response_is_verified_over_its_exact_text() -> None:
    body = p.encode_response(
        "alipay.trade.query", {"code": "10000", "msg": "Success", "subject": "可乐 {1}"}, PRIVATE
    )
    answer = p.decode_response("alipay.trade.query", body, PUBLIC)
    assert answer.signed
    assert answer.payload["subject"] == "可乐 {1}"
    # the SDK cuts out the same text
    assert _sdk()._get_string_to_be_signed(body.decode(), "alipay_trade_query_response") == (
        answer.content
    )
    # re-serialised differently (spaces), the same object no longer verifies: the signature is
    # over the bytes as sent, not over a parse of them
    spaced = body.decode().replace('"code":"10000"', '"code": "10000"').encode()
    with pytest.raises(p.SignatureError):
        p.decode_response("alipay.trade.query", spaced, PUBLIC)
    with pytest.raises(p.SignatureError):
        p.decode_response("alipay.trade.query", body, OTHER_PUBLIC)
    # a published-style answer with whitespace around its parts is cut exactly too
    content = '{"code":"10000","msg":"Success"}'
    sign = p.rsa_sign(content, PRIVATE)
    loose = f'{{ "alipay_trade_query_response" :  {content} , "sign" : "{sign}" }}'
    assert p.decode_response("alipay.trade.query", loose.encode(), PUBLIC).content == content
    unsigned = p.decode_response(
        "alipay.trade.query",
        p.encode_response("alipay.trade.query", {"code": "40002"}, None),
        PUBLIC,
    )
    assert not unsigned.signed
    assert unsigned.code == "40002"
    err = p.decode_response(
        "alipay.trade.query", p.encode_error_response({"code": "40002"}), PUBLIC
    )
    assert not err.signed
    with pytest.raises(ValueError):  # noqa: PT011
        p.decode_response("alipay.trade.query", b"<html>", PUBLIC)


def test_keys_without_pem_armour_load() -> None:
    body = "".join(PRIVATE.strip().splitlines()[1:-1])
    assert p.rsa_verify("x", p.rsa_sign("x", body), "".join(PUBLIC.strip().splitlines()[1:-1]))


def test_times_are_beijing() -> None:
    at = datetime(2026, 12, 5, 16, 30, 0, tzinfo=UTC)
    assert p.format_time(at) == "2026-12-06 00:30:00"
    assert p.parse_time("2026-12-06 00:30:00") == at


def _rows() -> list[p.BillRow]:
    t = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
    return [
        p.BillRow("2026120522001400000000000001", "SM001", p.TRADE, "可乐", t, t, 1234, 1234, 7),
        p.BillRow("2026120522001400000000000002", "SM002", p.TRADE, "水", t, t, 500, 500, 3),
        p.BillRow(
            "2026120522001400000000000001",
            "SM001",
            p.REFUND,
            "可乐",
            t,
            t,
            -234,
            -234,
            -1,
            refund_no="SM001R1",
        ),
    ]


def test_bill_round_trip_gbk_preamble_tabs_and_totals() -> None:
    day = date(2026, 12, 5)
    archive = p.encode_bill("2088000000000001", day, _rows(), datetime(2026, 12, 6, tzinfo=UTC))
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        names = z.namelist()
        assert names == [
            "2088000000000001_20261205_业务明细.csv",
            "2088000000000001_20261205_业务明细(汇总).csv",
        ]
        raw = z.read(names[0])
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # GBK, as Alipay sends it
    text = raw.decode("gbk")
    lines = text.split("\r\n")
    assert lines[0] == "#支付宝业务明细查询"
    assert lines[1] == "#账号：[2088000000000001]"
    assert lines[2].startswith("#起始日期：[2026年12月05日 00:00:00]")
    assert lines[4] == p.DETAIL_HEADER
    # ids and names end in a tab, times and amounts do not, as in Alipay's own files
    assert lines[5].startswith(
        "2026120522001400000000000001\t,SM001\t,交易\t,可乐,2026-12-05 10:00:00,"
    )
    assert ",12.34,12.34," in lines[5]
    assert "#交易合计：2笔，退款合计：1笔" in lines

    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        summary = z.read(names[1]).decode("gbk").split("\r\n")
    assert summary[4] == p.SUMMARY_HEADER
    # the totals row starts with 合计, as Alipay's does
    assert summary[5] == "合计,,2,1,15.00,15.00,0.00,0.00,0.00,0.09,0.00,14.91"

    bill = p.parse_bill(archive)
    assert bill.account == "2088000000000001"
    assert bill.day == day
    assert bill.rows == _rows()
    assert bill.summary == p.BillSummary(
        trade_count=2, refund_count=1, amount_fen=1500, received_fen=1500, fee_fen=9, net_fen=1491
    )


def test_bill_parse_refuses_what_is_not_a_bill() -> None:
    with pytest.raises(ValueError, match="not a zip"):
        p.parse_bill(b"PK not really")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("other.csv", "a,b\r\n")
    with pytest.raises(ValueError, match="业务明细"):
        p.parse_bill(buffer.getvalue())

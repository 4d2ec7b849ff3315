"""The pure WeChat Pay v3 protocol functions, checked against an independent implementation
(the third-party `wechatpayv3` package's own signing and AEAD helpers) as well as round trips."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from wechatpayv3 import utils as thirdparty

from selfmart.payments.wechatpay import protocol as wx

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
API_V3_KEY = "0123456789abcdef0123456789abcdef"


def test_request_message_is_the_documented_five_lines() -> None:
    message = wx.request_message("post", "/v3/pay/transactions/native", "1554208460", "N1", b"{}")
    assert message == b"POST\n/v3/pay/transactions/native\n1554208460\nN1\n{}\n"
    assert wx.request_message("GET", "/v3/certificates", "1", "N", b"").endswith(b"N\n\n")


def test_our_authorization_verifies_as_the_thirdparty_client_signs_it() -> None:
    body = json.dumps({"mchid": "1900000109", "description": "可乐"})
    theirs = thirdparty.build_authorization(
        "/v3/pay/transactions/native", "POST", "1900000109", "ABC", KEY, data=body, nonce_str="N"
    )
    auth = wx.parse_authorization(theirs)
    assert (auth.mchid, auth.serial_no, auth.nonce_str) == ("1900000109", "ABC", "N")
    message = wx.request_message(
        "POST", "/v3/pay/transactions/native", auth.timestamp, "N", body.encode()
    )
    assert wx.verify(KEY.public_key(), message, auth.signature)
    ours = wx.authorization(
        mchid="1900000109",
        serial_no="ABC",
        key=KEY,
        method="POST",
        url="/v3/pay/transactions/native",
        body=body.encode(),
        timestamp=auth.timestamp,
        nonce="N",
    )
    # RSA PKCS#1 v1.5 is deterministic: the same message gives the same header
    assert ours == theirs


def test_response_signature_roundtrip_and_thirdparty_verify() -> None:
    body = b'{"code_url":"weixin://wxpay/bizpayurl?pr=x"}'
    headers = wx.response_headers(KEY, "SERIAL", body, timestamp="1700000000", nonce="abc")
    assert headers["Wechatpay-Serial"] == "SERIAL"
    assert headers["Wechatpay-Signature-Type"] == wx.SCHEMA
    message = wx.response_message("1700000000", "abc", body)
    assert wx.verify(KEY.public_key(), message, headers["Wechatpay-Signature"])
    assert thirdparty.rsa_verify(
        "1700000000", "abc", body.decode(), headers["Wechatpay-Signature"], KEY.public_key()
    )
    assert not wx.verify(OTHER.public_key(), message, headers["Wechatpay-Signature"])
    assert not wx.verify(KEY.public_key(), message + b"x", headers["Wechatpay-Signature"])
    assert not wx.verify(KEY.public_key(), message, "not base64!")


def test_aead_roundtrip_and_thirdparty_decrypt() -> None:
    plain = json.dumps({"out_trade_no": "T1", "amount": {"total": 350}}).encode()
    sealed = wx.aead_encrypt(API_V3_KEY, "0123456789ab", "transaction", plain)
    assert wx.aead_decrypt(API_V3_KEY, "0123456789ab", "transaction", sealed) == plain
    assert (
        thirdparty.aes_decrypt("0123456789ab", sealed, "transaction", API_V3_KEY) == plain.decode()
    )
    # the 16-byte GCM tag rides at the end of the ciphertext
    assert len(base64.b64decode(sealed)) == len(plain) + 16


@pytest.mark.parametrize(
    ("key", "nonce", "associated"),
    [
        ("fedcba9876543210fedcba9876543210", "0123456789ab", "transaction"),
        (API_V3_KEY, "ba9876543210", "transaction"),
        (API_V3_KEY, "0123456789ab", "refund"),
    ],
)
def test_aead_refuses_a_wrong_key_nonce_or_associated_data(
    key: str, nonce: str, associated: str
) -> None:
    sealed = wx.aead_encrypt(API_V3_KEY, "0123456789ab", "transaction", b"{}")
    with pytest.raises(wx.ProtocolError):
        wx.aead_decrypt(key, nonce, associated, sealed)


def test_aead_needs_a_32_byte_key() -> None:
    with pytest.raises(wx.ProtocolError):
        wx.aead_encrypt("short", "0123456789ab", "", b"{}")


@pytest.mark.parametrize(
    "header",
    [
        'WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="n",timestamp="1",serial_no="s"',
        'Bearer mchid="1",nonce_str="n",signature="x",timestamp="1",serial_no="s"',
        "",
    ],
)
def test_parse_authorization_refuses_malformed_headers(header: str) -> None:
    with pytest.raises(wx.ProtocolError):
        wx.parse_authorization(header)


def test_timestamp_window_is_five_minutes() -> None:
    now = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
    at = int(now.timestamp())
    assert wx.timestamp_fresh(str(at - 299), now)
    assert wx.timestamp_fresh(str(at + 299), now)
    assert not wx.timestamp_fresh(str(at - 301), now)
    assert not wx.timestamp_fresh("yesterday", now)
    assert wx.MAX_SKEW == timedelta(minutes=5)


def test_keys_load_from_public_key_or_certificate_pem() -> None:
    from selfmart.sandbox.wechatpay.keys import new_certificate

    cert = new_certificate(KEY)
    assert wx.certificate_serial(cert.pem) == cert.serial
    from_cert = wx.load_public_key(cert.pem)
    from_pem = wx.load_public_key(wx.public_key_pem(KEY.public_key()))
    assert (
        from_cert.public_numbers() == from_pem.public_numbers() == KEY.public_key().public_numbers()
    )
    with pytest.raises(wx.ProtocolError):
        wx.load_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    assert wx.load_private_key(wx.private_key_pem(KEY)).private_numbers() == KEY.private_numbers()


def test_bill_roundtrip_keeps_header_rows_and_totals() -> None:
    rows = [
        ["2026-12-06 10:00:00", "wx1", "T1", "3.50"],
        ["2026-12-06 11:00:00", "wx1", "T2", "0.01"],
    ]
    data = wx.format_bill(
        ["时间", "公众账号ID", "商户订单号", "金额"], rows, ["总数", "总额"], ["2", "3.51"]
    )
    text = data.decode()
    assert text.splitlines()[1] == "`2026-12-06 10:00:00,`wx1,`T1,`3.50"
    assert text.splitlines()[-2:] == ["总数,总额", "`2,`3.51"]
    bill = wx.parse_bill(data)
    assert bill.rows == rows
    assert bill.records()[1]["商户订单号"] == "T2"
    assert bill.summary() == {"总数": "2", "总额": "3.51"}
    assert wx.bill_hash(data) == __import__("hashlib").sha1(data).hexdigest()


def test_parse_bill_refuses_rows_without_backticks_or_with_missing_columns() -> None:
    with pytest.raises(wx.ProtocolError):
        wx.parse_bill(b"a,b\r\n1,2\r\nt\r\n`1\r\n")
    with pytest.raises(wx.ProtocolError):
        wx.parse_bill(b"a,b\r\n`1\r\nt\r\n`1\r\n")


@pytest.mark.parametrize(
    ("fen", "yuan"), [(0, "0.00"), (1, "0.01"), (350, "3.50"), (-1205, "-12.05")]
)
def test_money_in_bills_is_yuan_with_two_decimals(fen: int, yuan: str) -> None:
    assert wx.yuan(fen) == yuan
    assert wx.fen(yuan) == fen


@pytest.mark.parametrize("text", ["1.234", "7.001", "0.005", "", "-", "1e2", "1,00", "¥1.00"])
def test_fen_refuses_what_is_not_yuan_with_two_decimals(text: str) -> None:
    """Not rounded (1.234 was quietly 123 fen): an amount of three decimals is not money."""
    with pytest.raises(wx.ProtocolError, match="not a yuan amount with at most two decimals"):
        wx.fen(text)
    assert (wx.fen("1.2"), wx.fen("-0.5"), wx.fen(" 12 ")) == (120, -50, 1200)


def test_rfc3339_is_beijing_time() -> None:
    at = datetime(2026, 12, 6, 2, 34, 56, tzinfo=UTC)
    assert wx.rfc3339(at) == "2026-12-06T10:34:56+08:00"
    assert wx.parse_rfc3339("2026-12-06T10:34:56+08:00") == at
    with pytest.raises(wx.ProtocolError):
        wx.parse_rfc3339("2026-12-06T10:34:56")

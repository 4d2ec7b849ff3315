"""The third-party `wechatpayv3` client from PyPI, unmodified but for its gateway (base URL),
against our WeChat Pay sandbox over real HTTP: create, pay by code, query, close, reverse,
refund, query the refund, download the day's bills, parse a callback, in both the platform
public-key mode and the platform-certificate mode (with a certificate rotation)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from wechatpayv3 import WeChatPay, WeChatPayType

from selfmart.kit.time import utcnow
from selfmart.payments.wechatpay import protocol as wxp
from tests.payments.wechatpay import support
from tests.payments.wechatpay.support import Sandbox


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    yield from support.serve(tmp_path_factory.mktemp("wechatpay-thirdparty"))


@pytest.fixture
def sb(sandbox: Sandbox) -> Sandbox:
    return support.fresh(sandbox)


def client(sb: Sandbox, kind: Any = WeChatPayType.NATIVE, *, cert_dir: Path | None = None) -> Any:
    """A `WeChatPay` built from the sandbox's credentials exactly as from a real merchant's;
    the one change is its gateway, `_core._gate_way` (the client has no base-URL parameter)."""
    c = sb.credentials()
    common: dict[str, Any] = {
        "wechatpay_type": kind,
        "mchid": c["merchant_id"],
        "private_key": c["merchant_private_key"],
        "cert_serial_no": c["merchant_key_id"],
        "appid": c["app_id"],
        "apiv3_key": c["api_v3_key"],
        "notify_url": f"{sb.receiver.url}/notify/pay",
    }
    if cert_dir is None:
        pay = WeChatPay(
            **common,
            public_key=c["platform_public_key"],
            public_key_id=c["platform_public_key_id"],
        )
    else:
        # certificate mode: the client starts from the certificates in cert_dir (else it
        # would fetch them from the real gateway before its base URL can be set)
        pay = WeChatPay(**common, cert_dir=str(cert_dir))
    pay._core._gate_way = sb.base_url
    return pay


def no() -> str:
    return "T" + uuid.uuid4().hex[:20]


def codes(sb: Sandbox) -> dict[str, str]:
    return dict(sb.credentials()["test_auth_codes"])


def codepay(pay: Any, sb: Sandbox, out_trade_no: str, auth_code: str, total: int = 350) -> Any:
    return pay.pay(
        description="可乐 x1",
        out_trade_no=out_trade_no,
        amount={"total": total, "currency": "CNY"},
        payer={"auth_code": auth_code},
        scene_info={"store_info": {"out_id": "S001"}, "device_ip": "10.0.0.8"},
        pay_type=WeChatPayType.CODEPAY,
    )


def test_native_create_query_callback_and_paid(sb: Sandbox) -> None:
    pay = client(sb)
    out_trade_no = no()
    code, message = pay.pay(
        description="面包", out_trade_no=out_trade_no, amount={"total": 1280, "currency": "CNY"}
    )
    assert code == 200
    assert json.loads(message)["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")
    code, message = pay.query(out_trade_no=out_trade_no)
    assert code == 200
    assert json.loads(message)["trade_state"] == "NOTPAY"
    assert sb.control("POST", f"/payments/{out_trade_no}/approve").status_code == 200
    [callback] = sb.receiver.wait_for("/notify/pay")
    parsed = pay.callback(callback.headers, callback.body)
    assert parsed is not None
    assert parsed["event_type"] == "TRANSACTION.SUCCESS"
    assert parsed["resource_type"] == "encrypt-resource"
    resource = parsed["resource"]
    assert resource["out_trade_no"] == out_trade_no
    assert resource["trade_state"] == "SUCCESS"
    assert resource["amount"]["total"] == 1280
    assert resource["mchid"] == sb.credentials()["merchant_id"]
    code, message = pay.query(out_trade_no=out_trade_no)
    assert json.loads(message)["trade_state"] == "SUCCESS"
    code, message = pay.query(transaction_id=resource["transaction_id"])
    assert (code, json.loads(message)["out_trade_no"]) == (200, out_trade_no)


def test_a_tampered_callback_fails_the_clients_check(sb: Sandbox) -> None:
    pay = client(sb)
    out_trade_no = no()
    pay.pay(description="x", out_trade_no=out_trade_no, amount={"total": 1})
    sb.control("POST", f"/payments/{out_trade_no}/approve")
    [callback] = sb.receiver.wait_for("/notify/pay")
    assert pay.callback(callback.headers, callback.body.replace(b'"id"', b'"Id"')) is None


def test_pay_by_code_with_every_test_code(sb: Sandbox) -> None:
    pay = client(sb, WeChatPayType.CODEPAY)
    test = codes(sb)
    code, message = codepay(pay, sb, no(), test["success"])
    paid = json.loads(message)
    assert code == 200
    assert (paid["trade_state"], paid["trade_type"]) == ("SUCCESS", "MICROPAY")
    assert paid["amount"] == {
        "total": 350,
        "payer_total": 350,
        "currency": "CNY",
        "payer_currency": "CNY",
    }
    user_paying = no()
    code, message = codepay(pay, sb, user_paying, test["user_paying"])
    assert (code, json.loads(message)["code"]) == (202, "USERPAYING")
    code, message = codepay(pay, sb, no(), test["declined"])
    assert (code, json.loads(message)["code"]) == (403, "TRADE_ERROR")
    code, message = codepay(pay, sb, no(), test["insufficient_funds"])
    assert (code, json.loads(message)["code"]) == (403, "NOT_ENOUGH")
    # the customer enters the password: the query sees it paid
    sb.control("POST", f"/payments/{user_paying}/approve")
    code, message = pay.query(out_trade_no=user_paying)
    assert json.loads(message)["trade_state"] == "SUCCESS"
    # paying the same number again is ORDERPAID
    code, message = codepay(pay, sb, user_paying, test["success"])
    assert (code, json.loads(message)["code"]) == (403, "ORDERPAID")


def test_close_and_reverse(sb: Sandbox) -> None:
    pay = client(sb)
    out_trade_no = no()
    pay.pay(description="x", out_trade_no=out_trade_no, amount={"total": 100})
    code, message = pay.close(out_trade_no)
    assert code == 204
    assert not message
    code, message = pay.query(out_trade_no=out_trade_no)
    assert json.loads(message)["trade_state"] == "CLOSED"

    code_pay = client(sb, WeChatPayType.CODEPAY)
    paid = no()
    codepay(code_pay, sb, paid, codes(sb)["success"])
    code, message = code_pay.codepay_reverse(paid)
    assert code == 200
    assert json.loads(message)["out_trade_no"] == paid
    code, message = code_pay.query(out_trade_no=paid)
    assert json.loads(message)["trade_state"] == "REVOKED"


def test_refund_and_refund_query(sb: Sandbox) -> None:
    pay = client(sb, WeChatPayType.CODEPAY)
    out_trade_no = no()
    codepay(pay, sb, out_trade_no, codes(sb)["success"], total=1000)
    out_refund_no = "R" + no()
    code, message = pay.refund(
        out_refund_no=out_refund_no,
        amount={"refund": 400, "total": 1000, "currency": "CNY"},
        out_trade_no=out_trade_no,
        reason="少找零",
        notify_url=f"{sb.receiver.url}/notify/refund",
    )
    assert code == 200
    refund = json.loads(message)
    assert refund["status"] == "PROCESSING"
    assert refund["amount"]["refund"] == 400
    [callback] = sb.receiver.wait_for("/notify/refund")
    parsed = pay.callback(callback.headers, callback.body)
    assert parsed["event_type"] == "REFUND.SUCCESS"
    assert parsed["resource"]["refund_status"] == "SUCCESS"
    code, message = pay.query_refund(out_refund_no)
    assert code == 200
    assert json.loads(message)["status"] == "SUCCESS"
    code, message = pay.query(out_trade_no=out_trade_no)
    assert json.loads(message)["trade_state"] == "REFUND"
    code, message = pay.query_refund("R" + no())
    assert (code, json.loads(message)["code"]) == (404, "RESOURCE_NOT_EXISTS")


def _read_csv(data: bytes) -> list[list[str]]:
    """The bill read without our parser: csv, then the backtick each value carries."""
    return [
        [cell[1:] if cell.startswith("`") else cell for cell in row]
        for row in csv.reader(io.StringIO(data.decode("utf-8")))
        if row
    ]


def test_download_the_days_trade_and_fundflow_bills(sb: Sandbox) -> None:
    pay = client(sb, WeChatPayType.CODEPAY)
    first, second = no(), no()
    codepay(pay, sb, first, codes(sb)["success"], total=350)
    codepay(pay, sb, second, codes(sb)["success"], total=1205)
    pay.refund(
        out_refund_no="R" + first,
        amount={"refund": 50, "total": 350, "currency": "CNY"},
        out_trade_no=first,
    )
    time.sleep(0.2)  # the refund settles (scaled)
    today = utcnow().astimezone(wxp.CST).date().isoformat()
    code, message = pay.trade_bill(bill_date=today)
    assert code == 200
    answer = json.loads(message)
    assert answer["hash_type"] == "SHA1"
    assert answer["download_url"].startswith(f"{sb.base_url}/v3/billdownload/file?token=")
    code, content = pay.download_bill(answer["download_url"])
    assert code == 200
    data = gzip.decompress(content)
    assert hashlib.sha1(data).hexdigest() == answer["hash_value"]
    rows = _read_csv(data)
    assert rows[0] == wxp.TRADE_BILL_HEADER
    assert rows[-2] == wxp.TRADE_BILL_TOTALS_HEADER
    records = [dict(zip(rows[0], r, strict=True)) for r in rows[1:-2]]
    seen = [(r["商户订单号"], r["交易状态"], r["订单金额"], r["退款金额"]) for r in records]
    assert sorted(seen) == sorted(
        [(first, "SUCCESS", "3.50", "0.00"), (second, "SUCCESS", "12.05", "0.00"),
         (first, "REFUND", "0.00", "0.50")]
    )  # fmt: skip
    totals = dict(zip(rows[-2], rows[-1], strict=True))
    assert totals["总交易单数"] == "3"
    assert totals["订单总金额"] == "15.55"
    assert totals["退款总金额"] == "0.50"
    assert totals["手续费总金额"] == "0.09"  # 0.02 + 0.07 - 0.00

    code, message = pay.fundflow_bill(bill_date=today)
    assert code == 200
    answer = json.loads(message)
    code, content = pay.download_bill(answer["download_url"])
    data = gzip.decompress(content)
    assert hashlib.sha1(data).hexdigest() == answer["hash_value"]
    rows = _read_csv(data)
    assert rows[0] == wxp.FUNDFLOW_BILL_HEADER
    totals = dict(zip(rows[-2], rows[-1], strict=True))
    assert (totals["收入金额"], totals["收入笔数"]) == ("15.55", "2")


def test_a_bill_for_a_day_without_trades(sb: Sandbox) -> None:
    code, message = client(sb).trade_bill(bill_date="2020-01-01")
    assert (code, json.loads(message)["code"]) == (400, "NO_STATEMENT_EXIST")


def test_a_client_with_the_wrong_private_key_is_refused_sign_error(sb: Sandbox) -> None:
    from selfmart.sandbox.wechatpay.keys import new_rsa

    c = sb.credentials()
    pay = WeChatPay(
        wechatpay_type=WeChatPayType.NATIVE,
        mchid=c["merchant_id"],
        private_key=wxp.private_key_pem(new_rsa()),
        cert_serial_no=c["merchant_key_id"],
        appid=c["app_id"],
        apiv3_key=c["api_v3_key"],
        notify_url=f"{sb.receiver.url}/notify/pay",
        public_key=c["platform_public_key"],
        public_key_id=c["platform_public_key_id"],
    )
    pay._core._gate_way = sb.base_url
    code, message = pay.query(out_trade_no=no())
    assert (code, json.loads(message)["code"]) == (401, "SIGN_ERROR")


def test_certificate_mode_and_a_certificate_rotation(sb: Sandbox, tmp_path: Path) -> None:
    c = sb.credentials()
    (tmp_path / f"{c['platform_certificate_serial']}.pem").write_text(c["platform_certificate"])
    pay = client(sb, cert_dir=tmp_path)
    out_trade_no = no()
    code, _ = pay.pay(description="x", out_trade_no=out_trade_no, amount={"total": 10})
    assert code == 200
    sb.control("POST", f"/payments/{out_trade_no}/approve")
    [callback] = sb.receiver.wait_for("/notify/pay")
    assert callback.headers["Wechatpay-Serial"] == c["platform_certificate_serial"]
    assert pay.callback(callback.headers, callback.body)["resource"]["trade_state"] == "SUCCESS"

    rotated = sb.control("POST", "/rotate").json()
    # the answer is signed with a certificate the client has not seen: it downloads
    # /v3/certificates (AEAD-encrypted with the APIv3 key), finds it and believes the answer
    code, message = pay.query(out_trade_no=out_trade_no)
    assert code == 200
    assert json.loads(message)["trade_state"] == "SUCCESS"
    urls = [r["url"] for r in sb.control("GET", "/received").json()["requests"]]
    assert "/v3/certificates" in urls
    assert (tmp_path / f"{rotated['platform_certificate_serial']}.pem").is_file()
    serials = {cert.serial_number for cert in pay._core._certificates}  # what the client now trusts
    assert int(rotated["platform_certificate_serial"], 16) in serials
    assert int(c["platform_certificate_serial"], 16) in serials

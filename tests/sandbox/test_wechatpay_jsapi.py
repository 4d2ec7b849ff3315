"""The WeChat sandbox's official-account web authorisation and JSAPI payments, driven by the
unmodified `wechatpayv3` client (JSAPI type) and plain HTTP as a browser would: the code comes
back once, is good once; the JSAPI order needs the payer's openid; the payment sheet checks
`paySign` against the merchant's public key and pays, with the usual callback."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from wechatpayv3 import WeChatPayType

from tests.payments.wechatpay import support
from tests.payments.wechatpay.support import Sandbox
from tests.sandbox.test_wechatpay_thirdparty import client


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    yield from support.serve(tmp_path_factory.mktemp("wechatpay-jsapi"))


@pytest.fixture
def sb(sandbox: Sandbox) -> Sandbox:
    return support.fresh(sandbox)


def authorize(sb: Sandbox, **overrides: str) -> httpx.Response:
    c = sb.credentials()
    params = {
        "appid": c["app_id"],
        "redirect_uri": "https://shop.example/r/TOKEN?x=1",
        "response_type": "code",
        "scope": "snsapi_base",
        "state": "s1",
        **overrides,
    }
    return httpx.get(f"{sb.base_url}/connect/oauth2/authorize", params=params, timeout=10)


def code_of(sb: Sandbox) -> str:
    r = authorize(sb)
    assert r.status_code == 302, r.text
    target = urlsplit(r.headers["location"])
    assert (target.netloc, target.path) == ("shop.example", "/r/TOKEN")
    query = parse_qs(target.query)
    assert (query["x"], query["state"]) == (["1"], ["s1"])
    return query["code"][0]


def exchange(sb: Sandbox, code: str, **overrides: str) -> dict[str, Any]:
    c = sb.credentials()
    params = {
        "appid": c["app_id"],
        "secret": c["app_secret"],
        "code": code,
        "grant_type": "authorization_code",
        **overrides,
    }
    r = httpx.get(f"{sb.base_url}/sns/oauth2/access_token", params=params, timeout=10)
    assert r.status_code == 200, r.text  # WeChat answers its errors with 200 too
    body: dict[str, Any] = r.json()
    return body


def test_a_code_gives_the_openid_once(sb: Sandbox) -> None:
    code = code_of(sb)
    first = exchange(sb, code)
    assert set(first) == {"access_token", "expires_in", "refresh_token", "openid", "scope"}
    assert (first["expires_in"], first["scope"], len(first["openid"])) == (7200, "snsapi_base", 28)
    again = exchange(sb, code)
    assert again["errcode"] == 40163
    assert again["errmsg"].startswith("code been used")
    assert exchange(sb, "0" * 32)["errcode"] == 40029
    other = code_of(sb)
    assert exchange(sb, other, secret="f" * 32)["errcode"] == 40125
    assert exchange(sb, other, appid="wx0000000000000000")["errcode"] == 40013
    assert exchange(sb, other, grant_type="client_credential")["errcode"] == 40002
    # none of those refusals used the code up
    assert exchange(sb, other)["openid"] == first["openid"]


def test_a_bad_authorisation_link_is_refused(sb: Sandbox) -> None:
    assert authorize(sb, appid="wx0000000000000000").status_code == 400
    assert authorize(sb, response_type="token").status_code == 400
    assert authorize(sb, scope="snsapi_login").status_code == 400
    assert authorize(sb, redirect_uri="javascript:alert(1)").status_code == 400


def test_wechatpayv3_jsapi_order_paid_from_the_payment_sheet(sb: Sandbox) -> None:
    openid = exchange(sb, code_of(sb))["openid"]
    pay = client(sb, WeChatPayType.JSAPI)
    out_trade_no = "J" + uuid.uuid4().hex[:20]
    status, text = pay.pay(
        description="jsapi",
        out_trade_no=out_trade_no,
        amount={"total": 700},
        payer={"openid": openid},
    )
    assert status == 200, text
    prepay_id = json.loads(text)["prepay_id"]

    # what the page hands getBrandWCPayRequest, signed by the client's own `sign`
    c = sb.credentials()
    timestamp, nonce, package = str(int(time.time())), uuid.uuid4().hex, f"prepay_id={prepay_id}"
    sheet = {
        "appId": c["app_id"],
        "timeStamp": timestamp,
        "nonceStr": nonce,
        "package": package,
        "signType": "RSA",
        "paySign": pay.sign([c["app_id"], timestamp, nonce, package]),
    }
    forged = sb.control("POST", "/jsapi/pay", json={**sheet, "nonceStr": "other"})
    assert (forged.status_code, forged.json()["error"]) == (400, "bad_pay_sign")
    wrong_type = sb.control("POST", "/jsapi/pay", json={**sheet, "signType": "MD5"})
    assert wrong_type.status_code == 400
    paid = sb.control("POST", "/jsapi/pay", json=sheet)
    assert paid.status_code == 200, paid.text
    assert paid.json()["err_msg"] == "get_brand_wcpay_request:ok"
    assert sb.control("POST", "/jsapi/pay", json=sheet).status_code == 409

    status, text = pay.query(out_trade_no=out_trade_no)
    assert status == 200, text
    queried = json.loads(text)
    assert (queried["trade_state"], queried["trade_type"]) == ("SUCCESS", "JSAPI")
    assert queried["payer"]["openid"] == openid
    callback = sb.receiver.wait_for("/notify/pay")[0]
    resource = pay.callback(callback.headers, callback.body)  # verified and decrypted
    assert resource["event_type"] == "TRANSACTION.SUCCESS"
    assert resource["resource"]["out_trade_no"] == out_trade_no


def test_a_jsapi_order_needs_the_payers_openid(sb: Sandbox) -> None:
    pay = client(sb, WeChatPayType.JSAPI)
    status, text = pay.pay(
        description="jsapi", out_trade_no="J" + uuid.uuid4().hex[:20], amount={"total": 1},
        payer={"openid": ""},
    )  # fmt: skip
    assert (status, json.loads(text)["code"]) == (400, "PARAM_ERROR")


def test_the_customer_page_lists_a_jsapi_payment_and_pays_or_declines_it(sb: Sandbox) -> None:
    openid = exchange(sb, code_of(sb))["openid"]
    pay = client(sb, WeChatPayType.JSAPI)
    numbers = ["J" + uuid.uuid4().hex[:20] for _ in range(2)]
    for no, what in zip(numbers, ("豆浆", "油条"), strict=True):
        status, text = pay.pay(
            description=what, out_trade_no=no, amount={"total": 700}, payer={"openid": openid}
        )
        assert status == 200, text
    page = httpx.get(f"{sb.base_url}/_control/pay", timeout=10)
    assert page.status_code == 200
    for no in numbers:
        assert f"/_control/payments/{no}/approve" in page.text
        assert f"/_control/payments/{no}/decline" in page.text
    assert "JSAPI" in page.text

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    paid = httpx.post(f"{sb.base_url}/_control/payments/{numbers[0]}/approve", headers=form)
    assert paid.status_code == 303, paid.text
    declined = httpx.post(f"{sb.base_url}/_control/payments/{numbers[1]}/decline", headers=form)
    assert declined.status_code == 303, declined.text
    page = httpx.get(f"{sb.base_url}/_control/pay", timeout=10)
    assert "豆浆" not in page.text
    assert "油条" not in page.text

    status, text = pay.query(out_trade_no=numbers[0])
    assert (json.loads(text)["trade_state"], json.loads(text)["payer"]["openid"]) == (
        "SUCCESS",
        openid,
    )
    status, text = pay.query(out_trade_no=numbers[1])
    assert json.loads(text)["trade_state"] == "PAYERROR"
    callback = sb.receiver.wait_for("/notify/pay")[0]
    assert pay.callback(callback.headers, callback.body)["resource"]["out_trade_no"] == numbers[0]

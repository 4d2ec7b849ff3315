"""The WeChat Pay sandbox on the wire: the platform's answers to bad input (signed, with the
platform's codes), the callback retry schedule (compressed), the callback switches (twice,
late, out of order, bad signature), the next-call switches, the customer's page, the bill
files and the keys it keeps on disk."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from selfmart.kit.time import utcnow
from selfmart.payments.wechatpay import protocol as wxp
from selfmart.sandbox import wechatpay as sandbox_module
from selfmart.sandbox.wechatpay import state
from selfmart.sandbox.wechatpay.keys import load, new_rsa
from selfmart.sandbox.wechatpay.state import LATE_SECONDS, RETRY_SCHEDULE
from tests.payments.wechatpay import support
from tests.payments.wechatpay.support import TIME_SCALE, Sandbox
from tests.support import settings_for


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    yield from support.serve(tmp_path_factory.mktemp("wechatpay-wire"))


@pytest.fixture
def sb(sandbox: Sandbox) -> Sandbox:
    return support.fresh(sandbox)


def no() -> str:
    return "T" + uuid.uuid4().hex[:20]


def call(
    sb: Sandbox,
    method: str,
    target: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    key: Any = None,
    serial: str | None = None,
    timestamp: int | None = None,
    authorization: str | None = None,
    public_key_mode: bool = True,
) -> httpx.Response:
    """A merchant's request, signed as the protocol says (or not, as asked)."""
    c = sb.credentials()
    keys = load(sb.settings.payment_sandbox_dir)
    content = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if public_key_mode:
        headers["Wechatpay-Serial"] = c["platform_public_key_id"]
    headers["Authorization"] = (
        authorization
        if authorization is not None
        else wxp.authorization(
            mchid=c["merchant_id"],
            serial_no=serial or c["merchant_key_id"],
            key=key or keys.merchant_key,
            method=method,
            url=target,
            body=content,
            timestamp=str(timestamp or int(time.time())),
            nonce=wxp.nonce_str(),
        )
    )
    return httpx.request(method, sb.base_url + target, content=content, headers=headers, timeout=10)


def assert_platform_signed(sb: Sandbox, response: httpx.Response) -> None:
    c = sb.credentials()
    serial = response.headers["Wechatpay-Serial"]
    pem = {
        c["platform_public_key_id"]: c["platform_public_key"],
        c["platform_certificate_serial"]: c["platform_certificate"],
    }[serial]
    message = wxp.response_message(
        response.headers["Wechatpay-Timestamp"],
        response.headers["Wechatpay-Nonce"],
        response.content,
    )
    assert wxp.verify(wxp.load_public_key(pem), message, response.headers["Wechatpay-Signature"])
    assert response.headers["Request-ID"]


def native_body(sb: Sandbox, **changes: Any) -> dict[str, Any]:
    c = sb.credentials()
    body: dict[str, Any] = {
        "appid": c["app_id"],
        "mchid": c["merchant_id"],
        "description": "面包",
        "out_trade_no": no(),
        "notify_url": f"{sb.receiver.url}/notify/pay",
        "amount": {"total": 100, "currency": "CNY"},
    }
    body.update(changes)
    return body


def error(response: httpx.Response) -> tuple[int, str]:
    data = response.json()
    assert set(data) == {"code", "message"}
    return response.status_code, str(data["code"])


# -- the platform's answers to bad input ---------------------------------------------------------


def test_a_good_request_is_answered_and_signed_in_either_mode(sb: Sandbox) -> None:
    ok = call(sb, "POST", "/v3/pay/transactions/native", native_body(sb))
    assert ok.status_code == 200
    assert ok.headers["Wechatpay-Serial"] == sb.credentials()["platform_public_key_id"]
    assert_platform_signed(sb, ok)
    cert = call(sb, "POST", "/v3/pay/transactions/native", native_body(sb), public_key_mode=False)
    assert cert.status_code == 200
    assert cert.headers["Wechatpay-Serial"] == sb.credentials()["platform_certificate_serial"]
    assert_platform_signed(sb, cert)


@pytest.mark.parametrize(
    "bad",
    [
        {"authorization": ""},
        {"authorization": 'Bearer mchid="1"'},
        {"key": "stranger"},
        {"serial": "0123456789ABCDEF"},
        {"timestamp": int(time.time()) - 600},
    ],
    ids=["missing", "other-schema", "wrong-key", "wrong-serial", "stale"],
)
def test_a_bad_signature_is_401_sign_error_in_a_signed_answer(
    sb: Sandbox, bad: dict[str, Any]
) -> None:
    if bad.get("key") == "stranger":
        bad = {"key": new_rsa()}
    response = call(sb, "POST", "/v3/pay/transactions/native", native_body(sb), **bad)
    assert error(response) == (401, "SIGN_ERROR")
    assert_platform_signed(sb, response)
    assert sb.control("GET", "/payments").json() == []


def test_a_body_changed_after_signing_is_401(sb: Sandbox) -> None:
    c = sb.credentials()
    keys = load(sb.settings.payment_sandbox_dir)
    signed = json.dumps(native_body(sb)).encode()
    authorization = wxp.authorization(
        mchid=c["merchant_id"], serial_no=c["merchant_key_id"], key=keys.merchant_key,
        method="POST", url="/v3/pay/transactions/native", body=signed,
        timestamp=str(int(time.time())), nonce="N",
    )  # fmt: skip
    response = call(
        sb, "POST", "/v3/pay/transactions/native",
        raw=signed.replace(b'"total": 100', b'"total": 1'), authorization=authorization,
    )  # fmt: skip
    assert error(response) == (401, "SIGN_ERROR")


@pytest.mark.parametrize(
    ("change", "status", "code", "names"),
    [
        ({"amount": {"currency": "CNY"}}, 400, "PARAM_ERROR", "amount.total"),
        ({"amount": {"total": 0}}, 400, "PARAM_ERROR", "amount.total"),
        ({"amount": {"total": "1.00"}}, 400, "PARAM_ERROR", "amount.total"),
        ({"description": None}, 400, "PARAM_ERROR", "description"),
        ({"notify_url": "ftp://x"}, 400, "PARAM_ERROR", "notify_url"),
        ({"out_trade_no": "a b"}, 400, "PARAM_ERROR", "out_trade_no"),
        ({"appid": "wx0000000000000000"}, 400, "APPID_MCHID_NOT_MATCH", ""),
    ],
)
def test_bad_fields_are_400_with_the_platforms_code(
    sb: Sandbox, change: dict[str, Any], status: int, code: str, names: str
) -> None:
    body = {k: v for k, v in native_body(sb, **change).items() if v is not None}
    response = call(sb, "POST", "/v3/pay/transactions/native", body)
    assert error(response) == (status, code)
    assert names in response.json()["message"]
    assert_platform_signed(sb, response)


def test_an_unknown_path_or_method_is_the_platforms_signed_404(sb: Sandbox) -> None:
    for method, target in (("GET", "/v3/pay/transactions/native"), ("POST", "/v3/nothing/here")):
        response = call(sb, method, target, None if method == "GET" else {})
        assert error(response) == (404, "NOT_FOUND")
        assert_platform_signed(sb, response)
    unsigned = httpx.get(f"{sb.base_url}/v3/nothing", timeout=10)
    assert error(unsigned) == (401, "SIGN_ERROR")


def test_a_body_that_is_not_json_is_400_param_error(sb: Sandbox) -> None:
    response = call(sb, "POST", "/v3/pay/transactions/native", raw=b"{not json")
    assert error(response) == (400, "PARAM_ERROR")


def test_order_not_exist_and_duplicate_numbers(sb: Sandbox) -> None:
    mchid = sb.credentials()["merchant_id"]
    response = call(sb, "GET", f"/v3/pay/transactions/out-trade-no/{no()}?mchid={mchid}")
    assert error(response) == (404, "ORDER_NOT_EXIST")
    assert_platform_signed(sb, response)
    response = call(sb, "GET", f"/v3/pay/transactions/out-trade-no/{no()}")
    assert error(response) == (400, "PARAM_ERROR")
    body = native_body(sb)
    first = call(sb, "POST", "/v3/pay/transactions/native", body)
    again = call(sb, "POST", "/v3/pay/transactions/native", body)
    assert first.json() == again.json()
    changed = call(sb, "POST", "/v3/pay/transactions/native", {**body, "amount": {"total": 5}})
    assert error(changed) == (400, "INVALID_REQUEST")
    sb.control("POST", f"/payments/{body['out_trade_no']}/approve")
    paid = call(sb, "POST", "/v3/pay/transactions/native", body)
    assert error(paid) == (403, "ORDERPAID")


def test_an_unknown_public_key_id_is_refused(sb: Sandbox) -> None:
    c = sb.credentials()
    keys = load(sb.settings.payment_sandbox_dir)
    headers = {
        "Wechatpay-Serial": "PUB_KEY_ID_0000",
        "Authorization": wxp.authorization(
            mchid=c["merchant_id"], serial_no=c["merchant_key_id"], key=keys.merchant_key,
            method="GET", url="/v3/certificates", body=b"", timestamp=str(int(time.time())),
            nonce="N",
        ),
    }  # fmt: skip
    response = httpx.get(f"{sb.base_url}/v3/certificates", headers=headers, timeout=10)
    assert error(response) == (400, "PARAM_ERROR")


def test_certificates_are_served_encrypted_with_the_apiv3_key(sb: Sandbox) -> None:
    c = sb.credentials()
    response = call(sb, "GET", "/v3/certificates", public_key_mode=False)
    assert response.status_code == 200
    assert_platform_signed(sb, response)
    [item] = response.json()["data"]
    assert item["serial_no"] == c["platform_certificate_serial"]
    sealed = item["encrypt_certificate"]
    assert sealed["algorithm"] == "AEAD_AES_256_GCM"
    pem = wxp.aead_decrypt(
        c["api_v3_key"], sealed["nonce"], sealed["associated_data"], sealed["ciphertext"]
    )
    assert pem.decode() == c["platform_certificate"]


# -- next-call switches -------------------------------------------------------------------------


def test_next_call_switches(sb: Sandbox) -> None:
    c = sb.credentials()
    codes = c["test_auth_codes"]

    def codepay(auth_code: str) -> httpx.Response:
        return call(
            sb, "POST", "/v3/pay/transactions/codepay",
            {"appid": c["app_id"], "mchid": c["merchant_id"], "description": "x",
             "out_trade_no": no(), "amount": {"total": 1},
             "payer": {"auth_code": auth_code}, "scene_info": {"store_info": {"out_id": "S1"}}},
        )  # fmt: skip

    sb.control("POST", "/next", json={"action": "user_paying"})
    # a call the switch means nothing to leaves it for the next payment-code payment
    mchid = c["merchant_id"]
    assert (
        call(sb, "GET", f"/v3/pay/transactions/out-trade-no/{no()}?mchid={mchid}").status_code
        == 404
    )
    assert error(codepay(codes["success"])) == (202, "USERPAYING")
    sb.control("POST", "/next", json={"action": "decline"})
    assert error(codepay(codes["success"])) == (403, "TRADE_ERROR")
    sb.control("POST", "/next", json={"action": "error_500"})
    assert error(codepay(codes["success"])) == (500, "SYSTEM_ERROR")
    sb.control("POST", "/next", json={"action": "timeout", "seconds": 0.3})
    started = time.monotonic()
    assert codepay(codes["success"]).status_code == 200
    assert time.monotonic() - started >= 0.3
    assert codepay(codes["success"]).status_code == 200  # one call each
    assert error(codepay("999")) == (400, "PARAM_ERROR")
    received = sb.control("GET", "/received").json()["requests"]
    assert [r["status"] for r in received] == [404, 202, 403, 500, 200, 200, 400]


# -- callbacks ----------------------------------------------------------------------------------


def _pay_qr(sb: Sandbox, path: str = "/notify/pay") -> str:
    body = native_body(sb, notify_url=f"{sb.receiver.url}{path}")
    assert call(sb, "POST", "/v3/pay/transactions/native", body).status_code == 200
    assert sb.control("POST", f"/payments/{body['out_trade_no']}/approve").status_code == 200
    return str(body["out_trade_no"])


def test_the_retry_schedule_until_answered(sb: Sandbox) -> None:
    # 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h after the first attempt
    assert RETRY_SCHEDULE == (
        15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600
    )  # fmt: skip
    sb.receiver.script["/notify/never"] = [500]
    _pay_qr(sb, "/notify/never")
    calls = sb.receiver.wait_for("/notify/never", 16, timeout=30)
    gaps = [b.at - a.at for a, b in zip(calls, calls[1:], strict=False)]
    for gap, scheduled in zip(gaps, RETRY_SCHEDULE, strict=True):
        assert gap >= scheduled / TIME_SCALE * 0.9
    # the longest waits are visibly longer than the shortest (6h vs 15s, scaled)
    assert gaps[-1] > gaps[0]
    time.sleep(0.5)
    assert len(sb.receiver.at("/notify/never")) == 16  # gives up after the schedule
    [delivery] = sb.control("GET", "/received").json()["callbacks"]
    assert delivery["answered"] is False
    assert [a["status"] for a in delivery["attempts"]] == [500] * 16

    sb.receiver.script["/notify/late"] = [500, 503, 404, 200]
    _pay_qr(sb, "/notify/late")
    sb.receiver.wait_for("/notify/late", 4)
    time.sleep(0.3)
    assert len(sb.receiver.at("/notify/late")) == 4  # answered 200: no more attempts
    delivery = sb.control("GET", "/received").json()["callbacks"][-1]
    assert delivery["answered"] is True


def test_an_answer_slower_than_the_platform_waits_is_a_failed_attempt(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the platform waits 5 s for an answer; shortened here as the retry delays are
    assert state.CALLBACK_TIMEOUT == 5.0
    monkeypatch.setattr(state, "CALLBACK_TIMEOUT", 0.2)
    sb.receiver.delays["/notify/slow"] = [0.5]
    _pay_qr(sb, "/notify/slow")
    sb.receiver.wait_for("/notify/slow", 2)
    time.sleep(0.6)
    [delivery] = sb.control("GET", "/received").json()["callbacks"]
    first, second = delivery["attempts"][:2]
    assert first["error"] == "ReadTimeout"
    assert second["status"] == 204
    assert delivery["answered"] is True
    assert len(delivery["attempts"]) == 2


def test_a_callback_sent_twice_has_one_id(sb: Sandbox) -> None:
    sb.control("POST", "/callbacks", json={"mode": "twice"})
    _pay_qr(sb)
    first, second = sb.receiver.wait_for("/notify/pay", 2)
    assert json.loads(first.body)["id"] == json.loads(second.body)["id"]
    assert first.body == second.body


def test_a_late_callback(sb: Sandbox) -> None:
    sb.control("POST", "/callbacks", json={"mode": "late"})
    started = time.monotonic()
    _pay_qr(sb)
    [late] = sb.receiver.wait_for("/notify/pay")
    assert late.at - started >= LATE_SECONDS / TIME_SCALE


def test_callbacks_out_of_order(sb: Sandbox) -> None:
    sb.control("POST", "/callbacks", json={"mode": "out_of_order"})
    first = _pay_qr(sb)
    time.sleep(0.1)
    assert sb.receiver.at("/notify/pay") == []  # held back
    second = _pay_qr(sb)
    calls = sb.receiver.wait_for("/notify/pay", 2)
    keys = load(sb.settings.payment_sandbox_dir)

    def out_trade_no(body: bytes) -> str:
        resource = json.loads(body)["resource"]
        plain = wxp.aead_decrypt(
            keys.api_v3_key, resource["nonce"], resource["associated_data"], resource["ciphertext"]
        )
        return str(json.loads(plain)["out_trade_no"])

    assert [out_trade_no(c.body) for c in calls] == [second, first]


def test_a_callback_with_a_bad_signature_then_good_ones(sb: Sandbox) -> None:
    sb.control("POST", "/callbacks", json={"mode": "bad_signature"})
    # a merchant that checks signatures refuses the first and takes the retry
    sb.receiver.script["/notify/pay"] = [401, 204]
    _pay_qr(sb)
    bad, good = sb.receiver.wait_for("/notify/pay", 2)
    c = sb.credentials()
    key = wxp.load_public_key(c["platform_public_key"])

    def verifies(h: dict[str, str], body: bytes) -> bool:
        message = wxp.response_message(h["Wechatpay-Timestamp"], h["Wechatpay-Nonce"], body)
        return wxp.verify(key, message, h["Wechatpay-Signature"])

    assert not verifies(bad.headers, bad.body)
    assert verifies(good.headers, good.body)


def test_callback_body_is_the_platforms(sb: Sandbox) -> None:
    out_trade_no = _pay_qr(sb)
    [callback] = sb.receiver.wait_for("/notify/pay")
    document = json.loads(callback.body)
    assert set(document) == {
        "id",
        "create_time",
        "resource_type",
        "event_type",
        "summary",
        "resource",
    }
    assert document["event_type"] == "TRANSACTION.SUCCESS"
    assert set(document["resource"]) == {
        "original_type", "algorithm", "ciphertext", "associated_data", "nonce"
    }  # fmt: skip
    wxp.parse_rfc3339(document["create_time"])
    assert callback.headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    assert out_trade_no in str(sb.control("GET", "/received").json()["callbacks"])


# -- the customer's page ------------------------------------------------------------------------


def test_the_page_lists_pending_payments_and_its_buttons_work(sb: Sandbox) -> None:
    body = native_body(sb, description="酸奶")
    call(sb, "POST", "/v3/pay/transactions/native", body)
    page = httpx.get(f"{sb.base_url}/_control/pay", timeout=10)
    assert page.status_code == 200
    assert "酸奶" in page.text
    assert f"/_control/payments/{body['out_trade_no']}/approve" in page.text
    clicked = httpx.post(
        f"{sb.base_url}/_control/payments/{body['out_trade_no']}/approve",
        data={},
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert clicked.status_code == 303
    assert "酸奶" not in httpx.get(f"{sb.base_url}/_control/pay", timeout=10).text
    sb.receiver.wait_for("/notify/pay")
    again = sb.control("POST", f"/payments/{body['out_trade_no']}/decline")
    assert again.status_code == 409
    assert (
        sb.control("GET", "/payments?state=SUCCESS").json()[0]["out_trade_no"]
        == body["out_trade_no"]
    )
    assert sb.control("POST", f"/payments/{no()}/approve").status_code == 404


# -- bills --------------------------------------------------------------------------------------


def test_bill_without_compression_and_bad_dates(sb: Sandbox) -> None:
    c = sb.credentials()
    codepay = {
        "appid": c["app_id"], "mchid": c["merchant_id"], "description": "x",
        "out_trade_no": no(), "amount": {"total": 250},
        "payer": {"auth_code": c["test_auth_codes"]["success"]},
        "scene_info": {"store_info": {"out_id": "S1"}},
    }  # fmt: skip
    assert call(sb, "POST", "/v3/pay/transactions/codepay", codepay).status_code == 200
    today = utcnow().astimezone(wxp.CST).date().isoformat()
    answer = call(sb, "GET", f"/v3/bill/tradebill?bill_date={today}&bill_type=ALL")
    assert answer.status_code == 200
    assert_platform_signed(sb, answer)
    url = answer.json()["download_url"]
    target = url[len(sb.base_url) :]
    data = call(sb, "GET", target).content
    with pytest.raises(gzip.BadGzipFile):
        gzip.decompress(data)
    bill = wxp.parse_bill(data)
    assert wxp.bill_hash(data) == answer.json()["hash_value"]
    assert bill.summary()["订单总金额"] == "2.50"
    assert bill.records()[0]["商户订单号"] == codepay["out_trade_no"]
    # the download is authorised like any call
    assert httpx.get(url, timeout=10).status_code == 401
    unknown = call(sb, "GET", "/v3/billdownload/file?token=nope")
    assert error(unknown) == (404, "RESOURCE_NOT_EXISTS")
    bad = call(sb, "GET", "/v3/bill/tradebill?bill_date=2026-13-01")
    assert error(bad) == (400, "PARAM_ERROR")
    future = call(sb, "GET", "/v3/bill/tradebill?bill_date=2999-01-01")
    assert error(future) == (400, "INVALID_REQUEST")


# -- keys on disk -------------------------------------------------------------------------------


def test_credentials_are_generated_once_per_directory(tmp_path: Path) -> None:
    settings = settings_for("sqlite+aiosqlite://", payment_sandbox_dir=tmp_path)
    first = sandbox_module.credentials(settings)
    assert first == sandbox_module.credentials(settings)
    assert (tmp_path / "wechatpay" / "account.json").is_file()
    assert first["base_url"] == "http://127.0.0.1:8000/sandbox/wechatpay"
    assert set(first["test_auth_codes"]) == {
        "success", "user_paying", "declined", "insufficient_funds", "timeout"
    }  # fmt: skip
    assert first["platform_public_key_id"].startswith("PUB_KEY_ID_")
    assert len(first["api_v3_key"]) == 32
    assert (
        wxp.certificate_serial(first["platform_certificate"])
        == first["platform_certificate_serial"]
    )
    other = sandbox_module.credentials(
        settings_for("sqlite+aiosqlite://", payment_sandbox_dir=tmp_path / "b")
    )
    assert other["merchant_private_key"] != first["merchant_private_key"]

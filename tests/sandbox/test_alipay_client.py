"""The Alipay sandbox driven by python-alipay-sdk (PyPI, unchanged but for its gateway URL) over
real HTTP, and our account against the same server where only real HTTP tells (timeouts)."""

from __future__ import annotations

import asyncio
import io
import json
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alipay import AliPay
from alipay.exceptions import AliPayException
from fastapi import FastAPI

from selfmart.kit.time import utcnow
from selfmart.payments.alipay import AlipayAccount
from selfmart.payments.alipay import protocol as p
from selfmart.payments.platform import ChannelConfig, PayRequest, PlatformError
from selfmart.sandbox import alipay as sandbox_module
from selfmart.sandbox.alipay.gateway import notification_params
from selfmart.sandbox.alipay.state import Trade, sandbox_for
from tests.payments.alipay.support import sandbox_app, serve


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return sandbox_app(tmp_path_factory.mktemp("alipay-client"), time_scale=1_000_000)


@pytest.fixture(scope="module")
def server(app: FastAPI) -> Iterator[str]:
    with serve(app) as url:
        yield url


@pytest.fixture(scope="module")
def creds(app: FastAPI) -> dict[str, Any]:
    return sandbox_module.credentials(app.state.settings)


def client(server: str, creds: dict[str, Any], private_key: str | None = None) -> AliPay:
    alipay = AliPay(
        appid=creds["app_id"],
        app_notify_url=None,
        app_private_key_string=private_key or creds["merchant_private_key"],
        alipay_public_key_string=creds["platform_public_key"],
        sign_type="RSA2",
        debug=False,
    )
    # The only change: python-alipay-sdk has no constructor argument for the gateway; its
    # `debug` flag picks between Alipay's two hosts, so the attribute is set directly.
    alipay._gateway = f"{server}/sandbox/alipay/gateway.do"
    return alipay


_n = 0


def out_no() -> str:
    global _n
    _n += 1
    return f"SDK{utcnow():%H%M%S%f}{_n:03d}"


def test_precreate_query_close(server: str, creds: dict[str, Any]) -> None:
    alipay = client(server, creds)
    no = out_no()
    made = alipay.api_alipay_trade_precreate(subject="可乐", out_trade_no=no, total_amount="3.50")
    assert made["code"] == "10000"
    assert made["qr_code"].startswith(server)
    queried = alipay.api_alipay_trade_query(out_trade_no=no)
    assert (queried["trade_status"], queried["total_amount"]) == ("WAIT_BUYER_PAY", "3.50")
    closed = alipay.api_alipay_trade_close(out_trade_no=no)
    assert closed["code"] == "10000"
    assert alipay.api_alipay_trade_query(out_trade_no=no)["trade_status"] == "TRADE_CLOSED"
    # the QR's page answers over plain HTTP too
    with urllib.request.urlopen(made["qr_code"]) as page:  # noqa: S310 - loopback
        assert "TRADE_CLOSED" in page.read().decode()


def test_pay_by_code_every_test_code(server: str, creds: dict[str, Any]) -> None:
    alipay = client(server, creds)
    codes = creds["test_auth_codes"]
    paid = alipay.api_alipay_trade_pay(
        out_no(), "bar_code", codes["success"], "可乐", total_amount="12.34"
    )
    assert (paid["code"], paid["total_amount"]) == ("10000", "12.34")
    waiting = alipay.api_alipay_trade_pay(
        out_no(), "bar_code", codes["user_paying"], "x", total_amount="1.00"
    )
    assert waiting["code"] == "10003"
    declined = alipay.api_alipay_trade_pay(
        out_no(), "bar_code", codes["declined"], "x", total_amount="1.00"
    )
    assert (declined["code"], declined["sub_code"]) == ("40004", "ACQ.PAYMENT_AUTH_CODE_INVALID")
    poor = alipay.api_alipay_trade_pay(
        out_no(), "bar_code", codes["insufficient_funds"], "x", total_amount="1.00"
    )
    assert poor["sub_code"] == "ACQ.BUYER_BALANCE_NOT_ENOUGH"
    no = out_no()
    unknown = alipay.api_alipay_trade_pay(no, "bar_code", codes["timeout"], "x", total_amount="2")
    assert (unknown["code"], unknown["sub_code"]) == ("20000", "ACQ.SYSTEM_ERROR")
    assert alipay.api_alipay_trade_query(out_trade_no=no)["trade_status"] == "TRADE_SUCCESS"


def test_cancel_refund_refund_query(server: str, creds: dict[str, Any]) -> None:
    alipay = client(server, creds)
    no = out_no()
    alipay.api_alipay_trade_pay(
        no, "bar_code", creds["test_auth_codes"]["success"], "水", total_amount="10.00"
    )
    refunded = alipay.api_alipay_trade_refund("4.00", out_trade_no=no, out_request_no=no + "R1")
    assert (refunded["code"], refunded["fund_change"], refunded["refund_fee"]) == (
        "10000",
        "Y",
        "4.00",
    )
    found = alipay.api_alipay_trade_fastpay_refund_query(no + "R1", out_trade_no=no)
    assert (found["refund_amount"], found["refund_status"]) == ("4.00", "REFUND_SUCCESS")
    absent = alipay.api_alipay_trade_fastpay_refund_query(no + "R2", out_trade_no=no)
    assert absent["code"] == "10000"
    assert "refund_amount" not in absent
    # cancel after a refund is refused; cancel of a fresh paid trade refunds it
    assert alipay.api_alipay_trade_cancel(out_trade_no=no)["code"] == "40004"
    other = out_no()
    alipay.api_alipay_trade_pay(
        other, "bar_code", creds["test_auth_codes"]["success"], "水", total_amount="1.00"
    )
    cancelled = alipay.api_alipay_trade_cancel(out_trade_no=other)
    assert (cancelled["code"], cancelled["action"], cancelled["retry_flag"]) == (
        "10000",
        "refund",
        "N",
    )


def test_bill_download_url_and_file(server: str, creds: dict[str, Any]) -> None:
    alipay = client(server, creds)
    no = out_no()
    alipay.api_alipay_trade_pay(
        no, "bar_code", creds["test_auth_codes"]["success"], "面包", total_amount="8.80"
    )
    today = utcnow().astimezone(p.BEIJING).date()
    answer = alipay.server_api(
        "alipay.data.dataservice.bill.downloadurl.query",
        biz_content={"bill_type": "trade", "bill_date": today.isoformat()},
    )
    assert answer["code"] == "10000"
    with urllib.request.urlopen(answer["bill_download_url"]) as response:  # noqa: S310
        archive = response.read()
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        assert all(name.endswith(".csv") for name in z.namelist())
    bill = p.parse_bill(archive)
    assert [r.amount_fen for r in bill.rows if r.out_trade_no == no] == [880]
    empty = alipay.server_api(
        "alipay.data.dataservice.bill.downloadurl.query",
        biz_content={"bill_type": "trade", "bill_date": "2020-01-01"},
    )
    assert (empty["code"], empty["sub_code"]) == ("40004", "isp.bill_not_exist")


def test_wap_pay_url_opens_the_cashier(server: str, creds: dict[str, Any]) -> None:
    alipay = client(server, creds)
    no = out_no()
    query = alipay.api_alipay_trade_wap_pay(
        subject="手机支付", out_trade_no=no, total_amount="6.66", return_url="https://shop.test/r"
    )
    with urllib.request.urlopen(f"{server}/sandbox/alipay/gateway.do?{query}") as page:  # noqa: S310
        assert "6.66" in page.read().decode()
    approve = urllib.request.Request(
        f"{server}/sandbox/alipay/_control/trades/{no}/approve", method="POST"
    )
    with urllib.request.urlopen(approve) as decided:  # noqa: S310
        assert json.loads(decided.read())["trade_status"] == "TRADE_SUCCESS"
    assert alipay.api_alipay_trade_query(out_trade_no=no)["trade_status"] == "TRADE_SUCCESS"


def test_the_sdk_with_the_wrong_key_is_refused(server: str, creds: dict[str, Any]) -> None:
    other_private, _ = p.generate_key_pair()
    alipay = client(server, creds, private_key=other_private)
    # the gateway's refusal is unsigned, which the SDK reports as an error
    with pytest.raises(AliPayException) as caught:
        alipay.api_alipay_trade_query(out_trade_no="X1")
    assert "isv.invalid-signature" in str(caught.value)


def test_the_sdk_accepts_the_sandboxs_notifications(app: FastAPI, creds: dict[str, Any]) -> None:
    sandbox = sandbox_for(app.state.settings)
    now = utcnow()
    trade = Trade("N1", "2026120622001400000000000009", "x", 100, "qr", "TRADE_SUCCESS", now)
    trade.paid_at = now
    params = p.sign_notification(notification_params(sandbox, trade), sandbox.alipay_private_key)
    data = dict(params)
    signature = data.pop("sign")
    assert client("http://unused", creds).verify(data, signature)
    data["total_amount"] = "0.01"
    assert not client("http://unused", creds).verify(data, signature)


async def test_our_account_over_http_times_out(server: str, creds: dict[str, Any]) -> None:
    config = ChannelConfig(
        channel="alipay",
        account_id=1,
        base_url=f"{server}/sandbox/alipay",
        merchant_id=creds["merchant_id"],
        app_id=creds["app_id"],
        private_key_pem=creds["merchant_private_key"],
        private_key_id="",
        platform_public_keys={"": creds["platform_public_key"]},
    )
    async with httpx.AsyncClient() as plain:
        await plain.post(
            f"{server}/sandbox/alipay/_control/next", json={"action": "timeout", "seconds": 1}
        )
    no = out_no()
    async with httpx.AsyncClient(timeout=0.3) as hurried:
        account = AlipayAccount(config, http=hurried)
        with pytest.raises(PlatformError):
            await account.pay(
                PayRequest(
                    out_trade_no=no,
                    amount_fen=100,
                    description="x",
                    mode="code",
                    auth_code=creds["test_auth_codes"]["success"],
                )
            )
    await asyncio.sleep(2.0)  # the gateway waits 1 s, then goes on
    # the gateway went on after the client gave up: the payment is there, found by query
    async with httpx.AsyncClient() as plain:
        assert (await AlipayAccount(config, http=plain).query(no)).status == "succeeded"
    # with no client handed in, the account opens its own
    assert (await AlipayAccount(config).query(no)).status == "succeeded"


def test_request_log_shows_what_the_sdk_sent(server: str, creds: dict[str, Any]) -> None:
    client(server, creds).api_alipay_trade_precreate(
        subject="x", out_trade_no=out_no(), total_amount="3.50"
    )
    with urllib.request.urlopen(  # noqa: S310
        f"{server}/sandbox/alipay/_control/requests?method=alipay.trade.precreate"
    ) as response:
        sent = json.loads(response.read())
    assert sent
    params = sent[-1]["params"]
    assert params["sign_type"] == "RSA2"
    assert json.loads(params["biz_content"])["total_amount"] == "3.50"


def test_sandbox_keys_live_in_the_configured_directory(app: FastAPI) -> None:
    # Keys are made on first use; under xdist this test may be its module's first on a worker.
    sandbox_module.credentials(app.state.settings)
    directory: Path = app.state.settings.payment_sandbox_dir
    assert (directory / "alipay" / "account.json").exists()
    assert oct((directory / "alipay" / "account.json").stat().st_mode)[-3:] == "600"


def test_the_customer_page_lists_waiting_trades_and_pays_or_declines(
    server: str, creds: dict[str, Any]
) -> None:
    """`/_control/pay`: a person at `make run` plays the buyer of a QR or phone payment."""
    alipay = client(server, creds)
    qr, phone = out_no(), out_no()
    alipay.api_alipay_trade_precreate(subject="酸奶", out_trade_no=qr, total_amount="4.20")
    query = alipay.api_alipay_trade_wap_pay(
        subject="面包", out_trade_no=phone, total_amount="7.00", return_url="https://shop.test/r"
    )
    httpx.get(f"{server}/sandbox/alipay/gateway.do?{query}", timeout=30)  # the phone opens it
    base = f"{server}/sandbox/alipay/_control"
    page = httpx.get(f"{base}/pay", timeout=30).text
    assert "¥4.20" in page
    assert "¥7.00" in page
    for no in (qr, phone):
        assert f"/_control/trades/{no}/approve" in page
        assert f"/_control/trades/{no}/decline" in page
    back = {"return_url": f"{base}/pay"}
    paid = httpx.post(f"{base}/trades/{qr}/approve", data=back, timeout=30)
    assert (paid.status_code, paid.headers["location"]) == (303, f"{base}/pay")
    httpx.post(f"{base}/trades/{phone}/decline", data=back, timeout=30)
    assert alipay.api_alipay_trade_query(out_trade_no=qr)["trade_status"] == "TRADE_SUCCESS"
    assert alipay.api_alipay_trade_query(out_trade_no=phone)["trade_status"] == "TRADE_CLOSED"
    page = httpx.get(f"{base}/pay", timeout=30).text
    assert qr not in page
    assert phone not in page

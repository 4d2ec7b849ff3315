"""The payment sandboxes keep their trades under `payment_sandbox_dir`: a trade made before a
restart (or by `seed-demo` before `selfmart serve` starts) is queried, refunded and billed by
a sandbox rebuilt from the same directory, driven by the same third-party clients as the other
sandbox tests (wechatpayv3, python-alipay-sdk; our own account for UnionPay, which has none)."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from alipay import AliPay
from fastapi import FastAPI
from wechatpayv3 import WeChatPay, WeChatPayType

from selfmart.kit.time import utcnow
from selfmart.payments.alipay import protocol as p
from selfmart.payments.platform import ChannelConfig, PayRequest, RefundSpec
from selfmart.payments.unionpay import UnionPayAccount
from selfmart.payments.unionpay import protocol as u
from selfmart.payments.wechatpay import protocol as wxp
from selfmart.sandbox import alipay as alipay_sandbox
from selfmart.sandbox import store
from selfmart.sandbox import unionpay as unionpay_sandbox
from selfmart.sandbox import wechatpay as wechat_sandbox
from selfmart.sandbox.alipay import state as alipay_state
from selfmart.sandbox.unionpay import state as unionpay_state
from selfmart.sandbox.wechatpay.state import STATE
from tests.payments.alipay.support import serve
from tests.support import settings_for

#: nobody listens there: callbacks the sandbox sends are not what these tests look at
NOWHERE = "http://127.0.0.1:9/unused"


def sandbox_app(directory: Path, time_scale: float = 1000.0) -> FastAPI:
    """Only the three sandboxes on `directory` (the whole app's first request is slow to
    route; a restart here is a new one of these)."""
    app = FastAPI()
    app.state.settings = settings_for(
        "sqlite+aiosqlite://",
        payment_sandbox=True,
        payment_sandbox_dir=directory,
        payment_sandbox_time_scale=time_scale,
    )
    app.include_router(wechat_sandbox.router, prefix="/sandbox/wechatpay")
    app.include_router(alipay_sandbox.router, prefix="/sandbox/alipay")
    app.include_router(unionpay_sandbox.router, prefix="/sandbox/unionpay")
    return app


def _wechat_client(app: FastAPI, url: str) -> Any:
    c = wechat_sandbox.credentials(app.state.settings)
    pay = WeChatPay(
        wechatpay_type=WeChatPayType.CODEPAY,
        mchid=c["merchant_id"],
        private_key=c["merchant_private_key"],
        cert_serial_no=c["merchant_key_id"],
        appid=c["app_id"],
        apiv3_key=c["api_v3_key"],
        notify_url=NOWHERE,
        public_key=c["platform_public_key"],
        public_key_id=c["platform_public_key_id"],
    )
    pay._core._gate_way = f"{url}/sandbox/wechatpay"  # the one change: no base-URL parameter
    return pay


def test_wechat_trade_survives_a_restart(tmp_path: Path) -> None:
    out_trade_no = "T" + uuid.uuid4().hex[:20]
    app = sandbox_app(tmp_path)
    with serve(app) as url:
        pay = _wechat_client(app, url)
        code, message = pay.pay(
            description="可乐 x1",
            out_trade_no=out_trade_no,
            amount={"total": 1000, "currency": "CNY"},
            payer={
                "auth_code": wechat_sandbox.credentials(app.state.settings)["test_auth_codes"][
                    "success"
                ]
            },
            scene_info={"store_info": {"out_id": "S001"}, "device_ip": "10.0.0.8"},
            pay_type=WeChatPayType.CODEPAY,
        )
        assert (code, json.loads(message)["trade_state"]) == (200, "SUCCESS")
        assert (tmp_path / "wechatpay" / store.FILE_NAME).is_file()
    STATE.unbind()  # the process ends: nothing of the trade is left in memory
    assert not STATE.transactions

    app = sandbox_app(tmp_path)
    with serve(app) as url:  # the same directory, a new server
        pay = _wechat_client(app, url)
        code, message = pay.query(out_trade_no=out_trade_no)
        assert code == 200
        found = json.loads(message)
        assert (found["trade_state"], found["amount"]["total"]) == ("SUCCESS", 1000)
        code, message = pay.refund(
            out_refund_no="R" + out_trade_no,
            amount={"refund": 400, "total": 1000, "currency": "CNY"},
            out_trade_no=out_trade_no,
        )
        assert (code, json.loads(message)["status"]) == (200, "PROCESSING")
        deadline = time.monotonic() + 10
        while json.loads(pay.query_refund("R" + out_trade_no)[1])["status"] != "SUCCESS":
            assert time.monotonic() < deadline, "the refund did not settle"
            time.sleep(0.05)
        today = utcnow().astimezone(wxp.CST).date().isoformat()
        code, message = pay.trade_bill(bill_date=today)
        assert code == 200
        code, content = pay.download_bill(json.loads(message)["download_url"])
        bill = gzip.decompress(content).decode()
        assert f"`{out_trade_no}" in bill
    STATE.unbind()
    app = sandbox_app(tmp_path)
    with serve(app) as url:  # the refund was kept too
        code, message = _wechat_client(app, url).query_refund("R" + out_trade_no)
        assert (code, json.loads(message)["status"]) == (200, "SUCCESS")
    STATE.unbind()


def _alipay_client(url: str, creds: dict[str, Any]) -> AliPay:
    client = AliPay(
        appid=creds["app_id"],
        app_notify_url=None,
        app_private_key_string=creds["merchant_private_key"],
        alipay_public_key_string=creds["platform_public_key"],
        sign_type="RSA2",
        debug=False,
    )
    client._gateway = f"{url}/sandbox/alipay/gateway.do"  # the one change, as elsewhere
    return client


def test_alipay_trade_survives_a_restart(tmp_path: Path) -> None:
    no = "A" + uuid.uuid4().hex[:20]
    app = sandbox_app(tmp_path, time_scale=1_000_000)
    creds = alipay_sandbox.credentials(app.state.settings)
    with serve(app) as url:
        paid = _alipay_client(url, creds).api_alipay_trade_pay(
            no, "bar_code", creds["test_auth_codes"]["success"], "水", total_amount="10.00"
        )
        assert paid["code"] == "10000"
    alipay_state.forget(app.state.settings)

    app = sandbox_app(tmp_path, time_scale=1_000_000)
    assert alipay_sandbox.credentials(app.state.settings) == creds
    with serve(app) as url:
        client = _alipay_client(url, creds)
        found = client.api_alipay_trade_query(out_trade_no=no)
        assert (found["trade_status"], found["total_amount"]) == ("TRADE_SUCCESS", "10.00")
        refunded = client.api_alipay_trade_refund("4.00", out_trade_no=no, out_request_no=no + "R")
        assert (refunded["code"], refunded["refund_fee"]) == ("10000", "4.00")
    alipay_state.forget(app.state.settings)

    app = sandbox_app(tmp_path, time_scale=1_000_000)
    with serve(app) as url:
        client = _alipay_client(url, creds)
        found = client.api_alipay_trade_fastpay_refund_query(no + "R", out_trade_no=no)
        assert (found["refund_amount"], found["refund_status"]) == ("4.00", "REFUND_SUCCESS")
        today = utcnow().astimezone(p.BEIJING).date()
        answer = client.server_api(
            "alipay.data.dataservice.bill.downloadurl.query",
            biz_content={"bill_type": "trade", "bill_date": today.isoformat()},
        )
        archive = httpx.get(answer["bill_download_url"], timeout=10).content
        rows = [r for r in p.parse_bill(archive).rows if r.out_trade_no == no]
        assert 1000 in {r.amount_fen for r in rows}
    alipay_state.forget(app.state.settings)


def _unionpay_account(app: Any, http: httpx.AsyncClient) -> UnionPayAccount:
    creds: dict[str, Any] = unionpay_sandbox.credentials(app.state.settings)
    return UnionPayAccount(
        ChannelConfig(
            channel="card",
            account_id=1,
            base_url="http://testserver/sandbox/unionpay",
            merchant_id=creds["merchant_id"],
            app_id="",
            private_key_pem=creds["merchant_private_key"],
            private_key_id=creds["merchant_key_id"],
            platform_public_keys={creds["platform_public_key_id"]: creds["platform_public_key"]},
            notify_url=NOWHERE,
            extra={"encrypt_cert": creds["encrypt_certificate"]},
        ),
        http=http,
    )


async def test_unionpay_transaction_survives_a_restart(tmp_path: Path) -> None:
    no = f"UP{utcnow():%H%M%S%f}"
    started = utcnow().replace(microsecond=0)
    app = sandbox_app(tmp_path, time_scale=1000)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        request = PayRequest(
            out_trade_no=no,
            amount_fen=1000,
            description="",
            mode="card",
            auth_code=unionpay_sandbox.credentials(app.state.settings)["test_auth_codes"][
                "success"
            ],
            started_at=started,
        )
        assert (await _unionpay_account(app, http).pay(request)).status == "succeeded"
    unionpay_state.forget(app.state.settings)

    app = sandbox_app(tmp_path, time_scale=1000)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        account = _unionpay_account(app, http)  # a new account: it remembers nothing either
        found = await account.query(no, started_at=started)
        assert (found.status, found.amount_fen) == ("succeeded", 1000)
        refund = await account.refund(
            RefundSpec(
                out_trade_no=no,
                out_refund_no=no + "R",
                total_fen=1000,
                amount_fen=400,
                transaction_id=found.channel_txn_id,
                started_at=started + timedelta(seconds=5),
            )
        )
        assert refund.status in {"pending", "succeeded"}
        bill = await account.download_bill(utcnow().astimezone(u.BEIJING).date())
        assert bill is not None
        records = [r for rs in u.read_archive(bill).values() for r in rs]
        assert (u.CONSUME, 1000) in {
            (r.txn_type, r.amount_fen) for r in records if r.order_id == no
        }
    unionpay_state.forget(app.state.settings)


def test_a_write_by_another_process_is_seen(tmp_path: Path) -> None:
    """`seed-demo` beside a running server: the server's map reloads on its next read."""
    ours: store.PersistentMap[str, alipay_state.Trade] = store.PersistentMap(
        store.store_at(tmp_path), "trade", alipay_state.Trade
    )
    other_process = store.Store(tmp_path / store.FILE_NAME)  # its own connection
    theirs: store.PersistentMap[str, alipay_state.Trade] = store.PersistentMap(
        other_process, "trade", alipay_state.Trade
    )
    theirs["X1"] = alipay_state.Trade(
        out_trade_no="X1",
        trade_no="2026",
        subject="水",
        total_fen=300,
        product="bar_code",
        status="TRADE_SUCCESS",
        created_at=utcnow(),
    )
    assert ours["X1"].total_fen == 300
    theirs["X1"].status = "TRADE_CLOSED"  # outside an event loop: written at once
    assert ours["X1"].status == "TRADE_CLOSED"
    del theirs["X1"]
    assert "X1" not in ours
    other_process.close()
    store.forget(tmp_path)

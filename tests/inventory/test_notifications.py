"""Stock alerts reach people after commit: default readers of the store, routes by role on
SMS (through our sandbox of the Aliyun API), group-chat robots with signed webhooks, and the
daily digest. Delivery goes through the outbox, once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.inventory import notifications, robots
from selfmart.inventory import service as inventory
from selfmart.jobs import runtime
from selfmart.kit import aftercommit
from selfmart.models import AlertRoute, Message, NotificationDelivery, StockAlert, Store
from selfmart.notify import channels
from selfmart.notify.sms import AliyunSmsProvider, SmsChannel
from selfmart.sandbox import sms as sandbox
from tests.support import settings_for

from ..builders import builtin_role, make_store, make_user
from .builders import CLERK, make_product, stock


@pytest.fixture
async def inline_jobs(
    app: Any, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[None]:
    async with runtime.running(app.state.settings, sessionmaker):
        yield


async def _commit(session: AsyncSession) -> None:
    """What a request does after its handler: commit (here a flush), then after-commit work."""
    await session.flush()
    await aftercommit.run_pending(session)


async def _sell_out(session: AsyncSession, store: Store, threshold: int = 2) -> StockAlert:
    p = await make_product(session, name="雪碧 500ml", low_stock_threshold=threshold)
    await stock(session, store.id, p.id, threshold + 1)
    await inventory.deduct_for_sale(
        session,
        store_id=store.id,
        lines=[(p.id, threshold + 1)],
        document=("order", 1),
        actor=CLERK,
        allow_negative=True,
    )
    alert = await session.scalar(select(StockAlert).where(StockAlert.store_id == store.id))
    assert alert is not None
    return alert


async def _deliveries(session: AsyncSession, store_id: int) -> list[NotificationDelivery]:
    rows = await session.scalars(
        select(NotificationDelivery)
        .where(NotificationDelivery.store_id == store_id)
        .order_by(NotificationDelivery.id)
    )
    return list(rows.all())


async def test_without_routes_the_stores_alert_readers_hear_once(
    session: AsyncSession, inline_jobs: None
) -> None:
    store, other = await make_store(session, name="静安店"), await make_store(session)
    manager = await make_user(session, role="admin", stores=[store], email="m@example.cn")
    elsewhere = await make_user(session, role="admin", stores=[other], email="o@example.cn")
    cashier = await make_user(session, role="cashier", stores=[store], email="c@example.cn")
    alert = await _sell_out(session, store)
    assert await session.scalar(select(func.count()).select_from(Message)) == 0  # not before commit
    await _commit(session)
    await session.refresh(alert)
    assert alert.notified_at is not None
    messages = (await session.scalars(select(Message).where(Message.store_id == store.id))).all()
    assert {m.user_id for m in messages} >= {manager.id}
    assert not {m.user_id for m in messages} & {elsewhere.id, cashier.id}
    mine = next(m for m in messages if m.user_id == manager.id)
    assert (mine.kind, mine.title) == ("stock.low_stock", "【静安店】库存预警")
    assert "雪碧 500ml：已售罄" in mine.body
    assert mine.link == f"/stock/alerts?store_id={store.id}&kind=low_stock"
    emails = [d.recipient for d in await _deliveries(session, store.id) if d.channel == "email"]
    assert "m@example.cn" in emails
    assert "c@example.cn" not in emails
    # the handler running again (at-least-once delivery) sends nothing more
    assert await notifications.deliver_opened(session, [alert.id]) == 0


async def test_a_role_route_sends_sms_through_the_aliyun_sandbox(
    session: AsyncSession, app: Any, inline_jobs: None
) -> None:
    settings = app.state.settings
    sms = channels.get("sms")
    assert isinstance(sms, SmsChannel)
    sms.provider = AliyunSmsProvider(
        endpoint="http://testserver/sandbox/sms/",
        access_key_id=settings.sms_access_key_id,
        access_key_secret=settings.sms_access_key_secret.get_secret_value(),
        sign_name="自助超市",
        transport=httpx.ASGITransport(app=app),
    )
    try:
        store = await make_store(session, name="张江店")
        role = await builtin_role(session, "admin")
        manager = await make_user(session, role=role, stores=[store], phone="138 0013 8000")
        session.add(
            AlertRoute(
                name="店长短信",
                store_id=store.id,
                target="role",
                role_id=role.id,
                channels=["sms"],
                kinds=["low_stock"],
                created_at=store.created_at,
                updated_at=store.created_at,
            )
        )
        await session.flush()
        await _sell_out(session, store)
        await _commit(session)
        (delivery,) = await _deliveries(session, store.id)
        assert (delivery.channel, delivery.recipient, delivery.user_id) == (
            "sms",
            "13800138000",
            manager.id,
        )
        assert (delivery.status, delivery.last_error) == ("sent", None)
        got = [m for m in sandbox.RECEIVED if m.phone == "13800138000"][-1]
        assert (got.sign_name, got.template_code) == ("自助超市", settings.sms_template_code)
        assert got.params["title"] == "【张江店】库存预警"
        assert got.params["content"].startswith("雪碧 500ml：已售罄")
        # no in-app messages: the route asked for SMS only
        assert (
            await session.scalar(
                select(func.count()).select_from(Message).where(Message.store_id == store.id)
            )
            == 0
        )
    finally:
        sms.provider = None


async def test_the_sms_sandbox_checks_what_the_real_api_checks(app: Any) -> None:
    settings = app.state.settings
    transport = httpx.ASGITransport(app=app)
    good = AliyunSmsProvider(
        endpoint="http://testserver/sandbox/sms/",
        access_key_id=settings.sms_access_key_id,
        access_key_secret=settings.sms_access_key_secret.get_secret_value(),
        sign_name="s",
        transport=transport,
    )
    receipt = await good.send("13900001111", "SMS_1", {"title": "t", "content": "c"})
    assert receipt.biz_id
    from datetime import UTC, datetime

    params = good.signed_params("13900001111", "SMS_1", {"a": "b"}, now=datetime.now(UTC))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        r = await http.post("/sandbox/sms/", data=params)
        assert r.json()["Code"] == "OK"
        r = await http.post("/sandbox/sms/", data=params)  # the same nonce again
        assert r.json()["Code"] == "SignatureNonceUsed"
        forged = {**params, "SignatureNonce": "x1", "PhoneNumbers": "13900002222"}
        r = await http.post("/sandbox/sms/", data=forged)
        assert (r.status_code, r.json()["Code"]) == (400, "SignatureDoesNotMatch")
    wrong_key = AliyunSmsProvider(
        endpoint="http://testserver/sandbox/sms/",
        access_key_id=settings.sms_access_key_id,
        access_key_secret="not-the-secret",
        sign_name="s",
        transport=transport,
    )
    from selfmart.notify.sms import SmsFailed

    with pytest.raises(SmsFailed) as err:
        await wrong_key.send("13900001111", "SMS_1", {})
    assert err.value.code == "SignatureDoesNotMatch"
    with pytest.raises(SmsFailed) as err:
        await good.send("12345", "SMS_1", {})
    assert err.value.code == "isv.MOBILE_NUMBER_ILLEGAL"
    with pytest.raises(SmsFailed) as err:
        await good.send("13900000000", "SMS_1", {})
    assert err.value.code == "isv.BUSINESS_LIMIT_CONTROL"


class Robots:
    """Stands in for the WeCom, DingTalk and Feishu servers: records what arrives."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host == "open.feishu.cn":
            return httpx.Response(200, json={"code": 0, "msg": "success", "data": {}})
        return httpx.Response(200, json={"errcode": 0, "errmsg": "ok"})


async def test_robot_routes_post_each_platforms_format_with_valid_signatures(
    session: AsyncSession, inline_jobs: None
) -> None:
    server = Robots()
    robots.TRANSPORT = httpx.MockTransport(server)
    try:
        store = await make_store(session, name="西溪店")
        now = store.created_at
        urls = {
            "wecom": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K1",
            "dingtalk": "https://oapi.dingtalk.com/robot/send?access_token=T1",
            "feishu": "https://open.feishu.cn/open-apis/bot/v2/hook/H1",
        }
        for kind, url in urls.items():
            route = AlertRoute(
                name=kind,
                store_id=store.id,
                target="robot",
                robot_kind=kind,
                webhook_url=url,
                created_at=now,
                updated_at=now,
            )
            session.add(route)
            await session.flush()
            if kind != "wecom":
                route.secret_encrypted = robots.seal(f"SEC-{kind}", route.id)
        await session.flush()
        await _sell_out(session, store)
        await _commit(session)
        assert {d.status for d in await _deliveries(session, store.id)} == {"sent"}
        by_host = {r.url.host: r for r in server.requests}

        wecom = json.loads(by_host["qyapi.weixin.qq.com"].content)
        assert wecom["msgtype"] == "markdown"
        assert wecom["markdown"]["content"].startswith("**【西溪店】库存预警**\n雪碧 500ml：已售罄")

        ding = by_host["oapi.dingtalk.com"]
        query = parse_qs(urlsplit(str(ding.url)).query)
        assert query["access_token"] == ["T1"]
        ts = query["timestamp"][0]
        expected = base64.b64encode(
            hmac.new(b"SEC-dingtalk", f"{ts}\nSEC-dingtalk".encode(), hashlib.sha256).digest()
        ).decode()
        assert query["sign"] == [expected]
        body = json.loads(ding.content)
        assert (body["msgtype"], body["markdown"]["title"]) == ("markdown", "【西溪店】库存预警")

        feishu = json.loads(by_host["open.feishu.cn"].content)
        expected = base64.b64encode(
            hmac.new(f"{feishu['timestamp']}\nSEC-feishu".encode(), b"", hashlib.sha256).digest()
        ).decode()
        assert feishu["sign"] == expected
        assert feishu["msg_type"] == "text"
        assert feishu["content"]["text"].startswith("【西溪店】库存预警\n雪碧 500ml：已售罄")
    finally:
        robots.TRANSPORT = None


async def test_a_refusing_robot_is_recorded_for_retry(
    session: AsyncSession, inline_jobs: None
) -> None:
    robots.TRANSPORT = httpx.MockTransport(
        lambda r: httpx.Response(200, json={"errcode": 310000, "errmsg": "sign not match"})
    )
    try:
        store = await make_store(session)
        session.add(
            AlertRoute(
                name="ding",
                store_id=store.id,
                target="robot",
                robot_kind="dingtalk",
                webhook_url="https://oapi.dingtalk.com/robot/send?access_token=T",
                created_at=store.created_at,
                updated_at=store.created_at,
            )
        )
        await session.flush()
        await _sell_out(session, store)
        await _commit(session)
        (delivery,) = await _deliveries(session, store.id)
        assert delivery.status == "pending"
        assert delivery.last_error is not None
        assert "dingtalk robot refused the message: sign not match" in delivery.last_error
    finally:
        robots.TRANSPORT = None


async def test_digest_routes_wait_for_the_daily_message(
    session: AsyncSession, inline_jobs: None
) -> None:
    store = await make_store(session, name="徐汇店")
    role = await builtin_role(session, "admin")
    manager = await make_user(session, role=role, stores=[store])
    session.add(
        AlertRoute(
            name="日报",
            store_id=store.id,
            target="role",
            role_id=role.id,
            channels=["in_app"],
            mode="digest",
            created_at=store.created_at,
            updated_at=store.created_at,
        )
    )
    await session.flush()
    await _sell_out(session, store)
    await _commit(session)
    mine = select(Message).where(Message.user_id == manager.id)
    assert (await session.scalars(mine)).all() == []  # digest only
    assert await notifications.send_digests(session, today=date(2026, 11, 26)) == 1
    (digest,) = (await session.scalars(mine)).all()
    assert digest.title == "【徐汇店】库存日报：1 项待处理（11-26）"
    assert "雪碧 500ml" in digest.body
    assert await notifications.send_digests(session, today=date(2026, 11, 26)) == 0


async def test_alert_routes_api_keeps_secrets_write_only_and_scopes_stores(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    from ..builders import auth_headers

    store, other = await make_store(session), await make_store(session)
    headers = await auth_headers(session, await make_user(session, role="admin", stores=[store]))
    r = await client.post(
        "/api/v1/stock-alert-routes",
        json={
            "name": "钉钉群",
            "store_id": store.id,
            "target": "robot",
            "robot_kind": "dingtalk",
            "webhook_url": "https://oapi.dingtalk.com/robot/send?access_token=T",
            "secret": "SECxyz",
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["has_secret"] is True
    assert "SECxyz" not in r.text
    route = await session.get(AlertRoute, body["id"])
    assert route is not None
    assert route.secret_encrypted is not None
    assert "SECxyz" not in route.secret_encrypted
    r = await client.post(
        "/api/v1/stock-alert-routes",
        json={"name": "x", "store_id": store.id, "target": "robot", "robot_kind": "feishu"},
        headers=headers,
    )
    assert (r.status_code, r.json()["details"][0]["field"]) == (422, "webhook_url")
    r = await client.post(
        "/api/v1/stock-alert-routes",
        json={
            "name": "x",
            "store_id": other.id,
            "target": "role",
            "role_id": 1,
            "channels": ["sms"],
        },
        headers=headers,
    )
    assert r.status_code == 404
    r = await client.post(
        "/api/v1/stock-alert-routes",
        json={"name": "x", "target": "role", "role_id": 1, "channels": ["sms"]},
        headers=headers,
    )
    assert (r.status_code, r.json()["details"][0]["field"]) == (422, "store_id")
    r = await client.patch(
        f"/api/v1/stock-alert-routes/{body['id']}",
        json={"secret": "", "mode": "digest"},
        headers=headers,
    )
    assert (r.json()["has_secret"], r.json()["mode"]) == (False, "digest")
    r = await client.get("/api/v1/stock-alert-routes", headers=headers)
    assert [x["id"] for x in r.json()] == [body["id"]]
    # A store manager routes alerts to roles without being allowed to read roles' permissions.
    r = await client.get("/api/v1/stock-alert-routes/role-options", headers=headers)
    assert r.status_code == 200
    assert {"admin", "cashier"} <= {x["code"] for x in r.json()}
    assert set(r.json()[0]) == {"id", "code", "name"}
    r = await client.delete(f"/api/v1/stock-alert-routes/{body['id']}", headers=headers)
    assert r.status_code == 204


def test_settings_default_to_the_sandbox() -> None:
    s = settings_for("sqlite+aiosqlite:///:memory:")
    assert s.sms_url == "http://127.0.0.1:8000/sandbox/sms/"
    assert s.sms_sandbox_enabled
    assert not s.model_copy(update={"env": "production"}).sms_sandbox_enabled
    assert s.model_copy(update={"env": "production", "sms_sandbox": True}).sms_sandbox_enabled


async def test_a_route_can_be_tested_before_it_is_switched_on(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """ "Send test" queues one message along the route, inactive or not: the robot's group, or
    the role's users in the store on the route's channels; it is audited; another store's
    route is a 404 and a chain-wide route is tested by chain admins only."""
    from selfmart.models import AuditLog

    from ..builders import auth_headers

    store, other = await make_store(session, name="静安店"), await make_store(session)
    role = await builtin_role(session, "admin")
    manager = await make_user(session, role=role, stores=[store], email="m@example.cn")
    await make_user(session, role=role, stores=[other], email="o@example.cn")
    headers = await auth_headers(session, manager)
    now = store.created_at
    robot = AlertRoute(
        name="钉钉群",
        store_id=store.id,
        target="robot",
        robot_kind="dingtalk",
        webhook_url="https://oapi.dingtalk.com/robot/send?access_token=T",
        is_active=False,
        created_at=now,
        updated_at=now,
    )
    people = AlertRoute(
        name="店长",
        store_id=store.id,
        target="role",
        role_id=role.id,
        channels=["in_app", "email"],
        created_at=now,
        updated_at=now,
    )
    elsewhere = AlertRoute(
        name="别的店",
        store_id=other.id,
        target="role",
        role_id=role.id,
        channels=["in_app"],
        created_at=now,
        updated_at=now,
    )
    chain = AlertRoute(
        name="全部门店",
        store_id=None,
        target="role",
        role_id=role.id,
        channels=["in_app"],
        created_at=now,
        updated_at=now,
    )
    session.add_all([robot, people, elsewhere, chain])
    await session.flush()

    r = await client.post(f"/api/v1/stock-alert-routes/{robot.id}/test", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"messages": 0, "deliveries": 1, "unreachable": 0}
    (delivery,) = await _deliveries(session, store.id)
    assert (delivery.channel, delivery.recipient) == ("dingtalk", f"robot:{robot.id}")
    assert delivery.kind == "stock.test"
    assert "静安店" in delivery.subject

    r = await client.post(f"/api/v1/stock-alert-routes/{people.id}/test", headers=headers)
    assert r.json() == {"messages": 1, "deliveries": 1, "unreachable": 0}
    (msg,) = (await session.scalars(select(Message).where(Message.user_id == manager.id))).all()
    assert "店长" in msg.body

    assert (
        await client.post(f"/api/v1/stock-alert-routes/{elsewhere.id}/test", headers=headers)
    ).status_code == 404
    assert (
        await client.post(f"/api/v1/stock-alert-routes/{chain.id}/test", headers=headers)
    ).status_code == 404
    chain_admin = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.post(f"/api/v1/stock-alert-routes/{chain.id}/test", headers=chain_admin)
    assert r.status_code == 200, r.text
    assert r.json()["messages"] == 2  # the role's users in every store
    audited = await session.scalar(
        select(func.count()).where(AuditLog.action == "stock_alert_route.test")
    )
    assert audited == 3

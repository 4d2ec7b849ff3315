"""The console's order API: search with every filter, sort, pagination, store scoping, the
detail page, moving an order by hand, and money recorded through the manual channel."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import httpx
import openpyxl
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.config import get_settings
from selfmart.kit.time import utcnow
from selfmart.models import AuditLog, Order, OrderEvent, OrderLine, Payment
from selfmart.orders import export
from tests.builders import auth_headers, make_role, make_store, make_user
from tests.orders.builders import make_order, make_product
from tests.terminals.builders import make_terminal


async def _admin(session: AsyncSession) -> dict[str, str]:
    return await auth_headers(session, await make_user(session, role="super_admin"))


async def test_search_filters_each_narrow_the_list(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    a = await make_store(session)
    b = await make_store(session)
    cola = await make_product(session, stores=[a, b], price_fen=350)
    chips = await make_product(session, name="乐事薯片", stores=[a, b], price_fen=800)
    term = await make_terminal(session, a, status="active")
    now = utcnow()
    o1 = await make_order(
        session,
        a,
        [(cola, 2)],
        terminal=term,
        customer_name="张三",
        customer_phone="13800001234",
        member_no="M001",
        created_at=now - timedelta(hours=3),
    )
    o2 = await make_order(session, a, [(chips, 1)], paid=True, status="paid", created_at=now)
    o3 = await make_order(session, b, [(cola, 1), (chips, 3)], created_at=now - timedelta(days=2))
    h = await _admin(session)

    async def ids(**params: object) -> list[int]:
        r = await client.get("/api/v1/orders", params=params, headers=h)  # type: ignore[arg-type]
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    scope = {"store_id": [a.id, b.id]}
    assert await ids(**scope) == [o2.id, o1.id, o3.id]  # newest first by default
    assert await ids(**scope, sort="created_at") == [o3.id, o1.id, o2.id]
    assert await ids(**scope, sort="-total_fen") == [o3.id, o2.id, o1.id]
    assert await ids(order_no=o2.order_no) == [o2.id]
    assert await ids(q=o2.order_no) == [o2.id]
    assert await ids(client_order_id=o1.client_order_id) == [o1.id]
    assert await ids(**scope, customer="张") == [o1.id]
    assert await ids(phone="13800001234") == [o1.id]
    assert await ids(q="13800001234") == [o1.id]
    assert await ids(member_no="M001") == [o1.id]
    assert await ids(store_id=b.id) == [o3.id]
    assert await ids(terminal_id=term.id) == [o1.id]
    assert await ids(**scope, status="paid") == [o2.id]
    assert await ids(**scope, status=["paid", "awaiting_payment"]) == [o2.id, o1.id, o3.id]
    assert await ids(**scope, payment_method="manual") == [o2.id]
    assert await ids(**scope, product_id=chips.id) == [o2.id, o3.id]
    assert await ids(**scope, amount_min_fen=701, amount_max_fen=800) == [o2.id]
    since = (now - timedelta(hours=4)).isoformat()
    assert await ids(**scope, time_from=since) == [o2.id, o1.id]
    assert await ids(**scope, time_to=(now - timedelta(hours=1)).isoformat()) == [o1.id, o3.id]

    r = await client.get(
        "/api/v1/orders", params={"store_id": [a.id, b.id], "size": 2, "page": 2}, headers=h
    )
    body = r.json()
    assert body["total"] == 3
    assert body["page"] == 2
    assert len(body["items"]) == 1
    item = body["items"][0]
    assert item["store_timezone"] == "Asia/Shanghai"
    assert item["store_code"] == b.code


async def test_search_refuses_bad_filters_naming_the_field(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await _admin(session)
    r = await client.get(
        "/api/v1/orders", params={"amount_min_fen": 10, "amount_max_fen": 5}, headers=h
    )
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "amount_min_fen"
    r = await client.get("/api/v1/orders", params={"status": "teleported"}, headers=h)
    assert r.status_code == 422
    r = await client.get("/api/v1/orders", params={"sort": "password"}, headers=h)
    assert r.status_code == 422


async def test_a_store_admin_sees_only_their_stores_and_gets_404_for_others(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    mine = await make_store(session)
    other = await make_store(session)
    cola = await make_product(session, stores=[mine, other])
    o_mine = await make_order(session, mine, [(cola, 1)])
    o_other = await make_order(session, other, [(cola, 1)])
    admin = await make_user(session, role="admin", stores=[mine])
    h = await auth_headers(session, admin)

    r = await client.get("/api/v1/orders", headers=h)
    assert [i["id"] for i in r.json()["items"]] == [o_mine.id]
    r = await client.get("/api/v1/orders", params={"store_id": other.id}, headers=h)
    assert r.json()["items"] == []
    r = await client.get(f"/api/v1/orders/{o_other.id}", headers=h)
    assert r.status_code == 404
    r = await client.post(f"/api/v1/orders/{o_other.id}/cancel", json={"reason": "test"}, headers=h)
    assert r.status_code == 404


async def test_routes_need_login_and_the_permission(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    order = await make_order(session, store, [(await make_product(session, stores=[store]), 1)])
    assert (await client.get("/api/v1/orders")).status_code == 401
    nobody = await make_user(session, role=await make_role(session, ["store:read"]))
    h = await auth_headers(session, nobody)
    assert (await client.get("/api/v1/orders", headers=h)).status_code == 403
    assert (await client.get(f"/api/v1/orders/{order.id}", headers=h)).status_code == 403
    r = await client.post(f"/api/v1/orders/{order.id}/payments", json={}, headers=h)
    assert r.status_code == 403
    assert (await client.get("/api/v1/orders/export", headers=h)).status_code == 403


async def test_detail_shows_lines_payments_timeline_and_audit_trail(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    cola = await make_product(session, stores=[store], price_fen=350)
    chips = await make_product(session, name="乐事薯片", stores=[store], price_fen=800)
    order = await make_order(session, store, [(cola, 2), (chips, 1)])
    h = await _admin(session)

    r = await client.post(
        f"/api/v1/orders/{order.id}/payments",
        json={"reference": "POS-778", "note": "cash at the counter"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    assert r.json()["amount_fen"] == 1500
    assert r.json()["channel"] == "manual"

    r = await client.get(f"/api/v1/orders/{order.id}", headers=h)
    assert r.status_code == 200
    d = r.json()
    assert d["status"] == "paid"
    assert d["paid_fen"] == 1500
    assert d["payment_method"] == "manual"
    assert [(ln["name"], ln["quantity"], ln["unit_price_fen"]) for ln in d["lines"]] == [
        ("可口可乐 500ml", 2, 350),
        ("乐事薯片", 1, 800),
    ]
    assert d["payments"][0]["channel_txn_id"] == "POS-778"
    moves = [(e["from_status"], e["to_status"]) for e in d["timeline"] if e["kind"] == "transition"]
    assert moves == [("awaiting_payment", "paid")]
    paid = next(e for e in d["timeline"] if e["kind"] == "transition")
    assert paid["actor_type"] == "user"
    assert paid["reason"] == "manual_payment"
    actions = [a["action"] for a in d["audit"]]
    assert actions == ["payment.record", "order.pay"]
    assert set(d["next_statuses"]) == {"completed", "refund_requested"}
    assert d["issues"] == []


async def test_paying_twice_is_an_illegal_transition_naming_both_states(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    order = await make_order(
        session, store, [(await make_product(session, stores=[store]), 1)], status="closed"
    )
    h = await _admin(session)
    r = await client.post(f"/api/v1/orders/{order.id}/payments", json={}, headers=h)
    assert r.status_code == 409
    body = r.json()
    assert body["error"] == "illegal_transition"
    assert "closed" in body["message"]
    assert "paid" in body["message"]
    assert (
        await session.scalar(select(func.count(Payment.id)).where(Payment.order_id == order.id))
        == 0
    )


async def test_a_payment_of_the_wrong_amount_raises_an_amount_mismatch_issue(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    order = await make_order(
        session, store, [(await make_product(session, stores=[store], price_fen=1000), 1)]
    )
    h = await _admin(session)
    r = await client.post(
        f"/api/v1/orders/{order.id}/payments", json={"amount_fen": 600}, headers=h
    )
    assert r.status_code == 201
    d = (await client.get(f"/api/v1/orders/{order.id}", headers=h)).json()
    assert d["status"] == "awaiting_payment"  # 600 of 1000 is not paid
    assert d["paid_fen"] == 600
    assert [(i["kind"], i["status"]) for i in d["issues"]] == [("amount_mismatch", "open")]
    assert d["open_issues"] == 1
    # The rest arrives: paid, and the amounts agree again (the issue stays for a person).
    r = await client.post(f"/api/v1/orders/{order.id}/payments", json={}, headers=h)
    assert r.json()["amount_fen"] == 400
    d = (await client.get(f"/api/v1/orders/{order.id}", headers=h)).json()
    assert d["status"] == "paid"
    assert d["paid_fen"] == 1000


async def test_cancel_and_complete_move_the_order_and_leave_a_timeline(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    product = await make_product(session, stores=[store])
    unpaid = await make_order(session, store, [(product, 1)])
    paid = await make_order(session, store, [(product, 1)], status="paid", paid=True)
    h = await _admin(session)

    r = await client.post(
        f"/api/v1/orders/{unpaid.id}/cancel", json={"reason": "顾客放弃"}, headers=h
    )
    assert r.status_code == 200
    assert r.json()["status"] == "cancelled"
    assert r.json()["ended_at"] is not None
    event = r.json()["timeline"][-1]
    assert (event["from_status"], event["to_status"], event["note"]) == (
        "awaiting_payment",
        "cancelled",
        "顾客放弃",
    )
    r = await client.post(f"/api/v1/orders/{unpaid.id}/cancel", json={"reason": "again"}, headers=h)
    assert r.status_code == 409
    assert r.json()["error"] == "illegal_transition"

    r = await client.post(f"/api/v1/orders/{paid.id}/complete", json={}, headers=h)
    assert r.status_code == 200
    assert r.json()["status"] == "completed"
    r = await client.post(f"/api/v1/orders/{paid.id}/cancel", json={"reason": "x"}, headers=h)
    assert r.status_code == 409
    assert "completed" in r.json()["message"]
    assert "cancelled" in r.json()["message"]
    assert (
        await session.scalar(
            select(func.count(AuditLog.id)).where(AuditLog.action == "order.cancel")
        )
        == 1
    )


async def test_bad_bodies_change_nothing(client: httpx.AsyncClient, session: AsyncSession) -> None:
    store = await make_store(session)
    order = await make_order(session, store, [(await make_product(session, stores=[store]), 1)])
    h = await _admin(session)
    before = await session.scalar(select(func.count(OrderEvent.id)))
    for body in ({"amount_fen": -5}, {"amount_fen": 1.5}, {"channel": "wechat"}, {"x": 1}):
        r = await client.post(f"/api/v1/orders/{order.id}/payments", json=body, headers=h)
        assert r.status_code == 422, body
    r = await client.post(
        f"/api/v1/orders/{order.id}/payments",
        content=b"{not json",
        headers={**h, "content-type": "application/json"},
    )
    assert r.status_code == 422
    assert (
        await client.post("/api/v1/orders/999999999/cancel", json={"reason": "x"}, headers=h)
    ).status_code == 404
    assert await session.scalar(select(func.count(OrderEvent.id))) == before
    assert (
        await session.scalar(select(func.count(Payment.id)).where(Payment.order_id == order.id))
        == 0
    )


async def test_export_streams_the_current_search_as_xlsx(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session, name="静安寺自助店")
    other = await make_store(session)
    cola = await make_product(session, stores=[store, other])
    for i in range(3):
        await make_order(
            session,
            store,
            [(cola, i + 1)],
            created_at=utcnow() - timedelta(minutes=i),
            status="paid" if i == 2 else "awaiting_payment",
            paid=i == 2,
        )
    await make_order(session, other, [(cola, 9)])
    h = await _admin(session)
    r = await client.get("/api/v1/orders/export", params={"store_id": store.id}, headers=h)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert "attachment" in r.headers["content-disposition"]
    wb = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True)
    rows = list(wb.active.iter_rows(values_only=True))
    assert rows[0][0] == "订单号"
    assert rows[0][4] == "状态"
    assert len(rows) == 4
    assert {row[2] for row in rows[1:]} == {"静安寺自助店"}
    assert [row[8] for row in rows[1:]] == [1, 2, 3]  # item counts, newest first
    assert rows[1][4] == "待支付"
    assert rows[1][11] == 3.5  # yuan, as a number
    assert [row[14] for row in rows[1:]] == [None, None, "手工记账"]  # the payment method

    r = await client.get(
        "/api/v1/orders/export", params={"store_id": store.id, "lang": "en"}, headers=h
    )
    rows = list(openpyxl.load_workbook(io.BytesIO(r.content)).active.iter_rows(values_only=True))
    assert rows[0][0] == "Order no."
    assert rows[1][4] == "Awaiting payment"
    assert rows[3][14] == "Manual"


async def test_lines_keep_their_snapshot_after_the_catalog_changes(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    cola = await make_product(session, stores=[store], price_fen=350)
    order = await make_order(session, store, [(cola, 1)])
    cola.name = "可口可乐 零度"
    cola.price_fen = 400
    await session.flush()
    h = await _admin(session)
    d = (await client.get(f"/api/v1/orders/{order.id}", headers=h)).json()
    assert d["lines"][0]["name"] == "可口可乐 500ml"
    assert d["lines"][0]["unit_price_fen"] == 350
    line = await session.scalar(select(OrderLine).where(OrderLine.order_id == order.id))
    assert line is not None
    assert line.amount_fen == 350
    assert (await session.get(Order, order.id)) is not None


async def test_a_large_export_runs_as_a_job_with_progress_then_downloads(
    client: httpx.AsyncClient, session: AsyncSession, jobs: Any
) -> None:
    store = await make_store(session)
    other = await make_store(session)
    cola = await make_product(session, stores=[store, other])
    for i in range(5):
        await make_order(session, store, [(cola, i + 1)])
    await make_order(session, other, [(cola, 1)])
    admin = await make_user(session, role="admin", stores=[store])
    h = await auth_headers(session, admin)

    r = await client.post("/api/v1/orders/exports", params={"lang": "en"}, headers=h)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    job = (await client.get(f"/api/v1/orders/exports/{job_id}", headers=h)).json()
    assert job["status"] == "succeeded", job
    assert (job["progress"], job["total"]) == (5, 5)  # the admin's store only
    assert job["result"]["rows"] == 5

    r = await client.get(f"/api/v1/orders/exports/{job_id}/file", headers=h)
    assert r.status_code == 200
    rows = list(openpyxl.load_workbook(io.BytesIO(r.content)).active.iter_rows(values_only=True))
    assert rows[0][0] == "Order no."
    assert len(rows) == 6
    # Someone else's export is not theirs to download.
    stranger = await auth_headers(session, await make_user(session, role="admin", stores=[store]))
    r = await client.get(f"/api/v1/orders/exports/{job_id}/file", headers=stranger)
    assert r.status_code == 404
    path = export.export_path(get_settings().media_dir, job_id)
    path.unlink(missing_ok=True)


async def test_search_finds_a_part_of_the_number_a_phone_s_last_digits_and_the_member_no(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    cola = await make_product(session, stores=[store])
    o1 = await make_order(session, store, [(cola, 1)], customer_phone="13812345534")
    o2 = await make_order(session, store, [(cola, 1)], member_no="M20261206")
    o3 = await make_order(session, store, [(cola, 1)], customer_phone="+86 139-0000-9876")
    for order, no in ((o1, "2612060000155534"), (o2, "2612060000277711"), (o3, "2612060000388822")):
        order.order_no = no
    o3.customer_phone = "+8613900009876"  # as intake stores it
    o3.phone_last4 = "9876"
    await session.flush()
    h = await _admin(session)

    async def ids(**params: object) -> set[int]:
        r = await client.get(
            "/api/v1/orders",
            params={"store_id": store.id, **params},  # type: ignore[dict-item]
            headers=h,
        )
        assert r.status_code == 200, r.text
        return {i["id"] for i in r.json()["items"]}

    assert await ids(q="55534") == {o1.id}  # a part of the order number (and the phone's tail)
    assert await ids(q="0000277") == {o2.id}
    assert await ids(order_no="77711") == {o2.id}
    assert await ids(q="5534") == {o1.id}  # the phone's last four
    assert await ids(q="9876") == {o3.id}
    assert await ids(phone="09876") == {o3.id}
    assert await ids(phone="13900009876") == {o3.id}  # the whole number, stored with +86
    assert await ids(customer="2345534") == {o1.id}
    assert await ids(q="M20261206") == {o2.id}
    assert await ids(q="261206") == {o1.id, o2.id, o3.id}
    assert await ids(q="999") == set()  # under four characters: only whole values
    assert await ids(q="%") == set()  # LIKE's wildcards are taken literally


async def test_cashiers_see_customers_phones_masked_in_the_list_detail_and_export(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    cola = await make_product(session, stores=[store])
    order = await make_order(session, store, [(cola, 1)], customer_phone="13812345678")
    cashier = await auth_headers(session, await make_user(session, role="cashier", stores=[store]))
    admin = await auth_headers(session, await make_user(session, role="admin", stores=[store]))
    exporter = await make_role(session, ["order:read", "order:export"])
    exports = await auth_headers(session, await make_user(session, role=exporter, stores=[store]))

    r = await client.get("/api/v1/orders", params={"q": "5678"}, headers=cashier)
    assert [i["customer_phone"] for i in r.json()["items"]] == ["138****5678"]
    r = await client.get(f"/api/v1/orders/{order.id}", headers=cashier)
    assert r.json()["customer_phone"] == "138****5678"
    r = await client.get(f"/api/v1/orders/{order.id}", headers=admin)
    assert r.json()["customer_phone"] == "13812345678"  # admins hold order:pii
    r = await client.get("/api/v1/orders/export", params={"store_id": store.id}, headers=exports)
    rows = list(openpyxl.load_workbook(io.BytesIO(r.content)).active.iter_rows(values_only=True))
    assert rows[1][17] == "138****5678"
    assert export.COLUMNS[17][0] == "customer_phone"

"""A member's own page: sign in with an SMS code, then their overview (tier and what the next
one needs), orders, points history, messages (the reminder's "member message", tier changes)
with an unread marker, tier history, and the dynamic code that identifies them at a
terminal."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import utcnow
from selfmart.members import coupons, points
from selfmart.models import CouponTemplate, MemberMessage, OrderIssue
from tests.builders import auth_headers, make_store, make_user
from tests.orders.builders import make_order, make_product
from tests.orders.test_reminders import SmsDouble, sms  # noqa: F401
from tests.terminals.builders import make_active_terminal

from .helpers import ADMIN, make_member, make_tier, paid_order, set_program
from .test_checkout import T, _post, _sms_code

P = "/api/v1/public/members"


async def _sign_in(client: httpx.AsyncClient, session: AsyncSession, mobile: str) -> str:
    r = await client.post(f"{P}/sms-code", json={"mobile": mobile})
    assert r.status_code == 202, r.text
    code = await _sms_code(session, mobile)
    r = await client.post(f"{P}/sign-in", json={"mobile": mobile, "code": code})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def test_a_member_signs_in_and_sees_their_page(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await set_program(session, tier_window_days=365, points_per_yuan=1)
    bronze = await make_tier(session, 1, min_spend_fen=0)
    silver = await make_tier(session, 2, min_spend_fen=100_000, min_orders=5, match="any")
    silver.discount_bp = 500
    member = await make_member(session, name="李四", tier=bronze)
    assert member.mobile is not None
    store = await make_store(session)
    await paid_order(session, store, member, 30_000)
    await points.award(session, member.id, 20, kind="adjust", actor=ADMIN, reason="gift")

    token = await _sign_in(client, session, member.mobile)
    h = {"X-Member-Session": token}
    me = (await client.get(f"{P}/me", headers=h)).json()
    assert me["member_no"] == member.member_no
    assert me["name"] == "李*"
    assert me["points_balance"] == 320  # 300 earned on 300 yuan, 20 given
    assert me["tier"]["name"] == bronze.name
    assert (me["spend_fen"], me["order_count"]) == (30_000, 1)
    nxt = me["next_tier"]
    assert nxt["name"] == silver.name
    assert (nxt["spend_needed_fen"], nxt["orders_needed"]) == (70_000, 4)

    orders = (await client.get(f"{P}/me/orders", headers=h)).json()
    assert orders["total"] == 1
    assert orders["items"][0]["total_fen"] == 30_000
    history = (await client.get(f"{P}/me/points", headers=h)).json()
    assert [e["kind"] for e in history["items"]] == ["adjust", "earn"]

    code = (await client.get(f"{P}/me/code", headers=h)).json()
    assert re.fullmatch(r"88\d{16}", code["code"])
    assert code["qr_svg"].startswith("<svg")
    # The code on the page identifies the member at a terminal.
    creds = await make_active_terminal(session, store)
    r = await _post(client, creds, f"{T}/members/identify", {"code": code["code"]})
    assert r.status_code == 200, r.text
    assert r.json()["member_no"] == member.member_no


async def test_the_page_refuses_bad_codes_and_sessions(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    member = await make_member(session)
    assert member.mobile is not None
    # A number no member has gets the same answer (and no SMS); a malformed one a 422.
    r = await client.post(f"{P}/sms-code", json={"mobile": "13600000009"})
    assert r.status_code == 202
    r = await client.post(f"{P}/sms-code", json={"mobile": "12345"})
    assert r.status_code == 422
    assert r.json()["details"][0]["field"].endswith("mobile")
    r = await client.post(f"{P}/sms-code", json={"mobile": member.mobile})
    assert r.status_code == 202
    code = await _sms_code(session, member.mobile)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    r = await client.post(f"{P}/sign-in", json={"mobile": member.mobile, "code": wrong})
    assert r.status_code == 422
    assert r.json()["error"] == "sms_code_invalid"
    r = await client.post(f"{P}/sign-in", json={"mobile": member.mobile, "code": code})
    assert r.status_code == 200
    h = {"X-Member-Session": r.json()["token"]}
    assert (await client.get(f"{P}/me", headers=h)).status_code == 200
    for bad in (
        {},
        {"X-Member-Session": "nonsense"},
        {"X-Member-Session": h["X-Member-Session"][:-2]},
    ):
        r = await client.get(f"{P}/me", headers=bad)
        assert r.status_code == 401
        assert r.json()["error"] == "member_session_invalid"
    # A disabled member's session stops working.
    member.status = "disabled"
    await session.flush()
    r = await client.get(f"{P}/me/code", headers=h)
    assert r.status_code == 401


async def test_the_reminder_reaches_the_members_page_and_their_tier_history_shows(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sms: SmsDouble,  # noqa: F811
    jobs: Any,
) -> None:
    await set_program(session, tier_window_days=365)
    silver = await make_tier(session, 2, min_spend_fen=10_000)
    member = await make_member(session, name="王五")
    assert member.mobile is not None
    store = await make_store(session)
    await paid_order(session, store, member, 10_000)  # exactly at the threshold: upgraded
    product = await make_product(session, stores=[store], price_fen=1250)
    owed = await make_order(session, store, [(product, 1)], status="payment_failed")
    owed.member_id, owed.member_no = member.id, member.member_no
    issue = OrderIssue(order_id=owed.id, store_id=store.id, kind="payment_failed",
                       status="open", stage="person", detail={}, opened_at=utcnow())  # fmt: skip
    session.add(issue)
    await session.flush()
    staff = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.post(f"/api/v1/orders/issues/{issue.id}/actions",
                          json={"action": "remind", "via": "member_message"},
                          headers=staff)  # fmt: skip
    assert r.status_code == 200, r.text
    # as well as by SMS, to the member's own mobile
    assert [m.recipient for m in sms.sent if owed.order_no in m.body] == [member.mobile]

    h = {"X-Member-Session": await _sign_in(client, session, member.mobile)}
    me = (await client.get(f"{P}/me", headers=h)).json()
    assert me["unread_messages"] == 2  # the tier change and the reminder
    got = (await client.get(f"{P}/me/messages", headers=h)).json()
    assert (got["total"], got["unread"]) == (2, 2)
    reminder, tier_change = got["items"]  # newest first
    assert reminder["kind"] == "order_reminder"
    assert owed.order_no in reminder["body"]
    assert "¥12.50" in reminder["title"]
    assert (tier_change["kind"], reminder["read"]) == ("tier_change", False)
    assert silver.name in tier_change["body"]

    r = await client.post(f"{P}/me/messages/{reminder['id']}/read", headers=h)
    assert r.status_code == 200, r.text
    assert r.json() == {"marked": 1, "unread": 1}
    again = await client.post(f"{P}/me/messages/{reminder['id']}/read", headers=h)
    assert again.json() == {"marked": 0, "unread": 1}  # reading twice changes nothing
    # Another member's message is not theirs to read.
    other = await make_member(session)
    assert other.mobile is not None
    oh = {"X-Member-Session": await _sign_in(client, session, other.mobile)}
    r = await client.post(f"{P}/me/messages/{tier_change['id']}/read", headers=oh)
    assert r.status_code == 404
    assert r.json()["error"] == "member_message_not_found"
    r = await client.post(f"{P}/me/messages/read", headers=h)
    assert r.json() == {"marked": 1, "unread": 0}
    assert (await client.get(f"{P}/me", headers=h)).json()["unread_messages"] == 0

    history = (await client.get(f"{P}/me/tier-history", headers=h)).json()
    assert len(history) == 1
    assert (history[0]["direction"], history[0]["to_tier"]) == ("upgrade", silver.name)
    assert (history[0]["from_tier"], history[0]["reason"]) == (None, "order_paid")
    assert history[0]["spend_fen"] == 10_000
    assert (await client.get(f"{P}/me/tier-history")).status_code == 401


async def test_a_member_message_needs_an_active_member(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    product = await make_product(session, stores=[store], price_fen=500)
    member = await make_member(session, status="disabled")
    owed = await make_order(session, store, [(product, 1)], status="payment_failed")
    owed.member_id = member.id
    issue = OrderIssue(order_id=owed.id, store_id=store.id, kind="payment_failed",
                       status="open", stage="person", detail={}, opened_at=utcnow())  # fmt: skip
    session.add(issue)
    await session.flush()
    staff = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.post(f"/api/v1/orders/issues/{issue.id}/actions",
                          json={"action": "remind", "via": "member_message"},
                          headers=staff)  # fmt: skip
    assert r.status_code == 409
    assert r.json()["details"][0] == {
        "field": "via", "reason": "no_member",
        "message": "This order is not linked to an active member",
    }  # fmt: skip
    assert await session.scalar(select(func.count()).select_from(MemberMessage)
                                .where(MemberMessage.member_id == member.id)) == 0  # fmt: skip


async def test_a_member_sees_their_coupons_with_state_and_validity(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    member = await make_member(session)
    other = await make_member(session)
    assert member.mobile is not None
    template = await _coupon_template(session)
    usable = await coupons.give(session, member, template, actor=ADMIN)
    voided = await coupons.give(session, member, template, actor=ADMIN)
    await coupons.void(session, voided.id, member_id=member.id, reason="test", actor=ADMIN)
    await coupons.give(session, other, template, actor=ADMIN)

    token = await _sign_in(client, session, member.mobile)
    got = (await client.get(f"{P}/me/coupons", headers={"X-Member-Session": token})).json()
    assert [(c["code"], c["state"]) for c in got] == [
        (voided.code, "void"),
        (usable.code, "issued"),
    ]
    assert got[1]["name"] == "减5元"
    assert (got[1]["kind"], got[1]["amount_off_fen"]) == ("amount", 500)
    assert got[1]["valid_from"] < got[1]["valid_to"]
    assert "member_id" not in got[1]
    assert (await client.get(f"{P}/me/coupons")).status_code == 401


async def _coupon_template(session: AsyncSession) -> CouponTemplate:
    now = utcnow()
    template = CouponTemplate(name="减5元", kind="amount", amount_off_fen=500, valid_days=30,
                              created_at=now, updated_at=now)  # fmt: skip
    session.add(template)
    await session.flush()
    return template

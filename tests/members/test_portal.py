"""A member's own page: sign in with an SMS code, then their overview (tier and what the next
one needs), orders, points history, and the dynamic code that identifies them at a terminal."""

from __future__ import annotations

import re

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.members import points
from tests.builders import make_store
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

"""Members at the terminal: identified by the dynamic code or by mobile + SMS code (signed
routes, rate-limited, wrong codes refused with a reason), priced by the server with member
prices and the tier's discount (rounding at its edges), points spent as part of the order and
given back on refunds and closes, with the ledger balanced after each flow."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import SYSTEM
from selfmart.inventory import service as inventory
from selfmart.kit.time import utcnow
from selfmart.members import identify, points
from selfmart.members.checks import find_mismatches
from selfmart.members.exceptions import MemberInactive
from selfmart.models import (
    AuditLog,
    Member,
    MemberPointsEntry,
    MemberTier,
    NotificationDelivery,
    Order,
    OrderLine,
    Product,
    Store,
)
from selfmart.orders import service as orders
from selfmart.orders.pricing import tier_discount
from selfmart.orders.schemas import ManualPaymentBody
from tests.builders import auth_headers, make_store, make_user
from tests.orders.builders import make_product
from tests.terminals.builders import Credentials, make_active_terminal

from .helpers import ADMIN, make_member, make_tier, refund_money, set_program

T = "/api/terminal/v1"


async def _post(
    client: httpx.AsyncClient, creds: Credentials, target: str, payload: Any
) -> httpx.Response:
    body, headers = creds.signed_json("POST", target, payload)
    return await client.post(target, content=body, headers=headers)


async def _stock(session: AsyncSession, store: Store, product: Product, qty: int) -> None:
    await inventory.adjust(
        session, store_id=store.id, product_id=product.id, actor=SYSTEM, reason="test",
        set_to=qty, audit_action=None,
    )  # fmt: skip


async def _world(
    session: AsyncSession, *, discount_bp: int = 500
) -> tuple[Store, Credentials, Member, Product, Product]:
    store = await make_store(session)
    tier = await make_tier(session, 1)
    tier.discount_bp = discount_bp
    member = await make_member(session, name="张三丰", tier=tier)
    cola = await make_product(session, stores=[store], price_fen=350, member_price_fen=300)
    chips = await make_product(session, name="乐事薯片", stores=[store], price_fen=800)
    for p in (cola, chips):
        await _stock(session, store, p, 100)
    creds = await make_active_terminal(session, store)
    await set_program(session, redeem_points_per_yuan=100, redeem_max_share_bp=5000)
    return store, creds, member, cola, chips


async def _code(session: AsyncSession, member: Member) -> str:
    return (await identify.current_code(session, member)).code


async def _token(client: httpx.AsyncClient, creds: Credentials, session: AsyncSession,
                 member: Member) -> str:  # fmt: skip
    r = await _post(client, creds, f"{T}/members/identify", {"code": await _code(session, member)})
    assert r.status_code == 200, r.text
    return str(r.json()["member_token"])


# ---------------------------------------------------------------- identification


async def test_the_dynamic_code_identifies_the_member_once(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store, creds, member, *_ = await _world(session)
    await points.award(session, member.id, 120, kind="adjust", actor=ADMIN, reason="gift")
    code = await _code(session, member)
    assert re.fullmatch(r"88\d{16}", code)
    r = await _post(client, creds, f"{T}/members/identify", {"code": code})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["member_no"] == member.member_no
    assert got["name"] == "张**"  # masked
    assert member.mobile is not None
    assert got["mobile"].startswith(member.mobile[:3])
    assert "****" in got["mobile"]
    assert (got["tier_discount_bp"], got["points_balance"], got["usable_points"]) == (500, 120, 120)
    assert got["tier_member_prices"] is True  # the default: member prices and the discount
    assert got["identified_by"] == "code"
    assert got["member_token"]
    audit = await session.scalar(
        select(AuditLog).where(
            AuditLog.action == "member.identified", AuditLog.entity_id == str(member.id)
        )
    )
    assert audit is not None
    assert audit.store_id == store.id

    again = await _post(client, creds, f"{T}/members/identify", {"code": code})
    assert again.status_code == 409
    assert again.json()["error"] == "member_code_used"


async def test_wrong_and_stale_codes_are_refused_with_a_reason(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _store, creds, member, *_ = await _world(session)
    code = await _code(session, member)
    wrong = code[:-6] + f"{(int(code[-6:]) + 1) % 10**6:06d}"
    r = await _post(client, creds, f"{T}/members/identify", {"code": wrong})
    assert r.status_code == 422
    assert r.json()["error"] == "member_code_invalid"
    assert r.json()["details"][0]["field"] == "code"
    # A code two steps old (over 60 s) no longer works.
    assert member.code_secret is not None
    old_at = utcnow() - timedelta(seconds=2 * identify.CODE_STEP_SECONDS + 1)
    stale = pyotp.TOTP(member.code_secret, digits=6, interval=30).at(old_at)
    r = await _post(client, creds, f"{T}/members/identify", {"code": code[:-6] + stale})
    assert r.status_code == 422
    # Not a member code at all.
    r = await _post(client, creds, f"{T}/members/identify", {"code": "123"})
    assert r.status_code == 422
    # Neither way given: a validation error naming the body.
    r = await _post(client, creds, f"{T}/members/identify", {})
    assert r.status_code == 422


async def test_the_previous_steps_code_still_works_and_a_disabled_member_is_refused(
    session: AsyncSession,
) -> None:
    _store, _creds, member, *_ = await _world(session)
    now = utcnow()
    earlier = (await identify.current_code(session, member, now=now - timedelta(seconds=30))).code
    found = await identify.by_code(session, earlier, terminal_id=1, limiter=None, now=now)
    assert found.id == member.id
    later = (await identify.current_code(session, member, now=now)).code
    member.status = "disabled"
    await session.flush()
    with pytest.raises(MemberInactive):
        await identify.by_code(session, later, terminal_id=1, limiter=None, now=now)


async def test_wrong_codes_from_a_terminal_are_rate_limited(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _store, creds, member, *_ = await _world(session)
    bad = f"88{member.id:010d}000000"
    statuses = []
    for _ in range(11):  # the limit is 10 wrong codes a minute per terminal
        r = await _post(client, creds, f"{T}/members/identify", {"code": bad})
        statuses.append(r.status_code)
        if r.status_code == 429:
            break
    assert statuses[-1] == 429
    assert set(statuses[:-1]) <= {422}
    assert 429 not in statuses[:-1]
    # While blocked, even the right code is refused.
    r = await _post(client, creds, f"{T}/members/identify", {"code": await _code(session, member)})
    assert r.status_code == 429


async def _sms_code(session: AsyncSession, mobile: str) -> str:
    sent = (
        await session.scalars(
            select(NotificationDelivery)
            .where(NotificationDelivery.recipient == mobile, NotificationDelivery.channel == "sms")
            .order_by(NotificationDelivery.id.desc())
        )
    ).first()
    assert sent is not None
    found = re.search(r"(\d{6})", sent.body)
    assert found is not None
    return found.group(1)


async def test_mobile_and_sms_code_identify_the_member(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _store, creds, member, *_ = await _world(session)
    assert member.mobile is not None
    r = await _post(client, creds, f"{T}/members/sms-code", {"mobile": "130000"})
    assert r.status_code == 422
    r = await _post(client, creds, f"{T}/members/sms-code", {"mobile": "13700000001"})
    assert r.status_code == 404
    assert r.json()["error"] == "member_not_found"
    r = await _post(client, creds, f"{T}/members/sms-code", {"mobile": member.mobile})
    assert r.status_code == 202, r.text
    code = await _sms_code(session, member.mobile)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    r = await _post(
        client, creds, f"{T}/members/identify", {"mobile": member.mobile, "sms_code": wrong}
    )
    assert r.status_code == 422
    assert r.json()["error"] == "sms_code_invalid"
    r = await _post(
        client, creds, f"{T}/members/identify", {"mobile": member.mobile, "sms_code": code}
    )
    assert r.status_code == 200, r.text
    assert r.json()["identified_by"] == "sms"
    # Once only.
    r = await _post(
        client, creds, f"{T}/members/identify", {"mobile": member.mobile, "sms_code": code}
    )
    assert r.status_code == 422
    # A second code within the minute is refused (one SMS per number per minute).
    r = await _post(client, creds, f"{T}/members/sms-code", {"mobile": member.mobile})
    assert r.status_code == 429


# ---------------------------------------------------------------- pricing


def test_tier_discount_rounds_half_up_to_the_fen() -> None:
    assert tier_discount(10, 500) == 1  # 0.5 fen: up
    assert tier_discount(9, 500) == 0  # 0.45 fen: down
    assert tier_discount(1, 500) == 0
    assert tier_discount(30, 500) == 2  # 1.5 fen: up
    assert tier_discount(800, 500) == 40
    assert tier_discount(12_345, 0) == 0
    assert tier_discount(12_345, 10_000) == 12_345


async def test_a_quote_gives_member_prices_or_the_tier_discount_and_what_was_saved(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store, creds, member, cola, chips = await _world(session)
    dime = await make_product(session, name="十分", stores=[store], price_fen=10)
    nine = await make_product(session, name="九分", stores=[store], price_fen=9)
    lines = [
        {"product_id": cola.id, "quantity": 2},
        {"product_id": chips.id, "quantity": 1},
        {"product_id": dime.id, "quantity": 1},
        {"product_id": nine.id, "quantity": 1},
    ]
    r = await _post(client, creds, f"{T}/members/quote", {"lines": lines})
    assert r.status_code == 200, r.text
    plain = r.json()
    assert plain["total_fen"] == 700 + 800 + 10 + 9
    assert plain["saved_fen"] == 0
    assert plain["max_points"] == 0

    token = await _token(client, creds, session, member)
    r = await _post(client, creds, f"{T}/members/quote", {"lines": lines, "member_token": token})
    assert r.status_code == 200, r.text
    q = r.json()
    by = {ln["product_id"]: ln for ln in q["lines"]}
    # member price: 300 x 2, no tier discount on top
    assert (by[cola.id]["unit_price_fen"], by[cola.id]["price_source"]) == (300, "member")
    assert (by[cola.id]["tier_discount_fen"], by[cola.id]["saved_fen"]) == (0, 100)
    # tier discount 5%: 40 off 800; 0.5 fen rounds up; 0.45 fen rounds down
    assert (by[chips.id]["tier_discount_fen"], by[chips.id]["amount_fen"]) == (40, 760)
    assert (by[dime.id]["tier_discount_fen"], by[dime.id]["amount_fen"]) == (1, 9)
    assert (by[nine.id]["tier_discount_fen"], by[nine.id]["amount_fen"]) == (0, 9)
    assert q["saved_fen"] == 141
    assert q["total_fen"] == 600 + 760 + 9 + 9
    assert q["subtotal_fen"] == plain["total_fen"]
    assert q["max_points"] == 689  # half of 1378

    # A token of another terminal is refused.
    other = await make_active_terminal(session, store)
    r = await _post(client, other, f"{T}/members/quote", {"lines": lines, "member_token": token})
    assert r.status_code == 422
    assert r.json()["error"] == "member_token_invalid"


# ---------------------------------------------------------------- orders and points


def _order(client_id: str, lines: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "client_order_id": client_id,
        "purchased_at": (utcnow() - timedelta(minutes=1)).isoformat(),
        "lines": lines,
        **extra,
    }


async def _member_order(
    client: httpx.AsyncClient, session: AsyncSession, redeem: int | None = 500
) -> tuple[Member, Order, dict[str, Any], Credentials, list[dict[str, Any]]]:
    _store, creds, member, cola, chips = await _world(session)
    await points.award(session, member.id, 1000, kind="adjust", actor=ADMIN, reason="gift")
    token = await _token(client, creds, session, member)
    lines = [{"product_id": cola.id, "quantity": 2}, {"product_id": chips.id, "quantity": 1}]
    body = _order("M-1", lines, member={"token": token}, redeem_points=redeem)
    r = await _post(client, creds, f"{T}/orders", body)
    assert r.status_code == 201, r.text
    order = await session.get_one(Order, r.json()["order_id"])
    await session.refresh(order)
    return member, order, r.json(), creds, lines


async def test_an_order_of_an_identified_member_spends_points_as_part_of_it(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    member, order, res, _creds, _lines = await _member_order(client, session)
    # 600 (member price) + 760 (tier) = 1360; 500 points pay 500 fen
    assert res["member_no"] == member.member_no
    assert (res["subtotal_fen"], res["saved_fen"]) == (1500, 140)
    assert (res["points_redeemed"], res["points_fen"], res["total_fen"]) == (500, 500, 860)
    assert order.member_id == member.id
    assert order.total_fen == 860
    lines = (await session.scalars(select(OrderLine).where(OrderLine.order_id == order.id))).all()
    assert sum(ln.amount_fen for ln in lines) == 860
    entry = await session.scalar(
        select(MemberPointsEntry).where(
            MemberPointsEntry.order_id == order.id, MemberPointsEntry.kind == "redeem"
        )
    )
    assert entry is not None
    assert entry.points == -500
    assert entry.data["value_fen"] == 500
    await session.refresh(member)
    assert member.points_balance == 500
    assert await find_mismatches(session) == []


async def test_a_bare_member_no_is_accepted_priced_as_a_guest_and_not_linked(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    from selfmart.orders import lines as order_lines

    _store, creds, member, cola, chips = await _world(session)  # cola 350, member 300; 5% tier
    await points.award(session, member.id, 200, kind="adjust", actor=ADMIN, reason="gift")
    claim = {"member_no": member.member_no, "member_id": member.id, "name": "张三丰"}
    lines = [{"product_id": cola.id, "quantity": 2, "unit_price_fen": 300},
             {"product_id": chips.id, "quantity": 1}]  # fmt: skip
    body = _order("U-1", lines, member=claim, total_fen=1360)  # what a member would pay
    r = await _post(client, creds, f"{T}/orders", body)
    assert r.status_code == 201, r.text
    res = r.json()
    # No member price, no tier discount: a guest's 700 + 800; the terminal's totals differ,
    # which is a price-mismatch issue as for any other difference.
    assert (res["subtotal_fen"], res["discount_fen"], res["total_fen"]) == (1500, 0, 1500)
    assert (res["saved_fen"], res["points_redeemed"], res["coupon_code"]) == (0, 0, None)
    assert (res["member_no"], res["warnings"]) == (None, ["member_unverified"])
    assert res["price_mismatch"] is True
    order = await session.get_one(Order, res["order_id"])
    await session.refresh(order)
    assert (order.member_id, order.member_no) == (None, member.member_no)  # the claim, kept
    # The console tells the claim from a link: member_no without member_id, in list and detail.
    staff = await auth_headers(session, await make_user(session, role="super_admin"))
    detail = await client.get(f"/api/v1/orders/{order.id}", headers=staff)
    assert detail.status_code == 200, detail.text
    assert (detail.json()["member_id"], detail.json()["member_no"]) == (None, member.member_no)
    listed = await client.get(
        "/api/v1/orders", params={"member_no": member.member_no}, headers=staff
    )
    assert listed.status_code == 200, listed.text
    rows = [(i["member_id"], i["member_no"]) for i in listed.json()["items"]]
    assert rows == [(None, member.member_no)]
    prices = await session.scalars(
        select(OrderLine.price_source).where(OrderLine.order_id == order.id)
    )
    assert set(prices.all()) == {"retail"}

    # Sent again: the same answer, warning included.
    again = await _post(client, creds, f"{T}/orders", body)
    assert again.status_code == 200, again.text
    assert (again.json()["member_no"], again.json()["warnings"]) == (None, ["member_unverified"])

    # A substituted line is a guest's too.
    chips_line = await session.scalar(
        select(OrderLine).where(OrderLine.order_id == order.id, OrderLine.product_id == chips.id)
    )
    assert chips_line is not None
    await order_lines.substitute_lines(
        session, order, {chips_line.id: cola.id}, note=None, actor=ADMIN
    )
    await session.refresh(order)
    assert order.total_fen == 700 + 350

    # Paid: not linked, so it earns the member nothing.
    await orders.record_manual_payment(session, order, ManualPaymentBody(), actor=ADMIN)
    await session.refresh(member)
    assert member.points_balance == 200
    earned = await session.scalar(
        select(MemberPointsEntry.id).where(MemberPointsEntry.order_id == order.id)
    )
    assert earned is None
    assert await find_mismatches(session) == []

    # With a token, the same member is priced as a member and nothing is warned.
    token = await _token(client, creds, session, member)
    r = await _post(client, creds, f"{T}/orders", _order("U-2", lines, member={"token": token}))
    assert r.status_code == 201, r.text
    assert (r.json()["total_fen"], r.json()["warnings"]) == (1360, [])
    assert r.json()["member_no"] == member.member_no
    linked = await client.get(f"/api/v1/orders/{r.json()['order_id']}", headers=staff)
    assert (linked.json()["member_id"], linked.json()["member_no"]) == (
        member.id,
        member.member_no,
    )


async def test_points_past_the_rule_or_the_balance_or_without_a_token_are_refused(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _store, creds, member, cola, _chips = await _world(session)
    await points.award(session, member.id, 200, kind="adjust", actor=ADMIN, reason="gift")
    token = await _token(client, creds, session, member)
    lines = [{"product_id": cola.id, "quantity": 2}]  # 600 at the member price
    cases = [
        (301, 422, "points_not_allowed"),  # over half of 600
        (300, 201, None),  # exactly half
    ]
    for i, (n, status, error) in enumerate(cases):
        body = _order(f"R-{i}", lines, member={"token": token}, redeem_points=n)
        r = await _post(client, creds, f"{T}/orders", body)
        assert r.status_code == (409 if n == 300 else status), r.text  # holds only 200
        if r.status_code != 201:
            assert r.json()["error"] == (error or "insufficient_points")
            assert r.json()["details"][0]["field"] == "redeem_points"
    r = await _post(
        client, creds, f"{T}/orders",
        _order("R-9", lines, member={"member_no": member.member_no}, redeem_points=10),
    )  # fmt: skip
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "redeem_points"
    assert await session.scalar(select(Order.id).where(Order.member_id == member.id)) is None
    await session.refresh(member)
    assert member.points_balance == 200


async def test_steps_of_points_pay_whole_fen(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _store, creds, member, cola, _chips = await _world(session)
    await set_program(session, redeem_points_per_yuan=1000)  # 10 points a fen
    await points.award(session, member.id, 1000, kind="adjust", actor=ADMIN, reason="gift")
    token = await _token(client, creds, session, member)
    lines = [{"product_id": cola.id, "quantity": 1}]
    r = await _post(client, creds, f"{T}/members/quote",
                    {"lines": lines, "member_token": token, "redeem_points": 15})  # fmt: skip
    assert r.status_code == 422
    assert "steps of 10" in r.json()["message"]
    r = await _post(client, creds, f"{T}/members/quote",
                    {"lines": lines, "member_token": token, "redeem_points": 150})  # fmt: skip
    assert r.status_code == 200, r.text
    assert (r.json()["points_fen"], r.json()["total_fen"]) == (15, 285)


async def test_refunds_give_points_back_in_proportion_and_a_full_refund_all(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    member, order, _res, _c, _l = await _member_order(client, session)
    await orders.record_manual_payment(session, order, ManualPaymentBody(), actor=ADMIN)
    await session.refresh(member)
    earned = member.points_balance - 500  # the order earned points on the 860 paid
    # 86 of 860 fen back: a tenth of the order, so 50 of the 500 points come back
    await refund_money(session, order, 86)
    back = await session.scalars(
        select(MemberPointsEntry.points).where(
            MemberPointsEntry.order_id == order.id, MemberPointsEntry.kind == "unredeem"
        )
    )
    assert list(back.all()) == [50]
    # 1 fen more: the points kept round up for the member (ceil(500 x 773 / 860) = 450)
    await refund_money(session, order, 1)
    assert await _returned(session, order) == 50
    await refund_money(session, order, 773)  # the rest: every point comes back
    assert await _returned(session, order) == 500
    await session.refresh(member)
    assert earned > 0
    assert member.points_balance == 1000  # and what the order earned is taken back
    assert await find_mismatches(session) == []


async def _returned(session: AsyncSession, order: Order) -> int:
    rows = await session.scalars(
        select(MemberPointsEntry.points).where(
            MemberPointsEntry.order_id == order.id, MemberPointsEntry.kind == "unredeem"
        )
    )
    return sum(rows.all())


async def test_an_order_cancelled_unpaid_gives_every_point_back(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    member, order, _res, _c, _l = await _member_order(client, session)
    await orders.cancel(session, order, reason="customer left", actor=ADMIN)
    assert await _returned(session, order) == 500
    await session.refresh(member)
    assert member.points_balance == 1000
    # Again: nothing more.
    from selfmart.members import redeem

    assert await redeem.settle(session, order, actor=ADMIN) == 0
    assert await find_mismatches(session) == []


async def test_the_same_order_resent_spends_its_points_once(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _store, creds, member, cola, _chips = await _world(session)
    await points.award(session, member.id, 300, kind="adjust", actor=ADMIN, reason="gift")
    token = await _token(client, creds, session, member)
    body = _order("D-1", [{"product_id": cola.id, "quantity": 2}], member={"token": token},
                  redeem_points=200)  # fmt: skip
    first = await _post(client, creds, f"{T}/orders", body)
    assert first.status_code == 201, first.text
    again = await _post(client, creds, f"{T}/orders", body)
    assert again.status_code == 200, again.text
    assert again.json()["points_redeemed"] == 200
    assert again.json()["total_fen"] == first.json()["total_fen"] == 400
    await session.refresh(member)
    assert member.points_balance == 100


async def test_tiers_row_unchanged_by_member_identification(session: AsyncSession) -> None:
    """The tier row read by pricing is the member's current one (sanity: no write to it)."""
    tier = await make_tier(session, 7)
    before = tier.updated_at
    member = await make_member(session, tier=tier)
    await identify.current_code(session, member)
    assert (await session.get_one(MemberTier, tier.id)).updated_at == before


async def test_the_redemption_rule_is_configured_with_its_bounds(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    from tests.builders import auth_headers, make_user

    h = await auth_headers(session, await make_user(session, role="admin"))
    url = "/api/v1/members/program"
    r = await client.patch(url, json={"redeem_max_share_bp": 10_001}, headers=h)
    assert r.status_code == 422
    assert r.json()["details"][0]["field"].endswith("redeem_max_share_bp")
    r = await client.patch(url, json={"redeem_points_per_yuan": 0}, headers=h)
    assert r.status_code == 422
    r = await client.patch(
        url, json={"redeem_points_per_yuan": 200, "redeem_max_share_bp": 3000}, headers=h
    )
    assert r.status_code == 200, r.text
    got = (await client.get(url, headers=h)).json()
    assert (got["redeem_points_per_yuan"], got["redeem_max_share_bp"]) == (200, 3000)


def test_a_member_token_is_for_its_terminal_and_thirty_minutes() -> None:
    from selfmart.members.exceptions import MemberTokenInvalid

    token = identify.member_token(42, 7)
    assert identify.read_member_token(token, terminal_id=7) == 42
    later = utcnow() + identify.MEMBER_TOKEN_TTL + timedelta(seconds=5)
    with pytest.raises(MemberTokenInvalid):
        identify.read_member_token(token, terminal_id=7, at=later)
    with pytest.raises(MemberTokenInvalid):
        identify.read_member_token(token, terminal_id=8)
    with pytest.raises(MemberTokenInvalid):
        identify.read_member_token(token[:-3] + "abc", terminal_id=7)


async def test_an_offline_order_of_a_member_spends_points_and_a_refusal_spares_the_others(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _store, creds, member, cola, _chips = await _world(session)
    await points.award(session, member.id, 250, kind="adjust", actor=ADMIN, reason="gift")
    token = await _token(client, creds, session, member)
    lines = [{"product_id": cola.id, "quantity": 2}]  # 600 at the member price
    batch = {
        "orders": [
            _order("B-1", lines, member={"token": token}, redeem_points=200),
            _order("B-2", lines, member={"token": token}, redeem_points=200),  # 50 left: refused
        ]
    }
    r = await _post(client, creds, f"{T}/orders/batch", batch)
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["created"], got["rejected"]) == (1, 1)
    assert got["results"][1]["error"]["error"] == "insufficient_points"
    assert got["results"][0]["result"]["points_fen"] == 200
    await session.refresh(member)
    assert member.points_balance == 50
    assert await find_mismatches(session) == []


async def test_a_substituted_line_of_a_member_gets_the_tier_discount_too(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    from selfmart.orders import lines as order_lines

    _store, creds, member, cola, chips = await _world(session)
    token = await _token(client, creds, session, member)
    body = _order("S-1", [{"product_id": cola.id, "quantity": 2}], member={"token": token})
    r = await _post(client, creds, f"{T}/orders", body)
    assert r.status_code == 201, r.text
    order = await session.get_one(Order, r.json()["order_id"])
    await session.refresh(order)
    first = await session.scalar(select(OrderLine).where(OrderLine.order_id == order.id))
    assert first is not None
    await order_lines.substitute_lines(session, order, {first.id: chips.id}, note=None, actor=ADMIN)
    new = await session.scalar(
        select(OrderLine).where(OrderLine.order_id == order.id, OrderLine.product_id == chips.id)
    )
    assert new is not None
    assert (new.discount_fen, new.amount_fen) == (80, 1520)  # 5% of 1600
    await session.refresh(order)
    assert order.total_fen == 1520


async def test_a_tier_without_member_prices_gets_its_discount_on_every_line(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """The tier's "discount rate or member prices": with member prices off, the cola (member
    price 300) is sold at its store price less the tier's 5%, like every other line; the quote,
    the order and a substituted line agree, and say what was saved."""
    from selfmart.orders import lines as order_lines

    _store, creds, member, cola, chips = await _world(session)
    tier = await session.get_one(MemberTier, member.tier_id)
    tier.member_prices = False
    await session.flush()
    r = await _post(client, creds, f"{T}/members/identify", {"code": await _code(session, member)})
    assert (r.json()["tier_discount_bp"], r.json()["tier_member_prices"]) == (500, False)
    token = str(r.json()["member_token"])
    lines = [{"product_id": cola.id, "quantity": 2}, {"product_id": chips.id, "quantity": 1}]
    r = await _post(client, creds, f"{T}/members/quote", {"lines": lines, "member_token": token})
    assert r.status_code == 200, r.text
    q = r.json()
    by = {ln["product_id"]: ln for ln in q["lines"]}
    assert (by[cola.id]["unit_price_fen"], by[cola.id]["price_source"]) == (350, "retail")
    assert (by[cola.id]["tier_discount_fen"], by[cola.id]["amount_fen"]) == (35, 665)
    assert by[cola.id]["saved_fen"] == 35  # 5% of 700, not the member price's 100
    assert (by[chips.id]["tier_discount_fen"], by[chips.id]["amount_fen"]) == (40, 760)
    assert (q["subtotal_fen"], q["saved_fen"], q["total_fen"]) == (1500, 75, 1425)

    body = _order("NP-1", lines, member={"token": token})
    r = await _post(client, creds, f"{T}/orders", body)
    assert r.status_code == 201, r.text
    assert (r.json()["saved_fen"], r.json()["total_fen"]) == (75, 1425)
    order = await session.get_one(Order, r.json()["order_id"])
    chips_line = await session.scalar(
        select(OrderLine).where(OrderLine.order_id == order.id, OrderLine.product_id == chips.id)
    )
    assert chips_line is not None
    # The chips were not on the shelf: a cola in their place, at the store price less 5%.
    await order_lines.substitute_lines(
        session, order, {chips_line.id: cola.id}, note=None, actor=ADMIN
    )
    new = await session.scalar(
        select(OrderLine).where(
            OrderLine.order_id == order.id,
            OrderLine.product_id == cola.id,
            OrderLine.line_no > chips_line.line_no,
        )
    )
    assert new is not None
    assert (new.unit_price_fen, new.discount_fen, new.amount_fen) == (350, 18, 332)

    # Turned back on, the same member pays member prices again.
    tier.member_prices = True
    await session.flush()
    r = await _post(client, creds, f"{T}/members/quote", {"lines": lines, "member_token": token})
    assert r.status_code == 200, r.text
    by = {ln["product_id"]: ln for ln in r.json()["lines"]}
    assert (by[cola.id]["unit_price_fen"], by[cola.id]["price_source"]) == (300, "member")
    assert (r.json()["saved_fen"], r.json()["total_fen"]) == (140, 1360)

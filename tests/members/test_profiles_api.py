"""Member profiles through the console API: every field, mobile format and uniqueness,
birthdays not in the future, masking for everyone in lists (whole values only through the
audited reveal), disable, erase on request with the orders anonymised, filters, paging and
the xlsx / csv export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import httpx
import openpyxl
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import utcnow
from selfmart.members.schemas import BIRTHDAY_ZONE
from selfmart.models import AuditLog, Member, Order
from tests.builders import auth_headers, make_store, make_user
from tests.orders.builders import make_order, make_product
from tests.support import fingerprint

from .helpers import make_member, make_tier, mobile, paid_order


async def _headers(session: AsyncSession, role: str = "super_admin") -> dict[str, str]:
    store = await make_store(session)
    return await auth_headers(session, await make_user(session, role=role, stores=[store]))


def _body(**over: Any) -> dict[str, Any]:
    return {
        "name": "李小龙",
        "mobile": mobile(),
        "gender": "male",
        "birthday": "1990-05-17",
        "card_no": f"C{mobile()}",
        "tags": ["vip", "night"],
        "marketing_consent": True,
        "channel": "console",
        **over,
    }


async def test_create_holds_every_field_and_lists_mask_the_person(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await _headers(session)
    store = await make_store(session)
    body = _body(mobile="+86 139-1234-5678", home_store_id=store.id)
    r = await client.post("/api/v1/members", json=body, headers=h)
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["member_no"].startswith("M")
    assert m["masked"] is True
    assert m["name"] == "李**"
    assert m["mobile"] == "139****5678"
    assert (m["gender"], m["birthday"], m["card_no"]) == ("male", "1990-05-17", body["card_no"])
    assert (m["tags"], m["marketing_consent"], m["home_store_id"]) == (
        ["vip", "night"], True, store.id,
    )  # fmt: skip
    assert (m["status"], m["points_balance"], m["channel"]) == ("active", 0, "console")
    stored = await session.get(Member, m["id"])
    assert stored is not None
    assert stored.mobile == "13912345678"
    r = await client.get("/api/v1/members", params={"q": "5678"}, headers=h)
    assert [i["mobile"] for i in r.json()["items"]] == ["139****5678"]
    entry = (
        await session.scalars(
            select(AuditLog).where(
                AuditLog.action == "member.create", AuditLog.entity_id == str(m["id"])
            )
        )
    ).one()
    assert "13912345678" not in str(entry.changes)
    assert "李小龙" not in str(entry.changes)


async def test_bad_mobiles_future_birthdays_and_duplicates_are_refused_naming_the_field(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await _headers(session)
    taken = await make_member(session)
    before = await fingerprint(session)
    tomorrow = (utcnow().astimezone(BIRTHDAY_ZONE).date() + timedelta(days=1)).isoformat()
    cases = [
        (_body(mobile="1381234567"), 422, "mobile"),  # 10 digits
        (_body(mobile="12812345678"), 422, "mobile"),  # 12x is no mobile prefix
        (_body(mobile="1381234567a"), 422, "mobile"),
        (_body(birthday=tomorrow), 422, "birthday"),
        (_body(name=""), 422, "name"),
        (_body(gender="x"), 422, "gender"),
        (_body(mobile=taken.mobile), 409, "mobile"),
    ]
    for body, status, field in cases:
        r = await client.post("/api/v1/members", json=body, headers=h)
        assert r.status_code == status, (body, r.text)
        assert any(d["field"].endswith(field) for d in r.json()["details"]), r.text
    assert await fingerprint(session) == before
    today = utcnow().astimezone(BIRTHDAY_ZONE).date().isoformat()
    r = await client.post("/api/v1/members", json=_body(birthday=today), headers=h)
    assert r.status_code == 201, r.text


async def test_edit_refuses_another_members_mobile_and_null_names(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await _headers(session)
    a = await make_member(session)
    b = await make_member(session)
    r = await client.patch(f"/api/v1/members/{a.id}", json={"mobile": b.mobile}, headers=h)
    assert r.status_code == 409
    assert r.json()["error"] == "mobile_taken"
    r = await client.patch(f"/api/v1/members/{a.id}", json={"name": None}, headers=h)
    assert r.status_code == 422
    r = await client.patch(
        f"/api/v1/members/{a.id}", json={"name": "王五", "tags": ["new"]}, headers=h
    )
    assert r.status_code == 200
    assert r.json()["name"] == "王*"
    assert r.json()["tags"] == ["new"]


async def test_reveal_needs_member_pii_and_every_reveal_is_audited(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    member = await make_member(session, name="赵六", mobile_no="13700001111")
    cashier = await _headers(session, role="cashier")
    r = await client.get(f"/api/v1/members/{member.id}", headers=cashier)
    assert r.status_code == 200
    assert r.json()["mobile"] == "137****1111"
    r = await client.post(f"/api/v1/members/{member.id}/reveal", headers=cashier)
    assert r.status_code == 403
    admin = await _headers(session, role="admin")
    for _ in range(2):
        r = await client.post(f"/api/v1/members/{member.id}/reveal", headers=admin)
        assert r.status_code == 200
        assert (r.json()["name"], r.json()["mobile"]) == ("赵六", "13700001111")
    n = await session.scalar(
        select(func.count()).where(
            AuditLog.action == "member.reveal", AuditLog.entity_id == str(member.id)
        )
    )
    assert n == 2


async def test_disable_then_erase_removes_personal_data_and_anonymises_orders(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await _headers(session)
    store = await make_store(session)
    member = await make_member(session, name="钱七", mobile_no="13600002222")
    order = await paid_order(session, store, member, 5_000)
    await session.execute(
        update(Order)
        .where(Order.id == order.id)
        .values(customer_name="钱七", customer_phone="13600002222", phone_last4="2222")
    )
    # Orders an older terminal only claimed for the number (not linked): anonymised too; an
    # order claiming another number is not this member's business.
    cola = await make_product(session, stores=[store], price_fen=350)
    claimed = await make_order(session, store, [(cola, 1)], member_no=member.member_no,
                               customer_name="钱七", customer_phone="13600002222")  # fmt: skip
    other = await make_order(session, store, [(cola, 1)], member_no="M-OTHER",
                             customer_name="赵九", customer_phone="13900009999")  # fmt: skip
    r = await client.post(
        f"/api/v1/members/{member.id}/status",
        json={"status": "disabled", "reason": "asked"},
        headers=h,
    )
    assert r.status_code == 200
    assert r.json()["status"] == "disabled"
    r = await client.post(f"/api/v1/members/{member.id}/erase", json={"reason": "PIPL"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "erased"
    assert r.json()["name"] is None
    await session.refresh(member)
    await session.refresh(order)
    assert (member.name, member.mobile, member.birthday, member.card_no) == (None,) * 4
    assert (order.customer_name, order.customer_phone, order.phone_last4) == (None,) * 3
    await session.refresh(claimed)
    await session.refresh(other)
    assert (claimed.customer_name, claimed.customer_phone, claimed.member_id) == (None, None, None)
    assert claimed.member_no == member.member_no
    assert (other.customer_name, other.phone_last4) == ("赵九", "9999")
    assert r.json()["status"] == "erased"
    assert order.member_id == member.id
    assert order.total_fen == 5_000
    trail = await session.scalars(
        select(AuditLog.changes).where(
            AuditLog.entity_type == "member", AuditLog.entity_id == str(member.id)
        )
    )
    assert "13600002222" not in str(trail.all())
    r = await client.patch(f"/api/v1/members/{member.id}", json={"name": "x"}, headers=h)
    assert r.status_code == 409


async def test_filters_and_paging(client: httpx.AsyncClient, session: AsyncSession) -> None:
    h = await _headers(session)
    tier = await make_tier(session, 3)
    a = await make_member(
        session, tier=tier, tags=["zz-tag"], birthday=utcnow().date().replace(month=2, day=3)
    )
    b = await make_member(session, tier=tier, tags=["zz-tag"])
    await make_member(session, tier=tier)

    async def ids(**params: Any) -> tuple[list[int], int]:
        r = await client.get("/api/v1/members", params={"tier_id": tier.id, **params}, headers=h)
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]], r.json()["total"]

    assert (await ids())[1] == 3
    assert await ids(tag="zz-tag") == ([b.id, a.id], 2)
    assert await ids(tag="zz-tag", size=1, page=2) == ([a.id], 2)
    assert await ids(birthday_month=2) == ([a.id], 1)
    assert await ids(q=a.member_no) == ([a.id], 1)
    r = await client.get("/api/v1/members", params={"birthday_month": 13}, headers=h)
    assert r.status_code == 422


async def test_a_reversed_spend_range_is_a_422_in_the_list_and_the_export(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """Found by the fuzz: the export answered 500 when max_spend_fen < min_spend_fen."""
    h = await _headers(session)
    await make_member(session)
    before = await fingerprint(session)
    for path in ("/api/v1/members", "/api/v1/members/export"):
        r = await client.get(path, params={"min_spend_fen": 5000, "max_spend_fen": 4999}, headers=h)
        assert r.status_code == 422, (path, r.text)
        assert r.json()["details"][0]["field"] == "max_spend_fen"
    assert await fingerprint(session) == before  # refused: nothing written, not even an audit
    for path in ("/api/v1/members", "/api/v1/members/export"):
        r = await client.get(path, params={"min_spend_fen": 5000, "max_spend_fen": 5000}, headers=h)
        assert r.status_code == 200, (path, r.text)


async def test_export_masks_without_member_pii_and_audits_with_it(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    tier = await make_tier(session, 4)
    await make_member(session, tier=tier, name="孙八", mobile_no="13500003333")
    from tests.builders import make_role

    role = await make_role(session, ["member:read", "member:export"])
    plain = await auth_headers(session, await make_user(session, role=role))
    r = await client.get(
        "/api/v1/members/export", params={"tier_id": tier.id, "format": "csv"}, headers=plain
    )
    assert r.status_code == 200, r.text
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[1][1:3] == ["孙*", "135****3333"]
    r = await client.get(
        "/api/v1/members/export",
        params={"tier_id": tier.id, "format": "csv", "encoding": "gbk"},
        headers=plain,
    )
    assert r.status_code == 200, r.text
    assert list(csv.reader(io.StringIO(r.content.decode("gbk"))))[1][1:3] == ["孙*", "135****3333"]
    r = await client.get(
        "/api/v1/members/export", params={"format": "csv", "encoding": "big5"}, headers=plain
    )
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "query.encoding"
    admin = await _headers(session)
    r = await client.get("/api/v1/members/export", params={"tier_id": tier.id}, headers=admin)
    ws = openpyxl.load_workbook(io.BytesIO(r.content)).active
    assert ws is not None
    values = [c.value for c in next(ws.iter_rows(min_row=2, max_row=2))]
    assert values[1:3] == ["孙八", "13500003333"]
    n = await session.scalar(select(func.count()).where(AuditLog.action == "member.export"))
    assert n == 1
    cashier = await _headers(session, role="cashier")
    r = await client.get("/api/v1/members/export", headers=cashier)
    assert r.status_code == 403


async def test_points_and_tiers_routes(client: httpx.AsyncClient, session: AsyncSession) -> None:
    h = await _headers(session)
    member = await make_member(session)
    url = f"/api/v1/members/{member.id}/points"
    r = await client.post(f"{url}/adjust", json={"points": 50, "reason": ""}, headers=h)
    assert r.status_code == 422  # a reason is required
    r = await client.post(f"{url}/adjust", json={"points": 50, "reason": "welcome"}, headers=h)
    assert r.status_code == 201
    assert r.json()["balance_after"] == 50
    r = await client.post(f"{url}/redeem", json={"points": 51}, headers=h)
    assert r.status_code == 409
    assert r.json()["error"] == "insufficient_points"
    r = await client.post(f"{url}/redeem", json={"points": 20}, headers=h)
    assert r.status_code == 201
    assert r.json()["balance_after"] == 30
    r = await client.get(url, headers=h)
    assert [e["points"] for e in r.json()["items"]] == [-20, 50]
    r = await client.get(f"{url}/lots", headers=h)
    assert [lot["remaining"] for lot in r.json()] == [30]
    r = await client.post(
        "/api/v1/members/tiers",
        json={"code": "gold_x", "name": "Gold", "rank": 900, "min_spend_fen": 100_000,
              "discount_bp": 500, "points_multiplier_pct": 150, "birthday_benefit": "双倍积分"},
        headers=h,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    tier_id = r.json()["id"]
    r = await client.post(
        "/api/v1/members/tiers", json={"code": "gold_y", "name": "G", "rank": 900}, headers=h
    )
    assert r.status_code == 409
    r = await client.patch(f"/api/v1/members/tiers/{tier_id}", json={"name": "Gold+"}, headers=h)
    assert r.status_code == 200
    assert r.json()["name"] == "Gold+"
    r = await client.patch("/api/v1/members/program", json={"points_per_yuan": 2}, headers=h)
    assert r.status_code == 200
    assert r.json()["points_per_yuan"] == 2
    r = await client.get(f"/api/v1/members/{member.id}/tier-history", headers=h)
    assert r.status_code == 200
    assert r.json() == []
    r = await client.get(f"/api/v1/members/{member.id}/tier-standing", headers=h)
    assert r.status_code == 200
    assert r.json()["spend_fen"] == 0
    r = await client.delete(f"/api/v1/members/tiers/{tier_id}", headers=h)
    assert r.status_code == 204
    cashier = await _headers(session, role="cashier")
    r = await client.post(f"{url}/adjust", json={"points": 5, "reason": "x"}, headers=cashier)
    assert r.status_code == 403


async def test_member_prices_is_a_tier_setting_kept_on_by_default_and_audited(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await _headers(session)
    r = await client.post(
        "/api/v1/members/tiers",
        json={"code": "silver_mp", "name": "Silver", "rank": 901},
        headers=h,
    )
    assert r.status_code == 201, r.text
    tier_id = r.json()["id"]
    assert r.json()["member_prices"] is True
    url = f"/api/v1/members/tiers/{tier_id}"
    r = await client.patch(url, json={"member_prices": None}, headers=h)
    assert r.status_code == 422
    assert "member_prices" in r.text
    r = await client.patch(url, json={"member_prices": "maybe"}, headers=h)
    assert r.status_code == 422
    r = await client.patch(url, json={"member_prices": False, "discount_bp": 300}, headers=h)
    assert r.status_code == 200, r.text
    assert (r.json()["member_prices"], r.json()["discount_bp"]) == (False, 300)
    listed = {t["id"]: t for t in (await client.get("/api/v1/members/tiers", headers=h)).json()}
    assert listed[tier_id]["member_prices"] is False
    entry = await session.scalar(
        select(AuditLog)
        .where(AuditLog.action == "member_tier.update", AuditLog.entity_id == str(tier_id))
        .order_by(AuditLog.id.desc())
    )
    assert entry is not None
    assert entry.changes["member_prices"] == {"before": True, "after": False}
    await client.delete(url, headers=h)

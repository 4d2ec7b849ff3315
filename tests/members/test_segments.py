"""Segments and RFM: quintile scores from recency, frequency and money; saved segments that
combine tier, store, tag, spend, last visit, birthday month and RFM; the members list's
spend, last-visit and tag filters; purchase history on the profile."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import utcnow
from selfmart.members import segments
from selfmart.members.schemas import RfmPick, SegmentRules
from selfmart.models import Member, MemberOrder
from tests.builders import auth_headers, make_store, make_user

from .helpers import make_member, make_tier, paid_order


async def _headers(session: AsyncSession) -> dict[str, str]:
    store = await make_store(session)
    return await auth_headers(session, await make_user(session, role="super_admin", stores=[store]))


async def _bought(session: AsyncSession, member: Member, store: object, fen: int, days_ago: int):  # type: ignore[no-untyped-def]
    order = await paid_order(session, store, member, fen)  # type: ignore[arg-type]
    await session.execute(
        update(MemberOrder)
        .where(MemberOrder.order_id == order.id)
        .values(paid_at=utcnow() - timedelta(days=days_ago))
    )
    return order


async def test_rfm_quintiles_and_segments_pick_the_right_members(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await _headers(session)
    store = await make_store(session)
    tag = f"t{store.id}"
    tier = await make_tier(session, 3, min_orders=9)  # members 9 and 10 reach it
    # Ten buyers: member i bought i times, i*1000 fen each time, last (11 - i) days ago:
    # so member 10 is the most recent, most frequent and biggest spender.
    buyers = []
    for i in range(1, 11):
        m = await make_member(session, tags=[tag] if i % 2 else [],
                              birthday=date(1990, 5 if i == 10 else 6, 1))  # fmt: skip
        for k in range(i):
            await _bought(session, m, store, 1000 * i, days_ago=11 - i + k * 20)
        buyers.append(m)
    idle = await make_member(session, tags=[tag])

    scores = [await segments.member_scores(session, m.id) for m in buyers]
    assert all(s is not None for s in scores)
    # Other tests' members may share the database: only the order is certain.
    rs = [s.r for s in scores if s]
    fs = [s.f for s in scores if s]
    ms = [s.m for s in scores if s]
    assert rs == sorted(rs)
    assert fs == sorted(fs)
    assert ms == sorted(ms)
    assert rs[-1] > rs[0]
    assert ms[-1] > ms[0]
    assert await segments.member_scores(session, idle.id) is None
    top = scores[-1]
    assert top is not None
    assert (top.orders, top.spend_fen) == (10, 100_000)

    async def picked(rules: SegmentRules) -> set[int]:
        stmt = segments.member_ids(rules, dialect=segments.dialect_of(session), now=utcnow())
        return set((await session.scalars(stmt)).all()) & {m.id for m in [*buyers, idle]}

    ids = [m.id for m in buyers]
    assert await picked(SegmentRules(tags=[tag])) == {*ids[0::2], idle.id}
    assert await picked(SegmentRules(tier_ids=[tier.id])) == set(ids[8:])
    assert await picked(SegmentRules(min_spend_fen=49_000, max_spend_fen=63_999)) == {ids[6]}
    assert await picked(SegmentRules(min_orders=9)) == set(ids[8:])
    assert await picked(SegmentRules(visited_within_days=3)) == set(ids[8:])
    assert await picked(SegmentRules(not_visited_days=9, tags=[tag])) == {ids[0], idle.id}
    assert await picked(SegmentRules(birthday_month=5)) == {ids[9]}
    best = RfmPick(r=[top.r], f=[top.f], m=[top.m])
    assert ids[9] in await picked(SegmentRules(rfm=best))
    assert ids[0] not in await picked(SegmentRules(rfm=RfmPick(m=[top.m])))
    # The spend window: orders older than it do not count.
    assert ids[9] not in await picked(SegmentRules(min_spend_fen=100_000, window_days=100))

    # Saved through the API, previewed, and used as a filter of the members list.
    body = {"name": f"lapsed {tag}", "rules": {"not_visited_days": 9, "tags": [tag]}}
    r = await client.post("/api/v1/members/segments", json=body, headers=h)
    assert r.status_code == 201, r.text
    seg = r.json()
    r = await client.post("/api/v1/members/segments", json=body, headers=h)
    assert r.status_code == 409
    r = await client.get("/api/v1/members", params={"segment_id": seg["id"], "size": 100},
                         headers=h)  # fmt: skip
    assert {m["id"] for m in r.json()["items"]} == {ids[0], idle.id}
    r = await client.post("/api/v1/members/segments/preview", json=body["rules"], headers=h)
    assert r.status_code == 200
    assert r.json()["count"] >= 2
    bad = {"name": "x", "rules": {"min_spend_fen": 10, "max_spend_fen": 5}}
    r = await client.post("/api/v1/members/segments", json=bad, headers=h)
    assert r.status_code == 422
    r = await client.get("/api/v1/members/segments", headers=h)
    assert seg["id"] in [s["id"] for s in r.json()]

    # The list's own filters: tag (in SQL, so paging counts right), spend, last visit.
    r = await client.get("/api/v1/members", params={"tag": tag, "size": 2}, headers=h)
    assert r.json()["total"] == 6
    assert len(r.json()["items"]) == 2
    r = await client.get(
        "/api/v1/members", params={"tag": tag, "min_spend_fen": 81_000, "size": 50}, headers=h
    )
    assert {m["id"] for m in r.json()["items"]} == {ids[8]}
    since = (utcnow() - timedelta(days=2, hours=12)).isoformat()
    r = await client.get("/api/v1/members", params={"last_visit_from": since, "size": 50},
                         headers=h)  # fmt: skip
    assert {m["id"] for m in r.json()["items"]} >= set(ids[8:])
    assert not {m["id"] for m in r.json()["items"]} & set(ids[:8])

    # The profile's purchase history.
    r = await client.get(f"/api/v1/members/{ids[2]}/history", headers=h)
    hist = r.json()
    assert (hist["orders"], hist["spend_fen"], hist["average_fen"]) == (3, 9000, 3000)
    assert len(hist["favourite_products"]) == 3
    assert hist["rfm"]["orders"] == 3
    r = await client.get(f"/api/v1/members/{ids[2]}/orders", headers=h)
    assert r.json()["total"] == 3
    r = await client.get("/api/v1/members/rfm", headers=h)
    assert sum(c["members"] for c in r.json()) >= 10

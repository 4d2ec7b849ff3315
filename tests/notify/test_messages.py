"""The message centre: own messages only, unread count, mark read, read all."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import User
from selfmart.notify import service as notify
from tests.builders import auth_headers, make_store, make_user

URL = "/api/v1/messages"


async def _notify(session: AsyncSession, user: User, title: str, **kw: object) -> int:
    sent = await notify.send(
        session,
        kind="stock.low",
        title=title,
        body=f"{title}的正文",
        user_ids=[user.id],
        channels=["in_app"],
        **kw,  # type: ignore[arg-type]
    )
    assert sent.deliveries == []  # in-app only: the message row is the delivery
    return sent.messages[0].id


async def test_list_count_and_read_own_messages(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    store = await make_store(session)
    me = await make_user(session, role="cashier", stores=[store])
    other = await make_user(session, role="cashier", stores=[store])
    first = await _notify(session, me, "低库存：雪碧", store_id=store.id, link="/alerts/1")
    second = await _notify(session, me, "低库存：可乐", data={"product_id": 5})
    theirs = await _notify(session, other, "别人的消息")
    headers = await auth_headers(session, me)

    r = await client.get(URL, headers=headers)
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 2
    assert [m["id"] for m in page["items"]] == [second, first]  # newest first
    item = page["items"][1]
    assert item["title"] == "低库存：雪碧"
    assert (item["kind"], item["link"], item["store_id"]) == ("stock.low", "/alerts/1", store.id)
    assert item["read_at"] is None
    assert page["items"][0]["data"] == {"product_id": 5}
    assert (await client.get(f"{URL}/unread-count", headers=headers)).json() == {"count": 2}

    r = await client.post(f"{URL}/{first}/read", headers=headers)
    assert (r.status_code, r.content) == (204, b"")
    assert (await client.post(f"{URL}/{first}/read", headers=headers)).status_code == 204
    assert (await client.get(f"{URL}/unread-count", headers=headers)).json() == {"count": 1}
    unread = (await client.get(URL, headers=headers, params={"unread": "true"})).json()
    assert [m["id"] for m in unread["items"]] == [second]
    read = (await client.get(URL, headers=headers, params={"unread": "false"})).json()
    assert [m["id"] for m in read["items"]] == [first]
    assert read["items"][0]["read_at"] is not None

    r = await client.post(f"{URL}/{theirs}/read", headers=headers)
    assert (r.status_code, r.json()["error"]) == (404, "not_found")

    r = await client.post(f"{URL}/read-all", headers=headers)
    assert r.json() == {"updated": 1}
    assert (await client.get(f"{URL}/unread-count", headers=headers)).json() == {"count": 0}
    assert (await client.post(f"{URL}/read-all", headers=headers)).json() == {"updated": 0}

    their_headers = await auth_headers(session, other)
    assert (await client.get(f"{URL}/unread-count", headers=their_headers)).json() == {"count": 1}


async def test_message_centre_needs_login(client: httpx.AsyncClient) -> None:
    assert (await client.get(URL)).status_code == 401
    assert (await client.get(f"{URL}/unread-count")).status_code == 401
    assert (await client.post(f"{URL}/1/read")).status_code == 401
    assert (await client.post(f"{URL}/read-all")).status_code == 401


async def test_bad_ids_and_params_are_422(session: AsyncSession, client: httpx.AsyncClient) -> None:
    headers = await auth_headers(session, await make_user(session))
    r = await client.post(f"{URL}/abc/read", headers=headers)
    assert (r.status_code, r.json()["details"][0]["field"]) == (422, "path.message_id")
    r = await client.get(URL, headers=headers, params={"unread": "maybe"})
    assert (r.status_code, r.json()["details"][0]["field"]) == (422, "query.unread")

"""Message-centre texts are stored as keys and parameters, so the console words each message in
its reader's language; the Chinese title and body stay for the outside channels."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.inventory import service as inventory
from selfmart.jobs import runtime
from selfmart.kit import aftercommit
from selfmart.kit.time import utcnow
from selfmart.models import AlertRoute
from tests.builders import auth_headers, make_store, make_user
from tests.inventory.builders import CLERK, make_product, stock


@pytest.fixture
async def inline_jobs(
    app: Any, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[None]:
    async with runtime.running(app.state.settings, sessionmaker):
        yield


async def test_a_stock_alert_reaches_the_message_centre_as_keys_and_parameters(
    session: AsyncSession, client: httpx.AsyncClient, inline_jobs: None
) -> None:
    store = await make_store(session, name="静安店")
    manager = await make_user(session, role="admin", stores=[store])
    product = await make_product(session, name="雪碧 500ml", low_stock_threshold=2)
    await stock(session, store.id, product.id, 3)
    await inventory.deduct_for_sale(
        session,
        store_id=store.id,
        lines=[(product.id, 3)],
        document=("order", 1),
        actor=CLERK,
        allow_negative=True,
    )
    await session.flush()
    await aftercommit.run_pending(session)

    r = await client.get("/api/v1/messages", headers=await auth_headers(session, manager))
    assert r.status_code == 200, r.text
    (message,) = r.json()["items"]
    assert message["title"] == "【静安店】库存预警"  # what email and SMS carry
    assert message["text"] == {
        "title": {"key": "stock.alertTitle", "params": {"store": "静安店"}},
        "lines": [{"key": "stock.lineSoldOut", "params": {"product": "雪碧 500ml", "quantity": 0}}],
        "more": 0,
    }
    assert "text" not in message["data"]


async def test_a_route_test_message_is_keys_and_parameters_too(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    store = await make_store(session, name="张江店")
    manager = await make_user(session, role="admin", stores=[store], display_name="李店长")
    route = AlertRoute(
        name="店长提醒",
        store_id=store.id,
        target="role",
        role_id=(await _admin_role_id(session, manager.id)),
        channels=["in_app"],
        kinds=[],
        mode="immediate",
        is_active=True,
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    session.add(route)
    await session.flush()
    headers = await auth_headers(session, manager)
    r = await client.post(f"/api/v1/stock-alert-routes/{route.id}/test", headers=headers)
    assert r.status_code == 200, r.text
    r = await client.get("/api/v1/messages", headers=headers)
    (message,) = r.json()["items"]
    assert message["text"]["title"] == {"key": "stock.testTitle", "params": {"store": "张江店"}}
    assert message["text"]["lines"][0]["key"] == "stock.testBody"
    assert message["text"]["lines"][0]["params"]["route"] == "店长提醒"


async def _admin_role_id(session: AsyncSession, user_id: int) -> int:
    from sqlalchemy import select

    from selfmart.models import UserRole

    role_id = await session.scalar(select(UserRole.role_id).where(UserRole.user_id == user_id))
    assert role_id is not None
    return int(role_id)

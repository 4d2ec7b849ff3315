"""Audit entries name their entity (a product's name, an order's number): stored when written
so the name survives a delete, found by a part of it, and resolved on reading for entries that
were written without one; the action filter lists the actions found, in the reader's scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.audit.schemas import AuditFilter
from selfmart.iam.actor import Actor
from selfmart.iam.permissions import Perm
from selfmart.kit.pagination import PageParams
from selfmart.migrate import alembic_config
from tests.builders import auth_headers, make_role, make_store, make_user
from tests.orders.builders import make_order, make_product

from .helpers import add_entry

URL = "/api/v1/audit-logs"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PRODUCTS = "/api/v1/products"


async def _items(
    client: httpx.AsyncClient, headers: dict[str, str], **params: str | int
) -> list[dict[str, object]]:
    r = await client.get(URL, headers=headers, params={"size": 200, **params})
    assert r.status_code == 200, r.text
    items: list[dict[str, object]] = r.json()["items"]
    return items


async def test_a_change_names_its_entity_and_the_name_survives_the_delete(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    headers = await auth_headers(session, await make_user(session))
    product = await make_product(session, name="农夫山泉 550ml 标签测试")
    r = await client.patch(f"{PRODUCTS}/{product.id}", headers=headers, json={"price_fen": 249})
    assert r.status_code == 200, r.text
    r = await client.delete(f"{PRODUCTS}/{product.id}", headers=headers)
    assert r.status_code in (200, 204), r.text

    items = await _items(client, headers, entity_type="product", entity_id=str(product.id))
    assert {i["action"] for i in items} == {"product.update", "product.delete"}
    # the price change's own snapshot holds no name: it was looked up when written
    assert {i["entity_label"] for i in items} == {"农夫山泉 550ml 标签测试"}
    # found by a part of the name, from the filter and from the free text
    for params in ({"entity": "山泉 550"}, {"q": "山泉 550"}):
        found = await _items(client, headers, **params)
        assert {i["entity_id"] for i in found} == {str(product.id)}, params


async def test_order_stock_and_user_entries_are_named(session: AsyncSession) -> None:
    store = await make_store(session)
    product = await make_product(session, name="康师傅红烧牛肉面")
    order = await make_order(session, store, [(product, 1)])
    actor = Actor(kind="user", id=7, name="alice", store_ids=None)
    await audit.record(session, actor, "order.complete", "order", order.id, store_id=store.id)
    await audit.record(
        session, actor, "stock.adjust", "stock", f"{store.id}:{product.id}", store_id=store.id
    )
    await audit.record(session, actor, "user.update", "user", 999, after={"display_name": "王小明"})
    rows = audit.entry_rows(
        actor, "order.create", "order", [audit.Change(order.id, after={"order_no": "SO-1"})]
    )
    await session.flush()
    labels = {
        e.action: e.entity_label
        for e in (await audit.search(session, actor, AuditFilter(actor="alice"), _page()))[0]
    }
    assert labels == {
        "order.complete": order.order_no,
        "stock.adjust": "康师傅红烧牛肉面",
        "user.update": "王小明",
    }
    assert rows[0]["entity_label"] == "SO-1"


def _page() -> PageParams:
    return PageParams(page=1, size=50)


async def test_entries_written_without_a_name_are_named_on_reading(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    headers = await auth_headers(session, await make_user(session))
    product = await make_product(session, name="旺仔牛奶 245ml")
    store = await make_store(session)
    old = await add_entry(session, T0, entity_type="product", entity_id=str(product.id))
    stock = await add_entry(
        session, T0, entity_type="stock", entity_id=f"{store.id}:{product.id}", store_id=store.id
    )
    gone = await add_entry(session, T0, entity_type="product", entity_id="987654321")
    labels = {i["id"]: i["entity_label"] for i in await _items(client, headers)}
    assert labels[old.id] == "旺仔牛奶 245ml"
    assert labels[stock.id] == "旺仔牛奶 245ml"
    assert labels[gone.id] is None


async def test_search_by_the_actors_name(session: AsyncSession, client: httpx.AsyncClient) -> None:
    headers = await auth_headers(session, await make_user(session))
    a = await add_entry(session, T0, actor_name="李经理", actor_id="11")
    b = await add_entry(session, T0 + timedelta(minutes=1), actor_name="王收银", actor_id="12")
    ids = [i["id"] for i in await _items(client, headers, actor="经理")]
    assert a.id in ids
    assert b.id not in ids


async def test_the_action_list_holds_the_actions_the_reader_sees(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    mine, other = await make_store(session), await make_store(session)
    role = await make_role(session, [Perm.AUDIT_READ])
    headers = await auth_headers(session, await make_user(session, role=role, stores=[mine]))
    await add_entry(session, T0, action="zz_test.mine", store_id=mine.id)
    await add_entry(session, T0, action="zz_test.mine", store_id=mine.id)
    await add_entry(session, T0, action="zz_test.other", store_id=other.id)
    r = await client.get(f"{URL}/actions", headers=headers)
    assert r.status_code == 200, r.text
    found = [a for a in r.json() if a.startswith("zz_test.")]
    assert found == ["zz_test.mine"]
    nobody = await auth_headers(
        session, await make_user(session, role=await make_role(session, []))
    )
    assert (await client.get(f"{URL}/actions", headers=nobody)).status_code == 403


def test_the_migration_names_the_entries_already_written(tmp_path: Path) -> None:
    path = tmp_path / "labels.db"
    url = f"sqlite+aiosqlite:///{path}"
    command.upgrade(alembic_config(url), "aud_0001-1")
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO tags (id, name, created_at) VALUES (5, '新品上架', :t)"),
            {"t": T0},
        )
        for i, (etype, eid) in enumerate([("tag", "5"), ("tag", "6"), ("job", "5")]):
            conn.execute(
                text(
                    "INSERT INTO audit_logs (id, occurred_at, actor_type, actor_name, action,"
                    " entity_type, entity_id, changes) VALUES (:id, :t, 'user', 'a', 'x.y',"
                    " :etype, :eid, '{}')"
                ),
                {"id": i + 1, "t": T0, "etype": etype, "eid": eid},
            )
    command.upgrade(alembic_config(url), "aud_0001")
    with engine.connect() as conn:
        got = conn.execute(text("SELECT id, entity_label FROM audit_logs ORDER BY id")).all()
    engine.dispose()
    assert [tuple(row) for row in got] == [(1, "新品上架"), (2, None), (3, None)]

"""A database connection lost in the middle of a request (a server restart, a network cut) or
refused is a 503 with Retry-After that the client may simply resend, not a 500; nothing of the
request is written, the pool replaces the connection, and the next request succeeds; a
terminal's order resent after the outage is taken once."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import Table, bindparam, func, insert, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from selfmart.app import create_app
from selfmart.db import make_engine, make_sessionmaker
from selfmart.deps import SessionDep
from selfmart.kit import hotsql
from selfmart.kit.hotsql import HotStatement
from selfmart.kit.time import utcnow
from selfmart.models import Order, Tag

from .builders import auth_headers, make_store, make_user
from .faults import Gate
from .orders.builders import make_stocked_product
from .support import settings_for
from .terminals.builders import make_active_terminal

tags = cast(Table, Tag.__table__)
ORDERS = "/api/terminal/v1/orders"
COUNT = HotStatement(select(func.count()).where(tags.c.name == bindparam("name")))


def _app_with_routes(db_url: str, engine: AsyncEngine, name: str) -> Any:
    """An app on a real pool (not the test's rolled-back connection, which a lost connection
    would take with it), with routes that lose their connection half-way."""
    app = create_app(settings_for(db_url), engine=engine)

    async def _kill(session: SessionDep) -> None:
        session.add(Tag(name=name, created_at=utcnow()))
        await session.flush()  # written in the request's transaction, never committed
        pid = await session.scalar(text("SELECT pg_backend_pid()"))
        async with engine.connect() as other:
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    async def lost_on_driver(session: SessionDep) -> None:
        await _kill(session)
        await hotsql.fetch(session, COUNT, {"name": name})

    async def lost_in_sqlalchemy(session: SessionDep) -> None:
        await _kill(session)
        await session.execute(select(func.count()).select_from(tags))

    async def alive(session: SessionDep) -> dict[str, int]:
        n = await session.scalar(select(func.count()).where(tags.c.name == name))
        return {"n": int(n or 0)}

    app.add_api_route("/api/v1/_lost/driver", lost_on_driver, methods=["POST"])
    app.add_api_route("/api/v1/_lost/sqlalchemy", lost_in_sqlalchemy, methods=["POST"])
    app.add_api_route("/api/v1/_alive", alive, methods=["POST"])  # GET is the console's
    return app


@pytest.mark.parametrize("where", ["driver", "sqlalchemy"])
async def test_a_lost_connection_is_a_503_and_the_next_request_succeeds(
    db_url: str, engine: AsyncEngine, backend: str, where: str
) -> None:
    if backend != "postgresql":
        pytest.skip("needs a database server that can end a connection: PostgreSQL only")
    name = f"lost{uuid.uuid4().hex[:8]}"
    app = _app_with_routes(db_url, engine, name)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        r = await c.post(f"/api/v1/_lost/{where}")
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "database_unavailable"
        assert r.headers["retry-after"] == "2"
        for _ in range(3):  # the pool gave up the dead connection: the next ones work
            ok = await c.post("/api/v1/_alive")
            assert ok.status_code == 200, ok.text
            assert ok.json() == {"n": 0}  # the lost request wrote nothing


async def test_a_connection_error_raised_anywhere_is_a_503(
    db_url: str, engine: AsyncEngine
) -> None:
    """On both backends: whatever path meets a lost connection, the answer is the same 503."""
    app = create_app(settings_for(db_url), engine=engine)

    async def lost(session: SessionDep) -> None:
        await session.execute(insert(tags).values(name=f"x{uuid.uuid4().hex[:8]}"))
        raise OperationalError(
            "SELECT 1", {}, ConnectionResetError("connection reset"), False, True
        )

    app.add_api_route("/api/v1/_lost/raised", lost, methods=["POST"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        r = await c.post("/api/v1/_lost/raised")
    assert r.status_code == 503
    assert r.json()["error"] == "database_unavailable"
    async with make_sessionmaker(engine)() as s:
        assert await s.scalar(select(func.count()).where(tags.c.name.like("x%"))) == 0


async def test_the_database_going_away_and_coming_back_loses_no_terminal_order(
    db_url: str, engine: AsyncEngine, backend: str
) -> None:
    """PostgreSQL out of reach (every connection cut, new ones refused), then back: while it
    is away a terminal's order and a console's read are 503 database_unavailable; once it is
    back the terminal's resend of the same order is taken once, and its second resend is the
    idempotent replay of the same order. The order taken before the outage is still there."""
    if backend != "postgresql":
        pytest.skip("needs a database server to go away: PostgreSQL only")
    async with make_sessionmaker(engine)() as session:
        store = await make_store(session)
        creds = await make_active_terminal(session, store)
        _, barcode = await make_stocked_product(session, store, 5)
        admin = await make_user(session)
        console = await auth_headers(session, admin)
        await session.commit()

    bought = (utcnow() - timedelta(seconds=5)).isoformat()

    def order(client_order_id: str) -> tuple[bytes, dict[str, str]]:
        """The same order each time, signed afresh (a new nonce), as a terminal resends it."""
        return creds.signed_json(
            "POST",
            ORDERS,
            {
                "client_order_id": client_order_id,
                "purchased_at": bought,
                "lines": [{"barcode": barcode, "quantity": 1}],
            },
        )

    async with Gate.before(db_url) as gate:
        gated = gate.url(db_url)
        app_engine = make_engine(gated)
        app = create_app(settings_for(gated), engine=app_engine)
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                before = await c.post(ORDERS, content=(b := order("before"))[0], headers=b[1])
                assert before.status_code == 201, before.text

                await gate.shut()
                # the pooled connection is cut mid-use, then new connections are refused
                for attempt in range(2):
                    body, headers = order("during")
                    r = await c.post(ORDERS, content=body, headers=headers)
                    assert r.status_code == 503, (attempt, r.text)
                    assert r.json()["error"] == "database_unavailable"
                    assert r.headers["retry-after"] == "2"
                read = await c.get("/api/v1/orders", headers=console)
                assert read.status_code == 503, read.text
                assert read.json()["error"] == "database_unavailable"

                await gate.open()
                body, headers = order("during")
                taken = await c.post(ORDERS, content=body, headers=headers)
                assert taken.status_code == 201, taken.text
                body, headers = order("during")
                replay = await c.post(ORDERS, content=body, headers=headers)
                assert replay.status_code == 200, replay.text
                assert replay.json()["order_no"] == taken.json()["order_no"]
                assert (await c.get("/api/v1/orders", headers=console)).status_code == 200
        finally:
            await app_engine.dispose()

    async with make_sessionmaker(engine)() as session:
        taken_ids = (
            await session.scalars(
                select(Order.client_order_id).where(Order.terminal_id == creds.terminal.id)
            )
        ).all()
    assert sorted(str(i) for i in taken_ids) == ["before", "during"]

"""docs/terminal-protocol.md keeps up with the terminal's order routes: every error they can
answer is in its table with its status, every reason a refused line can give is named, and the
documented order and batch (the fenced block after each `<!-- example:NAME -->` marker) are sent
to the real app and answered as the page says."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.errors import AppError, IllegalTransition, PayloadTooLarge, ValidationFailed
from selfmart.orders import pricing
from selfmart.orders.exceptions import IdempotencyConflict, RetryLater, UnknownProduct
from selfmart.orders.lookup import OrderNotFound
from selfmart.orders.router import terminal_router
from selfmart.terminals import exceptions as signed
from tests.builders import make_store
from tests.orders.builders import make_product, stock
from tests.terminals.builders import make_active_terminal

DOC = Path(__file__).resolve().parents[2] / "docs" / "terminal-protocol.md"
_BLOCK = re.compile(r"<!-- example:(?P<name>[a-z-]+) -->\n```[a-z]*\n(?P<body>.*?)\n```", re.S)
_ROW = re.compile(r"^\| (?P<status>\d{3}) \| `(?P<code>[a-z_]+)`", re.M)

#: What the order routes (POST /orders, /orders/batch, GET /orders/{order_no} and
#: /orders/{order_no}/payment-failures) raise, besides the signature's refusals.
ORDER_ERRORS: list[type[AppError]] = [
    ValidationFailed,
    UnknownProduct,
    IdempotencyConflict,
    IllegalTransition,
    OrderNotFound,
    PayloadTooLarge,
    RetryLater,
]
SIGNATURE_ERRORS: list[type[AppError]] = [
    signed.MissingHeader,
    signed.InvalidHeader,
    signed.StaleTimestamp,
    signed.UnknownKey,
    signed.BadSignature,
    signed.KeyRevoked,
    signed.KeyExpired,
    signed.KeyUnusable,
    signed.ReplayedNonce,
    signed.TerminalDisabled,
]
#: Answered by the app's handler for a lost database connection (errors.database_error).
DATABASE_UNAVAILABLE = (503, "database_unavailable")


def _text() -> str:
    return DOC.read_text(encoding="utf-8")


def _table() -> set[tuple[int, str]]:
    return {(int(m["status"]), m["code"]) for m in _ROW.finditer(_text())}


def _examples() -> dict[str, str]:
    return {m["name"]: m["body"] for m in _BLOCK.finditer(_text())}


def test_every_error_of_the_order_routes_is_in_the_table_with_its_status() -> None:
    table = _table()
    wanted = {(cls.status, cls.code) for cls in ORDER_ERRORS + SIGNATURE_ERRORS}
    wanted.add(DATABASE_UNAVAILABLE)
    assert sorted(wanted - table) == []
    # Every status a terminal order route declares is one the table explains.
    declared = {
        int(status)
        for route in terminal_router.routes
        if isinstance(route, APIRoute) and route.path.startswith("/orders")
        for status in route.responses
        if int(status) >= 400
    }
    assert declared, "no terminal order routes found"
    assert sorted(declared - {status for status, _code in table}) == []


def test_every_reason_a_refused_line_gives_is_named() -> None:
    source = Path(pricing.__file__).read_text(encoding="utf-8")
    reasons = set(re.findall(r'reason="([a-z_]+)"', source))
    assert {"unknown_product", "product_not_listed"} <= reasons
    text = _text()
    assert sorted(r for r in reasons if f"`{r}`" not in text) == []


def _request_body(block: str) -> tuple[str, Any]:
    head, _, body = block.partition("\n\n")
    method, target = head.splitlines()[0].split(" ")[:2]
    assert method == "POST"
    return target, json.loads(body)


async def _post(client: httpx.AsyncClient, creds: Any, target: str, payload: Any) -> httpx.Response:
    body, headers = creds.signed_json("POST", target, payload)
    return await client.post(target, content=body, headers=headers)


async def test_the_documented_order_and_batch_are_answered_as_the_page_says(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    examples = _examples()
    assert {"order-request", "order-answer", "batch-request", "batch-answer"} <= set(examples)
    store = await make_store(session)
    for barcode, price in (("6901234567892", 350), ("6920152400166", 800)):
        product = await make_product(session, stores=[store], barcode=barcode, price_fen=price)
        await stock(session, store, product, 100)
    creds = await make_active_terminal(session, store)

    # The order: 201 with the documented fields and prices; sent again, 200 and a duplicate.
    target, order = _request_body(examples["order-request"])
    documented = json.loads(examples["order-answer"])
    r = await _post(client, creds, target, order)
    assert r.status_code == 201, r.text
    answer = r.json()
    assert set(answer) == set(documented)
    ours = {"order_id", "order_no", "receipt_url"}  # the server's own, different each time
    assert {k: v for k, v in answer.items() if k not in ours} == {
        k: v for k, v in documented.items() if k not in ours
    }
    r = await _post(client, creds, target, order)
    assert (r.status_code, r.json()["outcome"]) == (200, "duplicate")
    assert r.json()["order_no"] == answer["order_no"]

    # The batch holding one client order id three times (the same body, then another).
    target, batch = _request_body(examples["batch-request"])
    documented = json.loads(examples["batch-answer"])
    r = await _post(client, creds, target, batch)
    assert r.status_code == 200, r.text
    answer = r.json()
    for key in ("created", "duplicates", "rejected"):
        assert answer[key] == documented[key], key
    assert len(answer["results"]) == len(documented["results"])
    for got, doc in zip(answer["results"], documented["results"], strict=True):
        assert (got["index"], got["client_order_id"], got["outcome"]) == (
            doc["index"],
            doc["client_order_id"],
            doc["outcome"],
        )
        if doc["error"] is None:
            assert got["error"] is None
            assert got["result"]["outcome"] == doc["result"]["outcome"]
        else:
            assert got["result"] is None
            assert got["error"]["error"] == doc["error"]["error"]
            assert [(d["field"], d["reason"]) for d in got["error"]["details"]] == [
                (d["field"], d["reason"]) for d in doc["error"]["details"]
            ]
    created, duplicate = answer["results"][0]["result"], answer["results"][2]["result"]
    assert duplicate["order_no"] == created["order_no"]

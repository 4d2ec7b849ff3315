"""A terminal written from docs/terminal-protocol.md alone, with none of selfmart's code: its
own canonical strings and HMAC, against the real app. If the page and the server drift apart
in a way the worked examples do not catch (query canonicalisation, escapes, the flow from
activation to an order), this client breaks."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import unquote_to_bytes

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from tests.builders import auth_headers, make_store, make_user
from tests.orders.builders import make_product
from tests.terminals.builders import make_terminal

_KEEP = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def _enc(raw: bytes) -> str:
    return "".join(chr(b) if b in _KEEP else f"%{b:02X}" for b in raw)


def _canonical_target(target: str) -> str:
    path, _, query = target.partition("?")
    out = "/".join(_enc(unquote_to_bytes(segment)) for segment in path.split("/"))
    pairs = []
    for piece in query.split("&"):
        if piece:
            name, _, value = piece.partition("=")
            pairs.append(tuple(_enc(unquote_to_bytes(s.replace("+", " "))) for s in (name, value)))
    if pairs:
        out += "?" + "&".join(f"{n}={v}" for n, v in sorted(pairs))
    return out


class DocTerminal:
    def __init__(self, client: httpx.AsyncClient, key_id: str, secret: str) -> None:
        self.client, self.key_id, self.secret = client, key_id, secret

    def headers(self, method: str, target: str, body: bytes = b"") -> dict[str, str]:
        ts, nonce = str(int(time.time())), secrets.token_urlsafe(24)
        canonical = "\n".join(
            [method, _canonical_target(target), ts, nonce, hashlib.sha256(body).hexdigest()]
        )
        signature = hmac.new(self.secret.encode(), canonical.encode(), hashlib.sha256)
        return {
            "X-Selfmart-Key-Id": self.key_id,
            "X-Selfmart-Timestamp": ts,
            "X-Selfmart-Nonce": nonce,
            "X-Selfmart-Signature": signature.hexdigest(),
        }

    async def get(self, target: str) -> httpx.Response:
        return await self.client.get(target, headers=self.headers("GET", target))

    async def post(self, target: str, doc: object) -> httpx.Response:
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
        headers = self.headers("POST", target, body) | {"Content-Type": "application/json"}
        return await self.client.post(target, content=body, headers=headers)


async def test_a_terminal_built_from_the_protocol_page_alone_sells(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    milk = await make_product(session, name="牛奶 1L", stores=[store], price_fen=1290)
    terminal = await make_terminal(session, store)
    admin = await auth_headers(session, await make_user(session, role="super_admin"))

    # §1: an operator issues the code; the terminal exchanges it (case and dashes ignored).
    issued = await client.post(f"/api/v1/terminals/{terminal.id}/activation-code", headers=admin)
    assert issued.status_code in (200, 201), issued.text
    typed = issued.json()["activation_code"].lower().replace("-", " ")
    r = await client.post(
        "/api/terminal/v1/activate",
        json={"terminal_code": terminal.code, "activation_code": typed},
    )
    assert r.status_code == 200, r.text
    t = DocTerminal(client, r.json()["key_id"], r.json()["secret"])

    # §5a: the product list, with a query string that needs canonicalising (+, %XX, order).
    r = await t.get("/api/terminal/v1/products?z=%e7%89%9b+1L&a=1&flag")
    assert r.status_code == 200, r.text
    listed = r.json()
    (item,) = [i for i in listed["items"] if i["product_id"] == milk.id]
    assert item["price_fen"] == 1290

    # An order, its resend (a new signature, the same body), and its status.
    order = {
        "client_order_id": uuid.uuid4().hex,
        "purchased_at": datetime.now(UTC).isoformat(),
        "lines": [{"barcode": item["barcodes"][0], "quantity": 2, "unit_price_fen": 1290}],
        "total_fen": 2580,
    }
    r = await t.post("/api/terminal/v1/orders", order)
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["status"], made["total_fen"], made["price_mismatch"]) == (
        "awaiting_payment",
        2580,
        False,
    )
    again = await t.post("/api/terminal/v1/orders", order)
    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
    assert again.json()["order_no"] == made["order_no"]
    r = await t.get(f"/api/terminal/v1/orders/{made['order_no']}")
    assert (r.status_code, r.json()["status"]) == (200, "awaiting_payment")

    # §5: the payment failed.
    failure = {
        "attempt_id": "PAY-0001",
        "method": "wechat",
        "amount_fen": 2580,
        "reason": "余额不足",
        "failed_at": datetime.now(UTC).isoformat(),
    }
    r = await t.post(f"/api/terminal/v1/orders/{made['order_no']}/payment-failures", failure)
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["outcome"]) == ("payment_failed", "recorded")

    # §6: a wrong signature is refused, naming the header.
    body = json.dumps(order).encode()
    bad = t.headers("POST", "/api/terminal/v1/orders", body) | {
        "X-Selfmart-Signature": "0" * 64,
        "Content-Type": "application/json",
    }
    r = await client.post("/api/terminal/v1/orders", content=body, headers=bad)
    assert (r.status_code, r.json()["error"]) == (401, "bad_signature")

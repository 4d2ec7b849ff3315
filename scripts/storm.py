"""A storm against a running selfmart, then the invariants: what an operator runs before trusting
a new version with real stores.

    .venv/bin/python scripts/storm.py --url http://127.0.0.1:8000 [--orders 400] [--terminals 6]

Against the server (its payment sandbox enabled, as `make run` has it) it activates new terminals
in one store and, all at once:
- sends orders for a handful of hot products (the shelves run out: nothing may be oversold),
  every tenth one sent twice at the same moment (one order, not two);
- pays each by payment code through the WeChat sandbox, every fifth one with two different
  attempts racing (one trade per order: one is charged, the other refused with 409
  `payment_in_progress` while the first is in flight, or `illegal_transition` once it paid);
- refunds every seventh paid order in full twice at the same moment (refunded once).
Then it runs `selfmart check-stock`, `check-points`, `check-money` and, after refreshing the
summaries, `check-analytics` against the same database (the environment's SELFMART_* settings,
which must be the server's) and exits non-zero if any storm outcome or any check is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from selfmart.terminals import signing  # noqa: E402

SUCCESS_CODE = "130000000000000001"  # the sandbox's payment code that always pays
#: how the second of two racing payment attempts may be refused: the first is in flight, or
#: it has paid the order already
RACE_REFUSALS = {"payment_in_progress", "illegal_transition", "nothing_owed"}


class Terminal:
    def __init__(self, client: httpx.AsyncClient, code: str, key_id: str, secret: str) -> None:
        self.client, self.code, self.key_id, self.secret = client, code, key_id, secret

    async def call(self, method: str, target: str, body: Any = None) -> httpx.Response:
        raw = b"" if body is None else json.dumps(body).encode()
        headers = signing.sign(
            key_id=self.key_id, secret=self.secret, method=method, target=target, body=raw
        )
        if body is not None:
            headers["content-type"] = "application/json"
        return await self.client.request(method, target, content=raw, headers=headers)


async def _admin(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    r = await client.post("/api/v1/auth/login", json={"username": username, "password": password})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def _terminals(
    client: httpx.AsyncClient, auth: dict[str, str], store_id: int, n: int
) -> list[Terminal]:
    out = []
    for _ in range(n):
        code = f"T-STORM-{uuid.uuid4().hex[:8].upper()}"
        created = await client.post(
            "/api/v1/terminals", json={"code": code, "store_id": store_id}, headers=auth
        )
        created.raise_for_status()
        issued = await client.post(
            f"/api/v1/terminals/{created.json()['id']}/activation-code", headers=auth
        )
        issued.raise_for_status()
        activated = await client.post(
            "/api/terminal/v1/activate",
            json={"terminal_code": code, "activation_code": issued.json()["activation_code"]},
        )
        activated.raise_for_status()
        a = activated.json()
        out.append(Terminal(client, code, a["key_id"], a["secret"]))
    return out


async def storm(args: argparse.Namespace) -> list[str]:
    problems: list[str] = []
    stats: Counter[str] = Counter()
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    async with httpx.AsyncClient(base_url=args.url, timeout=60, limits=limits) as client:
        auth = await _admin(client, args.username, args.password)
        stores = (await client.get("/api/v1/stores", headers=auth)).json()["items"]
        store = stores[0]
        terminals = await _terminals(client, auth, store["id"], args.terminals)
        products = (await terminals[0].call("GET", "/api/terminal/v1/products")).json()["items"]
        hot = [p for p in products if p["barcodes"]][: args.products]
        rng = random.Random(args.seed)
        gate = asyncio.Semaphore(args.concurrency)

        async def order(i: int) -> dict[str, Any] | None:
            term = terminals[i % len(terminals)]
            body = {
                "client_order_id": f"STORM-{i:05d}-{uuid.uuid4().hex[:6]}",
                "purchased_at": datetime.now(UTC).isoformat(),
                "lines": [
                    {"barcode": p["barcodes"][0], "quantity": rng.randint(1, 3)}
                    for p in rng.sample(hot, k=min(len(hot), rng.randint(1, 3)))
                ],
            }
            async with gate:
                sends = 2 if i % 10 == 0 else 1
                answers = await asyncio.gather(
                    *[term.call("POST", "/api/terminal/v1/orders", body) for _ in range(sends)]
                )
            for a in answers:
                stats[f"order {a.status_code}"] += 1
                if a.status_code >= 500:
                    problems.append(f"order {body['client_order_id']}: {a.status_code} {a.text}")
            ok = [a.json() for a in answers if a.status_code in (200, 201)]
            if len({a.get("order_no") for a in ok}) > 1:
                problems.append(f"{body['client_order_id']} sent twice made two orders: {ok}")
            return {"term": term, **ok[0]} if ok else None

        orders = [o for o in await asyncio.gather(*[order(i) for i in range(args.orders)]) if o]

        async def pay(i: int, o: dict[str, Any]) -> dict[str, Any] | None:
            if o.get("status") not in (None, "awaiting_payment"):
                return None
            term: Terminal = o["term"]
            target = f"/api/terminal/v1/orders/{o['order_no']}/payments"
            attempts = 2 if i % 5 == 0 else 1
            async with gate:
                answers = await asyncio.gather(
                    *[
                        term.call(
                            "POST",
                            target,
                            {
                                "attempt_id": f"P{k}-{uuid.uuid4().hex[:10]}",
                                "channel": "wechat",
                                "mode": "code",
                                "auth_code": SUCCESS_CODE,
                            },
                        )
                        for k in range(attempts)
                    ]
                )
            for a in answers:
                stats[f"pay {a.status_code}"] += 1
                if a.status_code >= 500:
                    problems.append(f"pay {o['order_no']}: {a.status_code} {a.text}")
            paid = [
                a for a in answers if a.status_code in (200, 201) and a.json()["state"] == "paid"
            ]
            if attempts > 1:
                refused = [a.json()["error"] for a in answers if a.status_code == 409]
                for error in refused:
                    stats[f"racing pay refused {error}"] += 1
                if len(paid) != 1 or len(refused) != 1:
                    problems.append(
                        f"racing pay {o['order_no']}: wanted one paid and one refused, got "
                        f"{[(a.status_code, a.text[:120]) for a in answers]}"
                    )
                elif refused[0] not in RACE_REFUSALS:
                    problems.append(f"racing pay {o['order_no']}: refused with {refused[0]}")
            return o if paid else None

        paid = [p for p in await asyncio.gather(*[pay(i, o) for i, o in enumerate(orders)]) if p]

        async def refund(o: dict[str, Any]) -> None:
            async with gate:
                answers = await asyncio.gather(
                    *[
                        client.post(
                            f"/api/v1/orders/{o['order_id']}/refunds",
                            json={"full": True, "reason": "storm: refund racing refund"},
                            headers=auth,
                        )
                        for _ in range(2)
                    ]
                )
            codes = sorted(a.status_code for a in answers)
            stats[f"refund pair {codes}"] += 1
            if any(c >= 500 for c in codes):
                problems.append(f"refund {o['order_no']}: {[a.text for a in answers]}")

        await asyncio.gather(*[refund(o) for i, o in enumerate(paid) if i % 7 == 0])

        # every order the storm made: paid at most its total, refunded at most what was paid
        for o in orders:
            got = await client.get(f"/api/v1/orders/{o['order_id']}", headers=auth)
            d = got.json()
            if d["paid_fen"] > d["total_fen"] and not d.get("open_issues"):
                problems.append(f"{o['order_no']} overpaid without an open issue: {d['paid_fen']}")
            if d["refunded_fen"] > d["paid_fen"]:
                problems.append(f"{o['order_no']} refunded {d['refunded_fen']} of {d['paid_fen']}")
            stats[f"final {d['status']}"] += 1
    print("storm:", ", ".join(f"{k} {v}" for k, v in sorted(stats.items())))
    return problems


def checks() -> list[str]:
    failed = []
    selfmart = str(ROOT / ".venv" / "bin" / "selfmart")
    for command in (["rebuild-analytics"], ["check-stock"], ["check-points"], ["check-money"],
                    ["check-analytics"]):  # fmt: skip
        done = subprocess.run([selfmart, *command], capture_output=True, text=True, env=os.environ)
        last = (done.stdout.strip().splitlines() or [done.stderr.strip()])[-1:]
        print(f"selfmart {command[0]}: exit {done.returncode}: {' '.join(last)}")
        if done.returncode != 0:
            failed.append(f"selfmart {command[0]} exited {done.returncode}")
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--username", default="superadmin")
    parser.add_argument("--password", default="Super@2026")
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument("--terminals", type=int, default=6)
    parser.add_argument("--products", type=int, default=8, help="how many hot products")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-checks", action="store_true")
    args = parser.parse_args()
    problems = asyncio.run(storm(args))
    if not args.no_checks:
        problems += checks()
    for p in problems:
        print("PROBLEM:", p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()

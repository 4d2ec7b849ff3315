"""An outbox topic for tests: records each call, and fails on demand."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.jobs import outbox

TOPIC = "test.echo"
#: every payload the handler was called with
CALLS: list[dict[str, Any]] = []
#: key -> how many more calls with that key raise
FAIL: dict[str, int] = {}


@outbox.handler(TOPIC)
async def echo(session: AsyncSession, payload: dict[str, Any]) -> None:
    CALLS.append(payload)
    key = str(payload.get("key"))
    if FAIL.get(key, 0) > 0:
        FAIL[key] -= 1
        raise RuntimeError(f"boom for {key}")


def calls(key: str) -> list[dict[str, Any]]:
    return [c for c in CALLS if c.get("key") == key]

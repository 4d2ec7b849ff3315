"""Exit 0 when the PostgreSQL URL given answers, 1 otherwise (used by scripts/test.sh)."""

from __future__ import annotations

import asyncio
import sys

import asyncpg


async def ping(url: str) -> bool:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    try:
        conn = await asyncio.wait_for(asyncpg.connect(dsn), timeout=3)
    except Exception:  # unreachable, refused, auth: all mean "no PostgreSQL here"
        return False
    await conn.close()
    return True


if __name__ == "__main__":
    sys.exit(0 if asyncio.run(ping(sys.argv[1])) else 1)

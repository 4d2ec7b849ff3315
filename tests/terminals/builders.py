"""Builders for terminals: a pending terminal, or an active one holding a key."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import utcnow
from selfmart.models import Store, Terminal
from selfmart.terminals import service as terminals
from selfmart.terminals import signing


async def make_terminal(
    session: AsyncSession, store: Store, code: str | None = None, **fields: Any
) -> Terminal:
    terminal = Terminal(
        code=code or f"T-{uuid.uuid4().hex[:8].upper()}",
        store_id=store.id,
        name=str(fields.pop("name", "收银一号机")),
        model=str(fields.pop("model", "SM-K2")),
        status=str(fields.pop("status", "pending")),
        **fields,
    )
    session.add(terminal)
    await session.flush()
    return terminal


@dataclass
class Credentials:
    """What an activated terminal holds, and a signer for its requests."""

    terminal: Terminal
    key_id: str
    secret: str

    def sign(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        *,
        timestamp: int | None = None,
        nonce: str | None = None,
    ) -> dict[str, str]:
        return signing.sign(
            key_id=self.key_id,
            secret=self.secret,
            method=method,
            target=target,
            body=body,
            timestamp=timestamp,
            nonce=nonce,
        )

    def signed_json(
        self, method: str, target: str, payload: Any, **kw: Any
    ) -> tuple[bytes, dict[str, str]]:
        """The exact bytes to send and their headers (content type included)."""
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = self.sign(method, target, body, **kw)
        headers["content-type"] = "application/json"
        return body, headers


async def make_active_terminal(
    session: AsyncSession, store: Store, *, now: datetime | None = None, **fields: Any
) -> Credentials:
    """An active terminal with a current key, as activation would leave it."""
    terminal = await make_terminal(session, store, status="active", **fields)
    key, secret = await terminals.create_key(session, terminal.id, now=now or utcnow())
    return Credentials(terminal=terminal, key_id=key.key_id, secret=secret)

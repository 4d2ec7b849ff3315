"""docs/terminal-protocol.md's worked examples, checked against the server's own verifier.

The examples are parsed out of the page (the fenced block after each `<!-- example:NAME -->`
marker), so a change to the scheme that the page does not follow fails here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import TerminalKey
from selfmart.terminals import service as terminals
from selfmart.terminals import signing
from selfmart.terminals.crypto import encrypt_secret
from selfmart.terminals.exceptions import BadSignature

from ..builders import make_store
from .builders import make_terminal

DOC = Path(__file__).resolve().parents[2] / "docs" / "terminal-protocol.md"
_BLOCK = re.compile(r"<!-- example:(?P<name>[a-z-]+) -->\n```[a-z]*\n(?P<body>.*?)\n```", re.S)


def examples() -> dict[str, str]:
    found = {m["name"]: m["body"] for m in _BLOCK.finditer(DOC.read_text(encoding="utf-8"))}
    assert {"credentials", "canonical", "request", "query-request", "query-canonical"} <= set(
        found
    ), f"worked-example blocks missing from {DOC}: found {sorted(found)}"
    return found


@dataclass
class DocRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


def parse_request(text: str) -> DocRequest:
    head, _, body = text.partition("\n\n")
    request_line, *header_lines = head.split("\n")
    method, target, _version = request_line.split(" ")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    parts = urlsplit(target)
    return DocRequest(method, parts.path, parts.query, headers, body.encode("utf-8"))


def credentials() -> tuple[str, str]:
    fields = dict(line.split(": ", 1) for line in examples()["credentials"].splitlines())
    return fields["key_id"], fields["secret"]


@pytest.mark.parametrize(
    ("request_block", "canonical_block"),
    [
        ("request", "canonical"),
        ("query-request", "query-canonical"),
    ],
)
def test_documented_canonical_string_and_signature(
    request_block: str, canonical_block: str
) -> None:
    key_id, secret = credentials()
    req = parse_request(examples()[request_block])
    canonical = signing.canonical_string(
        req.method,
        req.path,
        req.query,
        req.headers["x-selfmart-timestamp"],
        req.headers["x-selfmart-nonce"],
        req.body,
    )
    assert canonical == examples()[canonical_block]
    assert req.headers["x-selfmart-key-id"] == key_id
    documented = req.headers["x-selfmart-signature"]
    assert signing.compute_signature(secret, canonical) == documented
    # The reference signer produces the same headers from the same inputs.
    target = f"{req.path}?{req.query}" if req.query else req.path
    signed = signing.sign(
        key_id=key_id,
        secret=secret,
        method=req.method,
        target=target,
        body=req.body,
        timestamp=int(req.headers["x-selfmart-timestamp"]),
        nonce=req.headers["x-selfmart-nonce"],
    )
    assert signed[signing.HEADER_SIGNATURE] == documented


def test_documented_body_is_what_the_text_says() -> None:
    req = parse_request(examples()["request"])
    assert req.body == b'{"app_version":"2.4.1"}'
    assert len(req.body) == 23


@pytest.mark.parametrize("request_block", ["request", "query-request"])
async def test_server_verifier_accepts_the_documented_requests(
    session: AsyncSession, request_block: str
) -> None:
    key_id, secret = credentials()
    store = await make_store(session)
    terminal = await make_terminal(session, store, status="active")
    session.add(
        TerminalKey(
            key_id=key_id,
            terminal_id=terminal.id,
            secret_encrypted=encrypt_secret(secret, key_id=key_id),
            created_at=datetime(2025, 12, 31, tzinfo=UTC),
        )
    )
    await session.flush()
    req = parse_request(examples()[request_block])
    at = datetime.fromtimestamp(int(req.headers["x-selfmart-timestamp"]), UTC)
    ctx = await terminals.authenticate(
        session,
        headers=req.headers,
        method=req.method,
        raw_path=req.path,
        raw_query=req.query,
        body=req.body,
        now=at,
    )
    assert ctx.terminal.id == terminal.id
    assert ctx.body == req.body
    # And one byte more in the documented body is refused.
    with pytest.raises(BadSignature):
        await terminals.authenticate(
            session,
            headers=req.headers,
            method=req.method,
            raw_path=req.path,
            raw_query=req.query,
            body=req.body + b" ",
            now=at,
        )

"""The terminal request signature (docs/terminal-protocol.md): canonical string, HMAC, signer.

Both sides use these functions: the server's verifier (selfmart.terminals.service) and any
client written in Python (tests, bench, the terminal simulator). Pure functions, no database.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from urllib.parse import quote, unquote_to_bytes, urlsplit

HEADER_KEY_ID = "X-Selfmart-Key-Id"
HEADER_TIMESTAMP = "X-Selfmart-Timestamp"
HEADER_NONCE = "X-Selfmart-Nonce"
HEADER_SIGNATURE = "X-Selfmart-Signature"
#: In the order the server checks them (the first missing one is named in the 401).
HEADERS = (HEADER_KEY_ID, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE)

KEY_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TIMESTAMP_RE = re.compile(r"^[0-9]{1,12}$")
NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
SIGNATURE_RE = re.compile(r"^[0-9a-fA-F]{64}$")

#: RFC 3986 unreserved characters (besides ALPHA / DIGIT): never percent-encoded.
_UNRESERVED = "-_.~"


def _reencode(component: bytes) -> str:
    return quote(component, safe=_UNRESERVED)


def canonical_path(raw_path: str) -> str:
    """Each '/'-separated segment percent-decoded, then re-encoded: all but unreserved bytes
    as %XX with upper-case hex. An encoded slash (%2F) stays encoded."""
    if not raw_path:
        return "/"
    return "/".join(_reencode(unquote_to_bytes(seg)) for seg in raw_path.split("/"))


def canonical_query(raw_query: str) -> str:
    """Query parameters decoded ('+' is a space), re-encoded like path segments, sorted by name
    then value, joined with '&'. Empty pairs are dropped; `a` and `a=` are the same."""
    pairs: list[tuple[str, str]] = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append(
            (
                _reencode(unquote_to_bytes(name.replace("+", " "))),
                _reencode(unquote_to_bytes(value.replace("+", " "))),
            )
        )
    pairs.sort()
    return "&".join(f"{n}={v}" for n, v in pairs)


def canonical_target(raw_path: str, raw_query: str = "") -> str:
    """The path, plus '?' and the canonical query when there is one."""
    query = canonical_query(raw_query)
    path = canonical_path(raw_path)
    return f"{path}?{query}" if query else path


def body_digest(body: bytes) -> str:
    """Lower-case hex SHA-256 of the raw body bytes (of b"" when there is no body)."""
    return hashlib.sha256(body).hexdigest()


def canonical_string(
    method: str, raw_path: str, raw_query: str, timestamp: str, nonce: str, body: bytes
) -> str:
    """The five lines that are signed, joined by a single LF, with no trailing newline."""
    return "\n".join(
        [
            method.upper(),
            canonical_target(raw_path, raw_query),
            timestamp,
            nonce,
            body_digest(body),
        ]
    )


def compute_signature(secret: str, canonical: str) -> str:
    """Lower-case hex HMAC-SHA256; the key is the secret's ASCII bytes exactly as issued."""
    return hmac.new(secret.encode("utf-8"), canonical.encode("utf-8"), hashlib.sha256).hexdigest()


def signature_matches(secret: str, canonical: str, given: str) -> bool:
    """Constant-time comparison of `given` (hex, either case) with the expected signature."""
    expected = compute_signature(secret, canonical)
    return hmac.compare_digest(expected.encode("ascii"), given.lower().encode("ascii"))


def new_nonce() -> str:
    """A fresh nonce: 32 characters from [A-Za-z0-9_-]."""
    return secrets.token_urlsafe(24)


def sign(
    *,
    key_id: str,
    secret: str,
    method: str,
    target: str,
    body: bytes = b"",
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Client side: the four headers for a request to `target` ("/path?query") with `body`.

    Send `body` byte for byte as signed (serialise JSON once, then sign and send those bytes).
    """
    parts = urlsplit(target)
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or new_nonce()
    canonical = canonical_string(method, parts.path, parts.query, ts, nonce, body)
    return {
        HEADER_KEY_ID: key_id,
        HEADER_TIMESTAMP: ts,
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: compute_signature(secret, canonical),
    }

"""The canonical string and signature, as a terminal vendor would compute them (no database)."""

from __future__ import annotations

import hashlib

import pytest

from selfmart.terminals import signing


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("", ""),
        ("b=2&a=1", "a=1&b=2"),
        ("a=2&a=1&a=10", "a=1&a=10&a=2"),
        ("q=hello+world", "q=hello%20world"),
        ("q=hello%20world", "q=hello%20world"),
        ("flag&x=", "flag=&x="),
        ("a=1&&b=2&", "a=1&b=2"),
        ("name=%e7%89%9b%e5%a5%b6", "name=%E7%89%9B%E5%A5%B6"),
        ("name=牛奶", "name=%E7%89%9B%E5%A5%B6"),
        ("t=%7E-_.&s=a%2Fb", "s=a%2Fb&t=~-_."),
        ("since=2026-03-01T08:00:00Z", "since=2026-03-01T08%3A00%3A00Z"),
        ("x=a=b", "x=a%3Db"),
    ],
)
def test_canonical_query(raw: str, canonical: str) -> None:
    assert signing.canonical_query(raw) == canonical


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("", "/"),
        ("/api/terminal/v1/heartbeat", "/api/terminal/v1/heartbeat"),
        ("/api/terminal/v1/orders/A%2FB", "/api/terminal/v1/orders/A%2FB"),
        ("/api/terminal/v1/orders/a%7eb", "/api/terminal/v1/orders/a~b"),
        ("/api/terminal/v1/orders/a b", "/api/terminal/v1/orders/a%20b"),
        ("/api/terminal/v1/orders/%e2%82%ac", "/api/terminal/v1/orders/%E2%82%AC"),
    ],
)
def test_canonical_path(raw: str, canonical: str) -> None:
    assert signing.canonical_path(raw) == canonical


def test_canonical_string_layout() -> None:
    body = b'{"app_version":"1.0"}'
    text = signing.canonical_string(
        "post", "/api/terminal/v1/heartbeat", "z=1&a=2", "1767225600", "n" * 16, body
    )
    assert text.split("\n") == [
        "POST",
        "/api/terminal/v1/heartbeat?a=2&z=1",
        "1767225600",
        "n" * 16,
        hashlib.sha256(body).hexdigest(),
    ]
    assert not text.endswith("\n")


def test_empty_body_digest_is_sha256_of_nothing() -> None:
    assert signing.body_digest(b"") == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_sign_and_verify_round_trip() -> None:
    headers = signing.sign(
        key_id="tk_demo",
        secret="s3cret",
        method="GET",
        target="/api/terminal/v1/products?since=5&page=2",
        timestamp=1767225600,
        nonce="abcdefghijklmnop",
    )
    assert headers[signing.HEADER_KEY_ID] == "tk_demo"
    assert headers[signing.HEADER_TIMESTAMP] == "1767225600"
    canonical = signing.canonical_string(
        "GET", "/api/terminal/v1/products", "page=2&since=5", "1767225600", "abcdefghijklmnop", b""
    )
    sig = headers[signing.HEADER_SIGNATURE]
    assert signing.SIGNATURE_RE.match(sig)
    assert signing.signature_matches("s3cret", canonical, sig)
    assert signing.signature_matches("s3cret", canonical, sig.upper())
    assert not signing.signature_matches("other", canonical, sig)
    assert not signing.signature_matches("s3cret", canonical + "x", sig)


def test_new_nonces_are_valid_and_distinct() -> None:
    nonces = {signing.new_nonce() for _ in range(200)}
    assert len(nonces) == 200
    assert all(signing.NONCE_RE.match(n) for n in nonces)


def test_the_key_row_names_the_key_statements_columns_in_order() -> None:
    """The key look-up runs on the driver, whose rows are positional: the names given to them
    must be the statement's columns, in order."""
    from selfmart.terminals.service import _KEY_LOOKUP_AND_BURN_PG, _KeyRow

    assert _KeyRow._fields == tuple(_KEY_LOOKUP_AND_BURN_PG.selected_columns.keys())

"""Terminal secrets are encrypted at rest, bound to their key id, and need the server's key."""

from __future__ import annotations

import base64

import pytest
from pydantic import SecretStr

from selfmart.config import Settings
from selfmart.terminals import crypto


def test_round_trip_and_no_plain_text() -> None:
    token = crypto.encrypt_secret("plain-secret-value", key_id="tk_a")
    assert token.startswith("v1:")
    assert "plain-secret-value" not in token
    assert crypto.decrypt_secret(token, key_id="tk_a") == "plain-secret-value"
    # Fresh nonce each time: equal secrets do not give equal ciphertexts.
    assert crypto.encrypt_secret("plain-secret-value", key_id="tk_a") != token


def test_bound_to_the_key_id() -> None:
    token = crypto.encrypt_secret("s", key_id="tk_a")
    with pytest.raises(crypto.SecretUnreadable):
        crypto.decrypt_secret(token, key_id="tk_b")


def test_tampering_is_detected() -> None:
    token = crypto.encrypt_secret("s", key_id="tk_a")
    # Flip one bit of the sealed bytes (flipping a base64 character can land in padding bits).
    raw = bytearray(base64.urlsafe_b64decode(token.removeprefix("v1:")))
    raw[-1] ^= 0x01
    flipped = "v1:" + base64.urlsafe_b64encode(bytes(raw)).decode("ascii")
    with pytest.raises(crypto.SecretUnreadable):
        crypto.decrypt_secret(flipped, key_id="tk_a")
    with pytest.raises(crypto.SecretUnreadable):
        crypto.decrypt_secret("plain", key_id="tk_a")


def test_another_server_key_cannot_read_it(monkeypatch: pytest.MonkeyPatch) -> None:
    token = crypto.encrypt_secret("s", key_id="tk_a")
    code_hash = crypto.hash_activation_code("ABCD2345EFGH")
    other = Settings(secret_key=SecretStr("another-deployment-key-0123456789abcdef"))
    monkeypatch.setattr(crypto, "get_settings", lambda: other)
    with pytest.raises(crypto.SecretUnreadable):
        crypto.decrypt_secret(token, key_id="tk_a")
    # Activation-code hashes are keyed too: a dump cannot be checked against guesses.
    assert crypto.hash_activation_code("ABCD2345EFGH") != code_hash

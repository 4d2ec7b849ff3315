"""Terminal secrets at rest: AES-256-GCM under a key derived (HKDF) from SELFMART_SECRET_KEY.

A database dump alone does not reveal any terminal's HMAC secret. Activation codes are kept
only as a keyed hash (HMAC-SHA256 with a second derived key), so a dump cannot be used to
brute-force the short codes offline either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from selfmart.config import get_settings

_PREFIX = "v1:"
_SALT = b"selfmart.terminals"


class SecretUnreadable(Exception):
    """The stored secret does not decrypt (wrong SELFMART_SECRET_KEY or tampered row)."""


@lru_cache(maxsize=8)
def _derive(master: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=purpose).derive(
        master.encode("utf-8")
    )


def _master() -> str:
    return get_settings().secret_key.get_secret_value()


def encrypt_secret(plain: str, *, key_id: str) -> str:
    """`v1:` + base64url(nonce ‖ ciphertext ‖ tag); the key id is bound in as associated data."""
    aead = AESGCM(_derive(_master(), b"terminal-key-encryption-v1"))
    nonce = os.urandom(12)
    sealed = aead.encrypt(nonce, plain.encode("utf-8"), key_id.encode("utf-8"))
    return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def decrypt_secret(token: str, *, key_id: str) -> str:
    if not token.startswith(_PREFIX):
        raise SecretUnreadable("unknown secret format")
    raw = base64.urlsafe_b64decode(token[len(_PREFIX) :].encode("ascii"))
    aead = AESGCM(_derive(_master(), b"terminal-key-encryption-v1"))
    try:
        return aead.decrypt(raw[:12], raw[12:], key_id.encode("utf-8")).decode("utf-8")
    except InvalidTag as exc:
        raise SecretUnreadable("the secret does not decrypt with this server's key") from exc


def hash_activation_code(normalised_code: str) -> str:
    key = _derive(_master(), b"activation-code-hash-v1")
    return hmac.new(key, normalised_code.encode("utf-8"), hashlib.sha256).hexdigest()

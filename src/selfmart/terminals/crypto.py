"""Terminal secrets at rest: AES-256-GCM under a key derived (HKDF) from SELFMART_SECRET_KEY.

A database dump alone does not reveal any terminal's HMAC secret. Activation codes are kept
only as a keyed hash (HMAC-SHA256 with a second derived key), so a dump cannot be used to
brute-force the short codes offline either. The sealing itself is `kit.crypto`'s; a secret
sealed under an earlier SELFMART_SECRET_KEY (`secret_keys_previous`) still opens.
"""

from __future__ import annotations

from selfmart.config import get_settings
from selfmart.kit.crypto import Keyring, SecretBox, SecretUnreadable, keyed_hash

__all__ = ["SecretUnreadable", "decrypt_secret", "encrypt_secret", "hash_activation_code"]

_SALT = b"selfmart.terminals"
_BOX = SecretBox(_SALT, b"terminal-key-encryption-v1")


def _keys() -> Keyring:
    return Keyring.from_settings(get_settings())


def encrypt_secret(plain: str, *, key_id: str) -> str:
    """`v1:` + base64url(nonce ‖ ciphertext ‖ tag); the key id is bound in as associated data."""
    return _BOX.seal(plain, aad=key_id, keys=_keys())


def decrypt_secret(token: str, *, key_id: str) -> str:
    return _BOX.open(token, aad=key_id, keys=_keys())


def hash_activation_code(normalised_code: str) -> str:
    return keyed_hash(_keys(), _SALT, b"activation-code-hash-v1", normalised_code)

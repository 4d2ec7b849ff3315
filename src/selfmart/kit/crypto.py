"""Secrets at rest: AES-256-GCM under keys derived (HKDF) from SELFMART_SECRET_KEY.

One `SecretBox` per purpose (terminal HMAC secrets, payment channel keys), so a key derived
for one use never opens another's ciphertext. Rotation without downtime: the current master
key seals, earlier ones (`secret_keys_previous`) still open, and a short key version (a
fingerprint of the master key, not the key) says which master key sealed a row, so a job can
find and re-seal what is still under an old one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from selfmart.config import Settings

_PREFIX = "v1:"
_NONCE = 12


class SecretUnreadable(Exception):
    """The stored secret does not decrypt (wrong SELFMART_SECRET_KEY or tampered row)."""


@lru_cache(maxsize=64)
def derive(master: str, salt: bytes, purpose: bytes) -> bytes:
    """A 32-byte key for `purpose`, derived from one master key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=purpose).derive(
        master.encode("utf-8")
    )


@lru_cache(maxsize=16)
def key_version(master: str) -> str:
    """A short public name for a master key (12 hex digits of a keyed hash, not the key)."""
    return derive(master, b"selfmart.keyring", b"key-version-v1").hex()[:12]


@dataclass(frozen=True, slots=True)
class Keyring:
    """The master keys this server knows: the current one first, then earlier ones."""

    masters: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        current = settings.secret_key.get_secret_value()
        older = [k.get_secret_value() for k in settings.secret_keys_previous]
        return cls((current, *[k for k in older if k != current]))

    @property
    def current(self) -> str:
        return self.masters[0]

    @property
    def current_version(self) -> str:
        return key_version(self.current)

    def by_version(self, version: str) -> str | None:
        return next((m for m in self.masters if key_version(m) == version), None)


@dataclass(frozen=True, slots=True)
class SecretBox:
    """Seals and opens one kind of secret. `salt` and `purpose` separate the kinds."""

    salt: bytes
    purpose: bytes

    def seal(self, plain: str, *, aad: str, keys: Keyring) -> str:
        """`v1:` + base64url(nonce ‖ ciphertext ‖ tag) under the current master key; `aad`
        (e.g. the row's id or key id) is bound in, so a ciphertext moved to another row fails."""
        aead = AESGCM(derive(keys.current, self.salt, self.purpose))
        nonce = os.urandom(_NONCE)
        sealed = aead.encrypt(nonce, plain.encode("utf-8"), aad.encode("utf-8"))
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, token: str, *, aad: str, keys: Keyring, version: str | None = None) -> str:
        """The plain secret. With `version`, only that master key is tried (when it is still
        known); without, each known master key in turn, the current first."""
        if not token.startswith(_PREFIX):
            raise SecretUnreadable("unknown secret format")
        try:
            raw = base64.urlsafe_b64decode(token[len(_PREFIX) :].encode("ascii"))
        except ValueError as exc:
            raise SecretUnreadable("the secret is not base64") from exc
        masters: tuple[str, ...] = keys.masters
        if version is not None:
            named = keys.by_version(version)
            masters = (named,) if named is not None else keys.masters
        for master in masters:
            aead = AESGCM(derive(master, self.salt, self.purpose))
            try:
                return aead.decrypt(raw[:_NONCE], raw[_NONCE:], aad.encode("utf-8")).decode()
            except InvalidTag:
                continue
        raise SecretUnreadable("the secret does not decrypt with this server's keys")


def keyed_hash(keys: Keyring, salt: bytes, purpose: bytes, value: str) -> str:
    """HMAC-SHA256 of `value` under a key derived from the current master key."""
    return hmac.new(derive(keys.current, salt, purpose), value.encode(), hashlib.sha256).hexdigest()


def mask(secret: str, *, show: int = 4) -> str:
    """A secret as an answer may show it: its last `show` characters when it is long enough
    for that to give nothing useful away, else only stars."""
    if len(secret) < 16:
        return "****"
    return "****" + secret[-show:]

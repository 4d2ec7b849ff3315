"""argon2id password hashing and the password policy."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from selfmart.config import get_settings

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def hash_password_async(password: str) -> str:
    """`hash_password` off the event loop: argon2 spends tens of milliseconds of CPU on
    purpose (and releases the GIL meanwhile), which would otherwise stall every request."""
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password_hash: str, password: str) -> bool:
    return await asyncio.to_thread(verify_password, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def policy_problems(password: str, *, username: str | None = None) -> list[str]:
    """Reasons (stable codes) why `password` breaks the policy; empty when it is acceptable."""
    problems: list[str] = []
    if len(password) < get_settings().password_min_length:
        problems.append("password_too_short")
    if len(password) > 128:
        problems.append("password_too_long")
    classes = sum(
        [
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        ]
    )
    if classes < 3:
        problems.append("password_too_simple")
    if username and username.lower() in password.lower():
        problems.append("password_contains_username")
    return problems

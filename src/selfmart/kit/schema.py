"""Base schema for every request and response body."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple | set | frozenset):
        return any(contains_nul(v) for v in value)
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    return False


class InSchema(BaseModel):
    """Request bodies: unknown fields are refused with a 422 naming them, and so is a NUL
    character in any text (PostgreSQL cannot store one, SQLite would: refused on both)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_nul(cls, value: Any) -> Any:
        if contains_nul(value):
            raise ValueError("must not contain NUL (\\x00) characters")
        return value

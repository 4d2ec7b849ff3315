"""Base schema for every request and response body."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class InSchema(BaseModel):
    """Request bodies: unknown fields are refused with a 422 naming them."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

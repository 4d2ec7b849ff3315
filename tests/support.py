"""Helpers shared by tests that are not fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selfmart.config import Settings


def settings_for(url: str, **overrides: Any) -> Settings:
    return Settings(
        database_url=url,
        env="test",
        secret_key="test-secret-key-0123456789abcdef0123456789",
        static_dir=Path("/nonexistent"),
        **overrides,
    )

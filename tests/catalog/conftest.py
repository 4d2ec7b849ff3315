"""Catalog test fixtures: media goes to a temporary directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def media_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Point the app (when the test uses one) at a fresh media directory."""
    media = tmp_path / "media"
    if "app" in request.fixturenames:
        app: Any = request.getfixturevalue("app")
        app.state.settings = app.state.settings.model_copy(update={"media_dir": media})
        app.state.media_storage = None
    return media

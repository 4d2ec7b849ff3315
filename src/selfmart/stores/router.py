"""HTTP routes of the stores domain."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["stores"])

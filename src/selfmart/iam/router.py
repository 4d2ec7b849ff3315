"""HTTP routes of the iam domain."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["iam"])

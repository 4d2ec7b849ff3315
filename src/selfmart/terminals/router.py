"""HTTP routes for terminals: console management and the signed terminal API."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["terminals"])
terminal_api = APIRouter(tags=["terminal-api"])

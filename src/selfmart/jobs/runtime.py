"""Start and stop the background job runtime with the app (filled in by the jobs work)."""

from __future__ import annotations

from fastapi import FastAPI


async def startup(app: FastAPI) -> None:
    return None


async def shutdown(app: FastAPI) -> None:
    return None

"""/healthz and /readyz for load balancers (public, cheap), /metrics for Prometheus (a bearer
token when `metrics_token` is set, otherwise loopback clients only)."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from selfmart import __version__
from selfmart.config import Settings
from selfmart.deps import SessionDep
from selfmart.errors import Forbidden, Unauthorized, error_responses
from selfmart.iam.actor import Actor
from selfmart.iam.dependencies import require
from selfmart.iam.permissions import Perm
from selfmart.monitoring import overview, service
from selfmart.monitoring.schemas import MonitoringOverview

router = APIRouter(tags=["system"])


@router.get("/healthz", operation_id="healthz")
async def healthz() -> dict[str, str]:
    """Alive: the process answers. Touches nothing else."""
    return {"status": "ok", "version": __version__}


@router.get(
    "/readyz",
    operation_id="readyz",
    responses={503: {"description": "a dependency is down; `failing` names it"}},
)
async def readyz(request: Request) -> JSONResponse:
    """Ready: the database, Redis (when configured) and the job runtime all answer."""
    checks = await service.readiness(request.app)
    failing = [name for name, c in checks.items() if not c.ok]
    body: dict[str, Any] = {
        "status": "unavailable" if failing else "ready",
        "failing": failing,
        "checks": {name: {"ok": c.ok, "detail": c.detail} for name, c in checks.items()},
    }
    return JSONResponse(body, status_code=503 if failing else 200)


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def metrics_guard(request: Request) -> None:
    """Declared access of /metrics: the configured bearer token, or a loopback client."""
    settings: Settings = request.app.state.settings
    if settings.metrics_token is not None:
        given = request.headers.get("authorization", "")
        expected = "Bearer " + settings.metrics_token.get_secret_value()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Unauthorized("/metrics needs the bearer token set in SELFMART_METRICS_TOKEN")
        return
    client = request.client.host if request.client else None
    if not _is_loopback(client):
        raise Forbidden(
            "/metrics answers loopback clients only unless SELFMART_METRICS_TOKEN is set"
        )


@router.get(
    "/metrics",
    operation_id="metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"},
        **error_responses(401, 403),
    },
)
async def metrics(request: Request) -> Response:
    metrics_guard(request)
    return Response(await service.exposition(request.app), media_type=CONTENT_TYPE_LATEST)


console_router = APIRouter(prefix="/monitoring", tags=["monitoring"])


@console_router.get(
    "/overview",
    response_model=MonitoringOverview,
    operation_id="monitoring_overview",
    responses=error_responses(401, 403),
)
async def monitoring_overview(
    request: Request,
    session: SessionDep,
    actor: Annotated[Actor, require(Perm.SYSTEM_SETTINGS)],
) -> MonitoringOverview:
    """The host, the database, the slowest routes, the job queue and the latest failures."""
    return await overview.overview(session, request.app)

"""Security events in the operation log: which audit actions count as security events (the
`kind=security` filter), and the entries written for refused permissions and lockouts.

A refused request rolls its own transaction back, so its denial is written in a transaction
of its own, after the rollback; a failure to write it is logged and never changes the 403."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import ColumnElement, or_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.errors import Forbidden, error_body
from selfmart.iam.actor import Actor
from selfmart.models import AuditLog
from selfmart.monitoring.metrics import RouteTemplates

log = logging.getLogger(__name__)

#: Actions written by this module (and any later "security.*" action).
PREFIX = "security."
DENIED = "security.denied"
LOCKOUT = "security.lockout"

#: Actions other domains write that are security events too: key rotations, unlocks and
#: password resets, and reveals of personal data.
SECURITY_ACTIONS: frozenset[str] = frozenset(
    {
        "terminal.rotate_key",
        "terminal.issue_activation_code",
        "terminal.activation_failed",
        "payment_account.rotate_keys",
        "user.unlock",
        "user.reset_password",
        "user.change_password",
        "member.reveal",
        "member.export",
    }
)

#: The `kind` filter's values: security events, or every other (business) change.
KINDS = ("security", "change")

#: Who a lockout entry names as its actor: nobody is logged in yet.
LOGIN = Actor(kind="anonymous", id=None, name="login", store_ids=None)


def is_security(action: str) -> bool:
    return action.startswith(PREFIX) or action in SECURITY_ACTIONS


def security_condition() -> ColumnElement[bool]:
    return or_(AuditLog.action.startswith(PREFIX), AuditLog.action.in_(sorted(SECURITY_ACTIONS)))


async def record_denial(
    sessionmaker: async_sessionmaker[AsyncSession],
    request: Request,
    exc: Forbidden,
    *,
    template: str | None = None,
) -> None:
    """One `security.denied` entry for a refused request, committed on its own."""
    from selfmart.audit import service as audit

    actor: Actor | None = getattr(request.state, "actor", None)
    who = actor or Actor(kind="anonymous", id=None, name="-", store_ids=None)
    required = exc.extra.get("code_required")
    template = template or request.url.path
    try:
        async with sessionmaker() as session:
            await audit.record(
                session,
                who,
                DENIED,
                "permission",
                str(required) if required else exc.code,
                after={
                    "method": request.method,
                    "path": request.url.path[:300],
                    "route": str(template)[:300],
                    "required": required,
                    "error": exc.code,
                },
                note=f"{request.method} {request.url.path}"[:500],
                label=str(required) if required else exc.code,
            )
            await session.commit()
    except Exception:  # the refusal stands whatever happens to its record
        log.exception("could not record a permission denial")


def install_denial_log(app: FastAPI) -> None:
    """Every 403 (`Forbidden` and its kin) is written to the operation log, then rendered as
    any other error."""
    templates = RouteTemplates()

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> JSONResponse:
        template = templates.of(request.app, request.scope.get("route"))
        await record_denial(request.app.state.sessionmaker, request, exc, template=template)
        return JSONResponse(error_body(exc.code, exc.message, exc.details), exc.status)

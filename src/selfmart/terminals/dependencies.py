"""FastAPI dependencies of the terminals domain: the signed-request guard, and the session
used by activation (which must keep its failure count when it refuses)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.deps import SessionDep, get_sessionmaker
from selfmart.errors import AppError
from selfmart.kit import aftercommit
from selfmart.terminals import service as terminals
from selfmart.terminals import signing
from selfmart.terminals.service import TerminalContext


def _header_doc(name: str, pattern: str, description: str) -> dict[str, Any]:
    return {
        "in": "header",
        "name": name,
        "required": True,
        "description": description,
        "schema": {"type": "string", "pattern": pattern},
    }


#: The four signature headers, as OpenAPI parameters: every signed route passes
#: `openapi_extra=SIGNED` so they show in the spec. They are not FastAPI `Header` parameters:
#: FastAPI would parse and validate them on every request, and the verifier checks them anyway
#: (401 naming the header that is missing or malformed; docs/terminal-protocol.md §2).
SIGNED: dict[str, Any] = {
    "parameters": [
        _header_doc(signing.HEADER_KEY_ID, signing.KEY_ID_RE.pattern, "the key id"),
        _header_doc(signing.HEADER_TIMESTAMP, signing.TIMESTAMP_RE.pattern, "unix seconds"),
        _header_doc(signing.HEADER_NONCE, signing.NONCE_RE.pattern, "new for every request"),
        _header_doc(signing.HEADER_SIGNATURE, signing.SIGNATURE_RE.pattern, "hex HMAC-SHA256"),
    ]
}


class TerminalAuth:
    """Dependency: the request carries a valid terminal signature; yields a TerminalContext.

    The route walker (tests/test_routes.py) recognises `__selfmart_terminal_auth__` as this
    route's access declaration; routes using it pass `openapi_extra=SIGNED` to document the
    headers (tests/terminals checks that every one does).
    """

    __selfmart_terminal_auth__ = True

    async def __call__(self, request: Request, session: SessionDep) -> TerminalContext:
        # FastAPI has already read the body to parse it; this returns the same cached bytes.
        body = await request.body()
        raw_path = request.scope.get("raw_path")
        path = (
            raw_path.decode("latin-1").partition("?")[0]
            if isinstance(raw_path, bytes)
            else request.url.path
        )
        headers = request.headers
        ctx = await terminals.authenticate(
            session,
            headers={name: headers.get(name) for name in signing.HEADERS},
            method=request.method,
            raw_path=path,
            raw_query=request.scope.get("query_string", b"").decode("latin-1"),
            body=body,
        )
        request.state.actor = ctx.actor
        request.state.raw_body = body
        return ctx


#: `ctx: TerminalDep` on every terminal API route except /activate.
TerminalDep = Annotated[TerminalContext, Depends(TerminalAuth())]


async def activation_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Like SessionDep, except that a refusal marked `keep_writes` (a wrong activation code)
    still commits: the failure count is what locks out a brute-force attempt, so it must stick
    although the request fails."""
    factory = get_sessionmaker(request)
    async with factory() as session:
        try:
            yield session
        except AppError as exc:
            if getattr(exc, "keep_writes", False):
                aftercommit.discard(session)
                await session.commit()
            else:
                aftercommit.discard(session)
                await session.rollback()
            raise
        except BaseException:
            aftercommit.discard(session)
            await session.rollback()
            raise
        else:
            await session.commit()
            await aftercommit.run_pending(session)


ActivationSessionDep = Annotated[AsyncSession, Depends(activation_session)]

TerminalId = Annotated[int, Path(ge=1, le=2_147_483_647)]

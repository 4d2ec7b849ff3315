"""FastAPI dependencies of the terminals domain: the signed-request guard, and the session
used by activation (which must keep its failure count when it refuses)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.deps import SessionDep, get_sessionmaker
from selfmart.errors import AppError
from selfmart.kit import aftercommit
from selfmart.terminals import service as terminals
from selfmart.terminals import signing
from selfmart.terminals.service import TerminalContext

#: Far above any valid value; longer headers are refused (422 naming the header) before the
#: verifier reads them.
HEADER_MAX = 256


class TerminalAuth:
    """Dependency: the request carries a valid terminal signature; yields a TerminalContext.

    The route walker (tests/test_routes.py) recognises `__selfmart_terminal_auth__` as this
    route's access declaration. The four headers are declared so they show in the OpenAPI
    spec; their absence is reported by the verifier (401 naming the header), not as a 422.
    """

    __selfmart_terminal_auth__ = True

    async def __call__(
        self,
        request: Request,
        session: SessionDep,
        key_id: Annotated[
            str | None, Header(alias=signing.HEADER_KEY_ID, max_length=HEADER_MAX)
        ] = None,
        timestamp: Annotated[
            str | None,
            Header(
                alias=signing.HEADER_TIMESTAMP, max_length=HEADER_MAX, description="unix seconds"
            ),
        ] = None,
        nonce: Annotated[
            str | None,
            Header(
                alias=signing.HEADER_NONCE,
                max_length=HEADER_MAX,
                description="16-64 of [A-Za-z0-9_-]",
            ),
        ] = None,
        signature: Annotated[
            str | None,
            Header(
                alias=signing.HEADER_SIGNATURE,
                max_length=HEADER_MAX,
                description="hex HMAC-SHA256, 64 chars",
            ),
        ] = None,
    ) -> TerminalContext:
        # FastAPI has already read the body to parse it; this returns the same cached bytes.
        body = await request.body()
        raw_path = request.scope.get("raw_path")
        path = (
            raw_path.decode("latin-1").partition("?")[0]
            if isinstance(raw_path, bytes)
            else request.url.path
        )
        ctx = await terminals.authenticate(
            session,
            headers={
                signing.HEADER_KEY_ID: key_id,
                signing.HEADER_TIMESTAMP: timestamp,
                signing.HEADER_NONCE: nonce,
                signing.HEADER_SIGNATURE: signature,
            },
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

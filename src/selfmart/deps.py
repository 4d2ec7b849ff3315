"""Dependencies every router uses: the request's database session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.kit import aftercommit


def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    factory: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    return factory


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: commit when the handler returns, roll back on error.

    Side effects registered with `aftercommit.on_commit` run only after the commit.
    """
    factory = get_sessionmaker(request)
    async with factory() as session:
        try:
            yield session
        except BaseException:
            aftercommit.discard(session)
            await session.rollback()
            raise
        else:
            await session.commit()
            await aftercommit.run_pending(session)


#: scope="function": commit before the response is sent, so a client never sees a 2xx for
#: a write that is not yet visible (or that then fails to commit).
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]

"""Key rotation and its grace period, nonce retention — with explicit clocks, no sleeping."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.config import get_settings
from selfmart.iam.actor import SYSTEM
from selfmart.kit.time import utcnow
from selfmart.models import TerminalKey, TerminalNonce
from selfmart.terminals import service as terminals
from selfmart.terminals import signing
from selfmart.terminals.exceptions import KeyExpired, ReplayedNonce, TerminalNotActivated
from selfmart.terminals.service import TerminalContext

from ..builders import make_store
from .builders import Credentials, make_active_terminal, make_terminal

PATH = "/api/terminal/v1/heartbeat"
BODY = b'{"app_version":"1"}'


async def _auth(
    session: AsyncSession, creds: Credentials, at: datetime, *, query: str = ""
) -> TerminalContext:
    """Sign as the terminal would at `at`, and verify as the server would at `at`."""
    target = f"{PATH}?{query}" if query else PATH
    headers = creds.sign("POST", target, BODY, timestamp=int(at.timestamp()))
    return await terminals.authenticate(
        session,
        headers=headers,
        method="POST",
        raw_path=PATH,
        raw_query=query,
        body=BODY,
        now=at,
    )


async def test_old_key_works_through_the_grace_period_then_not(session: AsyncSession) -> None:
    t0 = utcnow()
    old = await make_active_terminal(session, await make_store(session), now=t0)
    t1 = t0 + timedelta(hours=1)
    rotated = await terminals.rotate_key(session, old.terminal, actor=SYSTEM, now=t1)
    grace = timedelta(seconds=get_settings().terminal_key_grace_seconds)
    assert rotated.old_key_expires_at == t1 + grace
    new = Credentials(old.terminal, rotated.key_id, rotated.secret)

    ctx = await _auth(session, old, t1 + grace - timedelta(seconds=1))
    assert ctx.key.key_id == old.key_id
    assert ctx.actor.kind == "terminal"
    assert ctx.actor.store_ids == frozenset({old.terminal.store_id})
    assert ctx.store.id == old.terminal.store_id
    with pytest.raises(KeyExpired):
        await _auth(session, old, t1 + grace)
    assert (await _auth(session, new, t1 + grace)).key.key_id == rotated.key_id
    assert (await _auth(session, new, t1 + grace * 10)).key.key_id == rotated.key_id


async def test_second_rotation_keeps_the_first_grace(session: AsyncSession) -> None:
    t0 = utcnow()
    first = await make_active_terminal(session, await make_store(session), now=t0)
    grace = timedelta(seconds=get_settings().terminal_key_grace_seconds)
    r1 = await terminals.rotate_key(session, first.terminal, actor=SYSTEM, now=t0)
    r2 = await terminals.rotate_key(
        session, first.terminal, actor=SYSTEM, now=t0 + timedelta(minutes=10)
    )
    keys = {
        k.key_id: k
        for k in (
            await session.scalars(
                select(TerminalKey).where(TerminalKey.terminal_id == first.terminal.id)
            )
        ).all()
    }
    assert keys[first.key_id].expires_at == t0 + grace
    assert keys[r1.key_id].expires_at == t0 + timedelta(minutes=10) + grace
    assert keys[r2.key_id].expires_at is None
    current = await terminals.read(session, first.terminal)
    assert current.key_id == r2.key_id


async def test_rotating_a_never_activated_terminal_is_refused(session: AsyncSession) -> None:
    terminal = await make_terminal(session, await make_store(session))
    with pytest.raises(TerminalNotActivated):
        await terminals.rotate_key(session, terminal, actor=SYSTEM)


async def test_canonical_query_is_used_by_the_verifier(session: AsyncSession) -> None:
    creds = await make_active_terminal(session, await make_store(session))
    now = utcnow()
    headers = creds.sign("POST", f"{PATH}?b=2&a=1", BODY, timestamp=int(now.timestamp()))
    ctx = await terminals.authenticate(
        session,
        headers={k.lower(): v for k, v in headers.items()},
        method="post",
        raw_path=PATH,
        raw_query="a=1&b=2",
        body=BODY,
        now=now,
    )
    assert ctx.body == BODY
    assert ctx.nonce == headers[signing.HEADER_NONCE]


async def test_nonces_are_kept_for_twice_the_skew_then_purged(session: AsyncSession) -> None:
    creds = await make_active_terminal(session, await make_store(session))
    skew = timedelta(seconds=get_settings().terminal_clock_skew_seconds)
    now = utcnow()
    ages = [timedelta(0), skew, 2 * skew - timedelta(seconds=1), 2 * skew + timedelta(seconds=1)]
    for i, age in enumerate(ages):
        session.add(
            TerminalNonce(terminal_id=creds.terminal.id, nonce=f"nonce-{i:012d}", seen_at=now - age)
        )
    await session.flush()
    assert await terminals.purge_nonces(session, now=now) == 1
    left = (
        await session.scalars(
            select(TerminalNonce.nonce).where(TerminalNonce.terminal_id == creds.terminal.id)
        )
    ).all()
    assert sorted(left) == [f"nonce-{i:012d}" for i in range(3)]


async def test_a_nonce_stays_burnt_for_as_long_as_it_could_be_replayed(
    session: AsyncSession,
) -> None:
    """The worst case: a request stamped at the far edge of the skew, replayed at the other."""
    creds = await make_active_terminal(session, await make_store(session))
    skew = timedelta(seconds=get_settings().terminal_clock_skew_seconds)
    t = utcnow()
    stamp = int(t.timestamp())
    headers = creds.sign("POST", PATH, BODY, timestamp=stamp)
    seen = t - skew  # the server's clock was `skew` behind the terminal's

    async def verify(at: datetime) -> TerminalContext:
        return await terminals.authenticate(
            session, headers=headers, method="POST", raw_path=PATH, raw_query="", body=BODY, now=at
        )

    await verify(seen)
    replay_at = t + skew  # the last instant the stamp is still fresh
    await terminals.purge_nonces(session, now=replay_at)
    with pytest.raises(ReplayedNonce):
        await verify(replay_at)
    assert (
        await session.scalar(
            select(func.count()).where(TerminalNonce.terminal_id == creds.terminal.id)
        )
        == 1
    )

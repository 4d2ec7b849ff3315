"""Terminals: console management, activation, keys and rotation, and the request verifier.

The verifier (`authenticate`) is the only server-side reader of the signature headers; it uses
the same canonicalisation as the client signer in `selfmart.terminals.signing`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.config import get_settings
from selfmart.errors import AlreadyExists, IllegalTransition
from selfmart.iam.actor import Actor
from selfmart.kit import hotsql
from selfmart.kit.hotsql import HotStatement
from selfmart.kit.pagination import PageParams, paginate
from selfmart.kit.time import utcnow
from selfmart.models import Store, Terminal, TerminalKey, TerminalNonce
from selfmart.stores import service as stores
from selfmart.terminals import signing
from selfmart.terminals.crypto import (
    SecretUnreadable,
    decrypt_secret,
    encrypt_secret,
    hash_activation_code,
)
from selfmart.terminals.exceptions import (
    ActivationCodeExpired,
    ActivationCodeUsed,
    ActivationLocked,
    BadSignature,
    InvalidActivationCode,
    InvalidHeader,
    KeyExpired,
    KeyRevoked,
    KeyUnusable,
    MissingHeader,
    ReplayedNonce,
    StaleTimestamp,
    TerminalDisabled,
    TerminalDisabledConflict,
    TerminalNotActivated,
    TerminalNotFound,
    UnknownKey,
)
from selfmart.terminals.schemas import (
    Activated,
    ActivationCodeIssued,
    FleetSummary,
    KeyRotated,
    TerminalCreate,
    TerminalRead,
    TerminalUpdate,
    VersionCount,
)

log = logging.getLogger(__name__)

#: Printer and scanner states that need someone to look (paper low is a warning only).
_DEVICE_PROBLEMS = ("paper_out", "error")
#: Wrong activation codes tolerated per issued code; the next attempt is refused until a new
#: code is issued in the console.
MAX_ACTIVATION_FAILURES = 10
#: Activation codes: 12 characters without look-alikes (0/O, 1/I/L), shown as XXXX-XXXX-XXXX.
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_CODE_LENGTH = 12
#: One signed request in this many also purges the terminal's expired nonces.
_PURGE_ONE_IN = 64

AUDITED = ("code", "store_id", "name", "model", "status")


# --- console: reading ------------------------------------------------------------------------


def _scoped(stmt: Select[Any], actor: Actor) -> Select[Any]:
    if actor.store_ids is not None:
        stmt = stmt.where(Terminal.store_id.in_(actor.store_ids))
    return stmt


async def get_terminal(session: AsyncSession, terminal_id: int, *, actor: Actor) -> Terminal:
    """The terminal, if it belongs to a store `actor` may see; otherwise a 404."""
    terminal: Terminal | None = await session.scalar(
        _scoped(select(Terminal).where(Terminal.id == terminal_id), actor)
    )
    if terminal is None:
        raise TerminalNotFound(f"No terminal {terminal_id}")
    return terminal


async def _current_key_ids(session: AsyncSession, terminal_ids: list[int]) -> dict[int, str]:
    """terminal id → the key id of its current key (not revoked, not in rotation grace)."""
    if not terminal_ids:
        return {}
    rows = await session.execute(
        select(TerminalKey.terminal_id, TerminalKey.key_id)
        .where(
            TerminalKey.terminal_id.in_(terminal_ids),
            TerminalKey.revoked_at.is_(None),
            TerminalKey.expires_at.is_(None),
        )
        .order_by(TerminalKey.id)
    )
    return dict(rows.all())  # the newest wins if a race left two


async def _store_names(session: AsyncSession, store_ids: set[int]) -> dict[int, str]:
    if not store_ids:
        return {}
    rows = await session.execute(select(Store.id, Store.name).where(Store.id.in_(store_ids)))
    return dict(rows.all())


def online_window() -> timedelta:
    """A terminal counts as online when it was seen more recently than this."""
    return timedelta(seconds=get_settings().terminal_online_seconds)


def is_online(terminal: Terminal, now: datetime) -> bool:
    return terminal.last_seen_at is not None and now - terminal.last_seen_at < online_window()


def needs_attention(terminal: Terminal, now: datetime) -> bool:
    """An active terminal that is offline, or says it is in trouble."""
    if terminal.status != "active":
        return False
    return (
        not is_online(terminal, now)
        or terminal.reported_status == "fault"
        or (terminal.unsent_orders or 0) > 0
        or terminal.printer_state in _DEVICE_PROBLEMS
        or terminal.scanner_state in _DEVICE_PROBLEMS
    )


def _attention_clause(now: datetime) -> ColumnElement[bool]:
    """`needs_attention` in SQL, for the list's filter and the summary's count."""
    return and_(
        Terminal.status == "active",
        or_(
            Terminal.last_seen_at.is_(None),
            Terminal.last_seen_at < now - online_window(),
            Terminal.reported_status == "fault",
            Terminal.unsent_orders > 0,
            Terminal.printer_state.in_(_DEVICE_PROBLEMS),
            Terminal.scanner_state.in_(_DEVICE_PROBLEMS),
        ),
    )


async def _read_many(
    session: AsyncSession, terminals: list[Terminal], now: datetime
) -> list[TerminalRead]:
    keys = await _current_key_ids(session, [t.id for t in terminals])
    names = await _store_names(session, {t.store_id for t in terminals})
    return [
        TerminalRead(
            id=t.id,
            code=t.code,
            store_id=t.store_id,
            store_name=names.get(t.store_id, ""),
            name=t.name,
            model=t.model,
            status=t.status,
            last_seen_at=t.last_seen_at,
            last_ip=t.last_ip,
            app_version=t.app_version,
            online=is_online(t, now),
            silent_seconds=(
                None
                if t.last_seen_at is None
                else max(0, int((now - t.last_seen_at).total_seconds()))
            ),
            reported_status=t.reported_status,
            unsent_orders=t.unsent_orders,
            printer_state=t.printer_state,
            scanner_state=t.scanner_state,
            needs_attention=needs_attention(t, now),
            key_id=keys.get(t.id),
            created_at=t.created_at,
        )
        for t in terminals
    ]


async def read(
    session: AsyncSession, terminal: Terminal, *, now: datetime | None = None
) -> TerminalRead:
    return (await _read_many(session, [terminal], now or utcnow()))[0]


async def list_terminals(
    session: AsyncSession,
    params: PageParams,
    *,
    actor: Actor,
    store_id: int | None = None,
    status: str | None = None,
    q: str | None = None,
    online: bool | None = None,
    attention: bool | None = None,
    order: str = "id",
    now: datetime | None = None,
) -> tuple[list[TerminalRead], int]:
    """`order`: "id", or "silent" (longest silent first, never seen first: the fleet view)."""
    now = now or utcnow()
    stmt = _scoped(select(Terminal), actor)
    if order == "silent":
        stmt = stmt.order_by(Terminal.last_seen_at.is_not(None), Terminal.last_seen_at, Terminal.id)
    else:
        stmt = stmt.order_by(Terminal.id)
    if store_id is not None:
        stmt = stmt.where(Terminal.store_id == store_id)
    if status:
        stmt = stmt.where(Terminal.status == status)
    if online is not None:
        seen = Terminal.last_seen_at >= now - online_window()
        stmt = stmt.where(seen if online else or_(Terminal.last_seen_at.is_(None), ~seen))
    if attention is not None:
        clause = _attention_clause(now)
        stmt = stmt.where(clause if attention else ~clause)
    if q:
        stmt = stmt.where(
            or_(
                Terminal.code.icontains(q, autoescape=True),
                Terminal.name.icontains(q, autoescape=True),
                Terminal.model.icontains(q, autoescape=True),
            )
        )
    terminals, total = await paginate(session, stmt, params)
    return await _read_many(session, terminals, now), total


async def fleet_summary(
    session: AsyncSession,
    *,
    actor: Actor,
    store_id: int | None = None,
    now: datetime | None = None,
) -> FleetSummary:
    """Counts over the active terminals of the stores `actor` may see."""
    now = now or utcnow()
    seen = Terminal.last_seen_at >= now - online_window()
    base = _scoped(select(Terminal.id), actor).where(Terminal.status == "active")
    if store_id is not None:
        base = base.where(Terminal.store_id == store_id)
    ids = base.subquery()
    row = (
        await session.execute(
            select(
                func.count(),
                func.count(case((seen, 1))),
                func.count(case((Terminal.last_seen_at.is_(None), 1))),
                func.count(case((_attention_clause(now), 1))),
                func.coalesce(func.sum(Terminal.unsent_orders), 0),
            ).where(Terminal.id.in_(select(ids.c.id)))
        )
    ).one()
    versions = await session.execute(
        select(Terminal.app_version, func.count())
        .where(Terminal.id.in_(select(ids.c.id)))
        .group_by(Terminal.app_version)
        .order_by(func.count().desc(), Terminal.app_version.is_(None), Terminal.app_version)
    )
    active, online, never, attention, unsent = (int(v) for v in row)
    return FleetSummary(
        active=active,
        online=online,
        offline=active - online,
        never_seen=never,
        needs_attention=attention,
        unsent_orders=unsent,
        versions=[VersionCount(app_version=v, terminals=int(n)) for v, n in versions.all()],
    )


# --- console: changing -----------------------------------------------------------------------


def _actor_for(terminal: Terminal) -> Actor:
    """The Actor a terminal acts as: its own store only, no console permissions."""
    return Actor(
        kind="terminal",
        id=terminal.id,
        name=terminal.code,
        store_ids=frozenset({terminal.store_id}),
    )


async def _ensure_code_free(session: AsyncSession, code: str, *, except_id: int | None) -> None:
    stmt = select(Terminal.id).where(Terminal.code == code)
    if except_id is not None:
        stmt = stmt.where(Terminal.id != except_id)
    if await session.scalar(stmt) is not None:
        raise AlreadyExists(f"A terminal with code {code!r} already exists", field="code")


async def _flush_unique(session: AsyncSession, code: str) -> None:
    """Flush in a savepoint so a concurrent insert of the same code is a 409, not a 500."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise AlreadyExists(f"A terminal with code {code!r} already exists", field="code") from exc


async def create_terminal(
    session: AsyncSession, data: TerminalCreate, *, actor: Actor
) -> TerminalRead:
    await stores.get_store(session, data.store_id, actor=actor, field="store_id")
    await _ensure_code_free(session, data.code, except_id=None)
    terminal = Terminal(
        code=data.code, store_id=data.store_id, name=data.name, model=data.model, status="pending"
    )
    session.add(terminal)
    await _flush_unique(session, data.code)
    await audit.record(
        session,
        actor,
        "terminal.create",
        "terminal",
        terminal.id,
        store_id=terminal.store_id,
        after=audit.snapshot(terminal, AUDITED),
    )
    return await read(session, terminal)


async def update_terminal(
    session: AsyncSession, terminal: Terminal, data: TerminalUpdate, *, actor: Actor
) -> TerminalRead:
    changes = data.model_dump(exclude_unset=True)
    if "store_id" in changes and changes["store_id"] != terminal.store_id:
        await stores.get_store(session, changes["store_id"], actor=actor, field="store_id")
    if "code" in changes and changes["code"] != terminal.code:
        await _ensure_code_free(session, changes["code"], except_id=terminal.id)
    before = audit.snapshot(terminal, AUDITED)
    for name, value in changes.items():
        setattr(terminal, name, value)
    await _flush_unique(session, terminal.code)
    await audit.record(
        session,
        actor,
        "terminal.update",
        "terminal",
        terminal.id,
        store_id=terminal.store_id,
        before=before,
        after=audit.snapshot(terminal, AUDITED),
    )
    return await read(session, terminal)


async def _has_current_key(session: AsyncSession, terminal_id: int) -> bool:
    return bool(await _current_key_ids(session, [terminal_id]))


async def disable_terminal(
    session: AsyncSession, terminal: Terminal, *, actor: Actor
) -> TerminalRead:
    """Refuse every signed request from the terminal (its keys are kept for `enable`)."""
    if terminal.status == "disabled":
        raise IllegalTransition("The terminal is already disabled", field="status")
    before = audit.snapshot(terminal, AUDITED)
    terminal.status = "disabled"
    await session.flush()
    await audit.record(
        session,
        actor,
        "terminal.disable",
        "terminal",
        terminal.id,
        store_id=terminal.store_id,
        before=before,
        after=audit.snapshot(terminal, AUDITED),
    )
    return await read(session, terminal)


async def enable_terminal(
    session: AsyncSession, terminal: Terminal, *, actor: Actor
) -> TerminalRead:
    """Back to `active` when it still holds a key, else to `pending` (awaiting activation)."""
    if terminal.status != "disabled":
        raise IllegalTransition(
            f"Only a disabled terminal can be enabled (it is {terminal.status})", field="status"
        )
    before = audit.snapshot(terminal, AUDITED)
    terminal.status = "active" if await _has_current_key(session, terminal.id) else "pending"
    await session.flush()
    await audit.record(
        session,
        actor,
        "terminal.enable",
        "terminal",
        terminal.id,
        store_id=terminal.store_id,
        before=before,
        after=audit.snapshot(terminal, AUDITED),
    )
    return await read(session, terminal)


# --- activation codes and keys ---------------------------------------------------------------


def normalise_activation_code(code: str) -> str:
    """Upper-case, without the dashes and spaces people type between the groups."""
    return "".join(ch for ch in code.upper() if ch not in "- ")


def _new_activation_code() -> str:
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, _CODE_LENGTH, 4))


async def issue_activation_code(
    session: AsyncSession, terminal: Terminal, *, actor: Actor, now: datetime | None = None
) -> ActivationCodeIssued:
    """A new one-time code (replacing any earlier one, and clearing the attempt lock)."""
    now = now or utcnow()
    if terminal.status == "disabled":
        raise TerminalDisabledConflict()
    code = _new_activation_code()
    terminal.activation_code_hash = hash_activation_code(normalise_activation_code(code))
    terminal.activation_expires_at = now + timedelta(
        seconds=get_settings().terminal_activation_ttl_seconds
    )
    terminal.activation_used_at = None
    terminal.activation_failed_attempts = 0
    await session.flush()
    await audit.record(
        session,
        actor,
        "terminal.issue_activation_code",
        "terminal",
        terminal.id,
        store_id=terminal.store_id,
        after={"activation_expires_at": terminal.activation_expires_at},
    )
    return ActivationCodeIssued(activation_code=code, expires_at=terminal.activation_expires_at)


def new_key_id() -> str:
    return f"tk_{secrets.token_hex(10)}"


async def create_key(
    session: AsyncSession, terminal_id: int, *, now: datetime
) -> tuple[TerminalKey, str]:
    """A new current key for the terminal; returns it with its plain secret (never stored)."""
    secret = secrets.token_urlsafe(32)
    key_id = new_key_id()
    key = TerminalKey(
        key_id=key_id,
        terminal_id=terminal_id,
        secret_encrypted=encrypt_secret(secret, key_id=key_id),
        created_at=now,
    )
    session.add(key)
    await session.flush()
    return key, secret


async def rotate_key(
    session: AsyncSession, terminal: Terminal, *, actor: Actor, now: datetime | None = None
) -> KeyRotated:
    """Issue a new key; the current one keeps working for the grace period, then is refused."""
    now = now or utcnow()
    # Serialise rotations of one terminal so two at once cannot leave two current keys.
    await session.execute(select(Terminal.id).where(Terminal.id == terminal.id).with_for_update())
    current = (
        await session.scalars(
            select(TerminalKey).where(
                TerminalKey.terminal_id == terminal.id,
                TerminalKey.revoked_at.is_(None),
                TerminalKey.expires_at.is_(None),
            )
        )
    ).all()
    if not current:
        raise TerminalNotActivated()
    grace_until = now + timedelta(seconds=get_settings().terminal_key_grace_seconds)
    for old in current:
        old.expires_at = grace_until
    key, secret = await create_key(session, terminal.id, now=now)
    await audit.record(
        session,
        actor,
        "terminal.rotate_key",
        "terminal",
        terminal.id,
        store_id=terminal.store_id,
        before={"key_id": current[-1].key_id},
        after={"key_id": key.key_id},
        note=f"previous key valid until {grace_until.isoformat()}",
    )
    return KeyRotated(key_id=key.key_id, secret=secret, old_key_expires_at=grace_until)


async def activate(
    session: AsyncSession, terminal_code: str, activation_code: str, *, now: datetime | None = None
) -> Activated:
    """Exchange a terminal's one-time activation code for its first (or a fresh) key.

    Every earlier key of the terminal is revoked: activation means "this device is now the
    terminal". A wrong code bumps the terminal's failure count (kept even though the request
    fails); at MAX_ACTIVATION_FAILURES the terminal refuses activation until a new code is issued.
    """
    now = now or utcnow()
    terminal = await session.scalar(
        select(Terminal).where(Terminal.code == terminal_code).with_for_update()
    )
    if terminal is None:
        raise InvalidActivationCode()
    if terminal.activation_failed_attempts >= MAX_ACTIVATION_FAILURES:
        raise ActivationLocked()
    given = hash_activation_code(normalise_activation_code(activation_code))
    if terminal.activation_code_hash is None or not hmac.compare_digest(
        terminal.activation_code_hash, given
    ):
        await _record_failed_activation(session, terminal)
        left = MAX_ACTIVATION_FAILURES - terminal.activation_failed_attempts
        raise InvalidActivationCode(
            f"The terminal code or activation code is wrong ({left} attempts left)",
            field="activation_code",
        )
    if terminal.activation_used_at is not None:
        raise ActivationCodeUsed(field="activation_code")
    if terminal.activation_expires_at is None or terminal.activation_expires_at <= now:
        raise ActivationCodeExpired(field="activation_code")
    if terminal.status == "disabled":
        raise TerminalDisabledConflict()
    status_before = terminal.status
    # Single use across processes: only one claim of this code can match the row.
    claimed = await session.scalar(
        update(Terminal)
        .where(
            Terminal.id == terminal.id,
            Terminal.activation_code_hash == given,
            Terminal.activation_used_at.is_(None),
        )
        .values(activation_used_at=now, status="active")
        .returning(Terminal.id)
        .execution_options(synchronize_session=False)
    )
    if claimed is None:
        raise ActivationCodeUsed(field="activation_code")
    await session.refresh(terminal)
    revoked = (
        await session.scalars(
            update(TerminalKey)
            .where(TerminalKey.terminal_id == terminal.id, TerminalKey.revoked_at.is_(None))
            .values(revoked_at=now)
            .returning(TerminalKey.key_id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    key, secret = await create_key(session, terminal.id, now=now)
    await audit.record(
        session,
        _actor_for(terminal),
        "terminal.activate",
        "terminal",
        terminal.id,
        store_id=terminal.store_id,
        before={"status": status_before},
        after={"status": terminal.status, "key_id": key.key_id},
        note=f"revoked keys: {', '.join(revoked)}" if revoked else None,
    )
    return Activated(terminal_id=terminal.id, key_id=key.key_id, secret=secret)


async def _record_failed_activation(session: AsyncSession, terminal: Terminal) -> None:
    count = await session.scalar(
        update(Terminal)
        .where(Terminal.id == terminal.id)
        .values(activation_failed_attempts=Terminal.activation_failed_attempts + 1)
        .returning(Terminal.activation_failed_attempts)
        .execution_options(synchronize_session=False)
    )
    terminal.activation_failed_attempts = int(count or 0)
    await audit.record(
        session,
        _actor_for(terminal),
        "terminal.activation_failed",
        "terminal",
        terminal.id,
        store_id=terminal.store_id,
        note=f"wrong activation code ({count} of {MAX_ACTIVATION_FAILURES})",
    )


# --- signed requests -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedTerminal:
    """The terminal of a signed request, as read with its key (plain values, not ORM)."""

    id: int
    code: str
    store_id: int
    status: str
    app_version: str | None
    last_ip: str | None


@dataclass(frozen=True, slots=True)
class SignedStore:
    """What signed routes need of the terminal's store."""

    id: int
    code: str
    timezone: str
    allow_negative_stock: bool


@dataclass(frozen=True, slots=True)
class SignedKey:
    key_id: str
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class TerminalContext:
    """What a signed request proves: which terminal (of which store) sent these exact bytes."""

    terminal: SignedTerminal
    store: SignedStore
    key: SignedKey
    actor: Actor
    nonce: str
    timestamp: int
    #: The raw request body the signature covers (the route also gets it parsed).
    body: bytes


def _header(headers: Mapping[str, str | None], name: str, pattern: re.Pattern[str]) -> str:
    value = headers.get(name.lower())
    if not value:
        raise MissingHeader(f"The {name} header is required", field=name)
    if not pattern.match(value):
        raise InvalidHeader(f"The {name} header is malformed", field=name)
    return value


_nonces = cast(Table, TerminalNonce.__table__)
_keys = cast(Table, TerminalKey.__table__)
_terminals = cast(Table, Terminal.__table__)
_stores = cast(Table, Store.__table__)

#: Built once per dialect (the verifier runs on every terminal request).
_NONCE_INSERT = {
    name: insert_(_nonces)
    .values(
        terminal_id=bindparam("terminal_id"), nonce=bindparam("nonce"), seen_at=bindparam("now")
    )
    .on_conflict_do_nothing(index_elements=["terminal_id", "nonce"])
    .returning(_nonces.c.nonce)
    for name, insert_ in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}

#: The key, its terminal and the store in one Core query (no ORM objects on the hot path).
#: Revocation, expiry and the terminal's status are read here on every request, so a change
#: made by any process is seen at once; only the decryption of the secret is cached.
_KEY_LOOKUP = (
    select(
        _keys.c.secret_encrypted,
        _keys.c.expires_at,
        _keys.c.revoked_at,
        _terminals.c.id,
        _terminals.c.code,
        _terminals.c.store_id,
        _terminals.c.status,
        _terminals.c.app_version,
        _terminals.c.last_ip,
        _stores.c.code.label("store_code"),
        _stores.c.timezone,
        _stores.c.allow_negative_stock,
    )
    .select_from(_keys)
    .join(_terminals, _terminals.c.id == _keys.c.terminal_id)
    .join(_stores, _stores.c.id == _terminals.c.store_id)
    .where(_keys.c.key_id == bindparam("key_id"))
)


#: PostgreSQL: the key look-up and the nonce burnt in one statement (one round trip, not two).
#: The nonce is inserted for the key's terminal before the signature is checked; a request
#: that then fails (bad signature, revoked or expired key, disabled terminal, replay) raises,
#: and the request's transaction rolls back, so only a request that passed leaves its nonce.
#: `fresh` is false when the nonce was already taken (a replay).
_key_cte = _KEY_LOOKUP.cte("k")
_burn_cte = (
    postgresql.insert(_nonces)
    .from_select(
        ["terminal_id", "nonce", "seen_at"],
        select(
            _key_cte.c.id,
            bindparam("nonce", type_=_nonces.c.nonce.type),
            bindparam("now", type_=_nonces.c.seen_at.type),
        ),
    )
    .on_conflict_do_nothing(index_elements=["terminal_id", "nonce"])
    .returning(_nonces.c.nonce)
    .cte("n")
)
_KEY_LOOKUP_AND_BURN_PG = select(
    _key_cte, exists(select(_burn_cte.c.nonce)).label("fresh")
).select_from(_key_cte)
#: Run on the driver (kit.hotsql): every terminal request starts with it.
_KEY_AND_BURN = HotStatement(_KEY_LOOKUP_AND_BURN_PG)


class _KeyRow(NamedTuple):
    """A row of `_KEY_LOOKUP_AND_BURN_PG`, by name (the driver's rows are positional; a test
    holds these fields to the statement's columns)."""

    secret_encrypted: str
    expires_at: datetime | None
    revoked_at: datetime | None
    id: int
    code: str
    store_id: int
    status: str
    app_version: str | None
    last_ip: str | None
    store_code: str
    timezone: str
    allow_negative_stock: bool
    fresh: bool


@lru_cache(maxsize=4096)
def _secret(secret_encrypted: str, key_id: str, master_fingerprint: str) -> str:
    """The decrypted HMAC secret. Cached on the stored ciphertext itself (a new key, a rotation
    or a re-activation is a new row with a new ciphertext, and a changed server key changes
    the fingerprint), so a cached value can never outlive the row it came from; revocation,
    expiry and disabling are checked against the database on every request regardless."""
    return decrypt_secret(secret_encrypted, key_id=key_id)


def _master_fingerprint() -> str:
    master = get_settings().secret_key.get_secret_value()
    return hashlib.sha256(master.encode("utf-8")).hexdigest()


def nonce_retention() -> timedelta:
    """How long a nonce must be remembered: a request stamped t is accepted while the server
    clock is within t ± skew, so a nonce seen at s can come back until s + 2 × skew."""
    return timedelta(seconds=2 * get_settings().terminal_clock_skew_seconds)


async def authenticate(
    session: AsyncSession,
    *,
    headers: Mapping[str, str | None],
    method: str,
    raw_path: str,
    raw_query: str,
    body: bytes,
    now: datetime | None = None,
) -> TerminalContext:
    """Verify a signed terminal request and burn its nonce, in the caller's transaction.

    `headers` are keyed by lower-case name. The nonce is recorded in the request's own
    transaction: if the request then fails and rolls back, it took no effect, and its nonce may
    be seen again. Two concurrent copies still cannot both pass: the second waits on the
    nonce's primary key and finds it taken. One round trip on PostgreSQL: the key (with its
    terminal and store) and the nonce in one statement (`_KEY_LOOKUP_AND_BURN_PG`); two
    elsewhere.
    """
    now = now or utcnow()
    lowered = {k.lower(): v for k, v in headers.items()}
    key_id = _header(lowered, signing.HEADER_KEY_ID, signing.KEY_ID_RE)
    timestamp = _header(lowered, signing.HEADER_TIMESTAMP, signing.TIMESTAMP_RE)
    nonce = _header(lowered, signing.HEADER_NONCE, signing.NONCE_RE)
    signature = _header(lowered, signing.HEADER_SIGNATURE, signing.SIGNATURE_RE)

    skew = get_settings().terminal_clock_skew_seconds
    ts = int(timestamp)
    if abs(int(now.timestamp()) - ts) > skew:  # whole seconds, as the header carries
        raise StaleTimestamp(
            f"The timestamp is more than {skew} s away from the server time "
            f"({int(now.timestamp())})",
            field=signing.HEADER_TIMESTAMP,
        )

    fresh: bool | None = None  # None: the nonce is still to be burnt (not PostgreSQL)
    row: Any
    if session.get_bind().dialect.name == "postgresql":
        params = {"key_id": key_id, "nonce": nonce, "now": now}
        found = await hotsql.fetch(session, _KEY_AND_BURN, params)
        row = _KeyRow(*found[0]) if found else None
        fresh = None if row is None else bool(row.fresh)
    else:
        row = (await session.execute(_KEY_LOOKUP, {"key_id": key_id})).first()
    if row is None:
        raise UnknownKey(field=signing.HEADER_KEY_ID)
    try:
        secret = _secret(row.secret_encrypted, key_id, _master_fingerprint())
    except SecretUnreadable:
        log.error("terminal key %s does not decrypt; was SELFMART_SECRET_KEY changed?", key_id)
        raise KeyUnusable(field=signing.HEADER_KEY_ID) from None

    canonical = signing.canonical_string(method, raw_path, raw_query, timestamp, nonce, body)
    if not signing.signature_matches(secret, canonical, signature):
        raise BadSignature(field=signing.HEADER_SIGNATURE)
    # Key state is told only to a caller who proved it holds the key.
    if row.revoked_at is not None:
        raise KeyRevoked(field=signing.HEADER_KEY_ID)
    if row.expires_at is not None and row.expires_at <= now:
        raise KeyExpired(field=signing.HEADER_KEY_ID)
    if row.status == "disabled":
        raise TerminalDisabled()

    terminal_id = int(row.id)
    if fresh is None:
        params = {"terminal_id": terminal_id, "nonce": nonce, "now": now}
        fresh = await session.scalar(_NONCE_INSERT["sqlite"], params) is not None
    if not fresh:
        raise ReplayedNonce(field=signing.HEADER_NONCE)
    if random.randrange(_PURGE_ONE_IN) == 0:  # spreads the purge; not security
        await purge_nonces(session, now=now, terminal_id=terminal_id)

    terminal = SignedTerminal(
        id=terminal_id,
        code=row.code,
        store_id=int(row.store_id),
        status=row.status,
        app_version=row.app_version,
        last_ip=row.last_ip,
    )
    return TerminalContext(
        terminal=terminal,
        store=SignedStore(
            id=terminal.store_id,
            code=row.store_code,
            timezone=row.timezone,
            allow_negative_stock=bool(row.allow_negative_stock),
        ),
        key=SignedKey(key_id=key_id, expires_at=row.expires_at, revoked_at=row.revoked_at),
        actor=Actor(
            kind="terminal",
            id=terminal_id,
            name=terminal.code,
            store_ids=frozenset({terminal.store_id}),
        ),
        nonce=nonce,
        timestamp=ts,
        body=body,
    )


async def purge_nonces(
    session: AsyncSession, *, now: datetime | None = None, terminal_id: int | None = None
) -> int:
    """Forget nonces too old to be replayed (see `nonce_retention`); returns how many.

    Signed requests call this now and then for their own terminal; the jobs domain may also
    schedule it for all terminals.
    """
    cutoff = (now or utcnow()) - nonce_retention()
    stmt = delete(TerminalNonce).where(TerminalNonce.seen_at < cutoff)
    if terminal_id is not None:
        stmt = stmt.where(TerminalNonce.terminal_id == terminal_id)
    result = cast(CursorResult[Any], await session.execute(stmt))
    return result.rowcount


# --- terminal API ----------------------------------------------------------------------------


async def heartbeat(
    session: AsyncSession,
    ctx: TerminalContext,
    *,
    app_version: str,
    ip: str | None,
    status: str | None = None,
    unsent_orders: int | None = None,
    printer: str | None = None,
    scanner: str | None = None,
    now: datetime | None = None,
) -> datetime:
    """Record that the terminal is alive and what it says of itself (a field it leaves out
    keeps its last value). `last_seen_at` and the unsent-order count are telemetry (not audited:
    the route is in AUDIT_EXEMPT_PATHS); a changed version, address, status or device state is
    a state change, audited."""
    now = now or utcnow()
    terminal = ctx.terminal
    said = (
        await session.execute(
            select(
                _terminals.c.reported_status, _terminals.c.printer_state, _terminals.c.scanner_state
            ).where(_terminals.c.id == terminal.id)
        )
    ).one()
    before = {
        "app_version": terminal.app_version,
        "last_ip": terminal.last_ip,
        "reported_status": said.reported_status,
        "printer_state": said.printer_state,
        "scanner_state": said.scanner_state,
    }
    after = {
        "app_version": app_version,
        "last_ip": ip,
        "reported_status": status if status is not None else said.reported_status,
        "printer_state": printer if printer is not None else said.printer_state,
        "scanner_state": scanner if scanner is not None else said.scanner_state,
    }
    values: dict[str, Any] = {"last_seen_at": now, **after}
    if unsent_orders is not None:
        values["unsent_orders"] = unsent_orders
    await session.execute(update(_terminals).where(_terminals.c.id == terminal.id).values(**values))
    if before != after:
        await audit.record(
            session,
            ctx.actor,
            "terminal.heartbeat",
            "terminal",
            terminal.id,
            store_id=terminal.store_id,
            before=before,
            after=after,
        )
    return now

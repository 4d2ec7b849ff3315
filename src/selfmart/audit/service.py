"""Writing audit entries (every service that changes state calls `record`, in the same
transaction), and searching and exporting them. Entries are never edited or deleted."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any, cast

from sqlalchemy import Select, Table, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.audit import labels, security
from selfmart.audit.export import AuditWriter
from selfmart.audit.schemas import AuditFilter
from selfmart.iam.actor import Actor
from selfmart.kit import hotsql, searchlog
from selfmart.kit import prune as prune_rows
from selfmart.kit.context import current_ip, current_request_id
from selfmart.kit.pagination import LOG_COUNT_CAP, PageParams, paginate
from selfmart.kit.time import utcnow
from selfmart.models import AuditLog

_audit_logs = cast(Table, AuditLog.__table__)


class ExportTooLarge(searchlog.ExportTooLarge):
    message, noun = "Too many entries to export; narrow the filters", "entries"


#: Fields whose values never reach the audit log (they are shown as "***").
SECRET_FIELDS = frozenset(
    {
        "password",
        "password_hash",
        "secret",
        "secret_encrypted",
        "refresh_hash",
        "activation_code_hash",
        "activation_code",
    }
)


#: Types that are JSON-ready as they are: checked first, as nearly every value is one.
_SCALARS = frozenset({str, int, bool, float, type(None)})


def _plain(value: Any) -> Any:
    if type(value) in _SCALARS:
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def snapshot(obj: object, fields: Iterable[str]) -> dict[str, Any]:
    """The named attributes of `obj`, as JSON-ready values."""
    return {f: _plain(getattr(obj, f)) for f in fields}


def diff(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, Any]:
    """{"field": {"before": x, "after": y}} for every field that differs."""
    if not before:
        # A creation (the bulk of an import's 50,000 entries): every field that is not None
        # differs from nothing, so no comparison is needed.
        return _created(after) if after else {}
    after = after or {}
    out: dict[str, Any] = {}
    for key in sorted(set(before) | set(after)):
        b, a = _plain(before.get(key)), _plain(after.get(key))
        if b != a:
            if key in SECRET_FIELDS:
                b, a = ("***" if b is not None else None), ("***" if a is not None else None)
            out[key] = {"before": b, "after": a}
    return out


def created(after: Mapping[str, Any]) -> dict[str, Any]:
    """`diff(None, after)` for values that are JSON-ready already (str, int, bool, None, lists
    of them), as bulk creations build them: the same changes without converting each value."""
    return {
        k: {"before": None, "after": "***" if k in SECRET_FIELDS else v}
        for k, v in sorted(after.items())
        if v is not None
    }


def _created(after: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted(after):
        a = _plain(after[key])
        if a is not None:
            out[key] = {"before": None, "after": "***" if key in SECRET_FIELDS else a}
    return out


async def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: object | None,
    *,
    store_id: int | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    note: str | None = None,
    label: str | None = None,
) -> AuditLog:
    """Add one audit entry to the current transaction (flushed with the change it records).

    `label` names the entity in words (its name, its document number); without one it is
    taken from the change itself or looked up, so the log reads the same after a delete."""
    label = (
        label
        or labels.from_snapshot(entity_type, before, after)
        or await labels.look_up(session, entity_type, entity_id)
    )
    entry = AuditLog(
        occurred_at=utcnow(),
        actor_type=actor.kind,
        actor_id=actor.audit_id,
        actor_name=actor.name,
        action=action,
        entity_type=entity_type,
        entity_id=None if entity_id is None else str(entity_id),
        entity_label=label[: labels.MAX_LABEL] if label else None,
        store_id=store_id,
        changes=diff(before, after),
        note=note,
        ip=current_ip(),
        request_id=current_request_id(),
    )
    session.add(entry)
    return entry


@dataclass(frozen=True, slots=True)
class Change:
    """One entry for `record_many`."""

    entity_id: object | None
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    store_id: int | None = None
    #: the entity's name or number; taken from `after`/`before` when not given
    label: str | None = None
    #: the entry's changes when the caller built them already (see `created`)
    changes: dict[str, Any] | None = None


def _label(entity_type: str, change: Change) -> str | None:
    label = change.label or labels.from_snapshot(entity_type, change.before, change.after)
    return label[: labels.MAX_LABEL] if label else None


#: The columns every entry of one `record_many` call shares, and those each entry has its own.
_VARYING = ("entity_id", "entity_label", "store_id", "changes")


def _shared(actor: Actor, action: str, entity_type: str, note: str | None) -> dict[str, Any]:
    return {
        "occurred_at": utcnow(),
        "actor_type": actor.kind,
        "actor_id": actor.audit_id,
        "actor_name": actor.name,
        "action": action,
        "entity_type": entity_type,
        "note": note,
        "ip": current_ip(),
        "request_id": current_request_id(),
    }


def _own(entity_type: str, c: Change) -> tuple[str | None, str | None, int | None, Any]:
    """An entry's own values, in the order of `_VARYING`."""
    return (
        None if c.entity_id is None else str(c.entity_id),
        _label(entity_type, c),
        c.store_id,
        diff(c.before, c.after) if c.changes is None else c.changes,
    )


def entry_rows(
    actor: Actor,
    action: str,
    entity_type: str,
    changes: Sequence[Change],
    *,
    note: str | None = None,
) -> list[dict[str, Any]]:
    """The rows `record_many` inserts, for a caller that sends them in a statement of its own
    e.g. together with its other writes in one round trip."""
    shared = _shared(actor, action, entity_type, note)
    return [{**shared, **dict(zip(_VARYING, _own(entity_type, c), strict=True))} for c in changes]


async def record_many(
    session: AsyncSession,
    actor: Actor,
    action: str,
    entity_type: str,
    changes: Sequence[Change],
    *,
    note: str | None = None,
) -> int:
    """One entry per change, all in one statement, for bulk work (imports of 50,000 rows)
    where an ORM object (or even a Core executemany's per-row processing) per entry would cost
    more than the work it records: what the entries share is sent once (kit.hotsql)."""
    if not changes:
        return 0
    rows = [_own(entity_type, c) for c in changes]
    shared = _shared(actor, action, entity_type, note)
    await hotsql.insert_rows(session, _audit_logs, _VARYING, rows, shared=shared)
    return len(rows)


def _query(actor: Actor, f: AuditFilter) -> Select[AuditLog]:
    stmt = searchlog.scoped(select(AuditLog), AuditLog.store_id, actor.store_ids)
    stmt = searchlog.in_range(stmt, AuditLog.occurred_at, f.since, f.until)
    if f.actor_type:
        stmt = stmt.where(AuditLog.actor_type == f.actor_type)
    if f.actor_id:
        stmt = stmt.where(AuditLog.actor_id == f.actor_id)
    if f.actor:
        stmt = stmt.where(AuditLog.actor_name.icontains(f.actor, autoescape=True))
    if f.action:
        if f.action.endswith("*"):
            stmt = stmt.where(AuditLog.action.startswith(f.action[:-1], autoescape=True))
        else:
            stmt = stmt.where(AuditLog.action == f.action)
    if f.entity_type:
        stmt = stmt.where(AuditLog.entity_type == f.entity_type)
    if f.entity_id:
        stmt = stmt.where(AuditLog.entity_id == f.entity_id)
    if f.entity:
        stmt = stmt.where(AuditLog.entity_label.icontains(f.entity, autoescape=True))
    if f.store_id is not None:
        stmt = stmt.where(AuditLog.store_id == f.store_id)
    if f.kind == "security":
        stmt = stmt.where(security.security_condition())
    elif f.kind == "change":
        stmt = stmt.where(~security.security_condition())
    stmt = searchlog.containing(
        stmt,
        f.q,
        (
            AuditLog.actor_name,
            AuditLog.action,
            AuditLog.entity_type,
            AuditLog.entity_id,
            AuditLog.entity_label,
            AuditLog.note,
            AuditLog.request_id,
        ),
    )
    return stmt.order_by(AuditLog.occurred_at.desc(), AuditLog.id.desc())


async def search(
    session: AsyncSession, actor: Actor, f: AuditFilter, params: PageParams
) -> tuple[list[AuditLog], int]:
    """One page of the entries the actor may see that match `f`, newest first."""
    return await paginate(session, _query(actor, f), params, count_cap=LOG_COUNT_CAP)


async def entity_labels(
    session: AsyncSession, entries: Sequence[AuditLog]
) -> dict[int, str | None]:
    """Each entry's entity label: the one stored with it, else the entity's name now (entries
    from before labels were stored, and bulk entries written without one)."""
    missing = [(e.entity_type, e.entity_id) for e in entries if not e.entity_label]
    found = await labels.resolve(session, missing) if missing else {}
    return {e.id: e.entity_label or found.get((e.entity_type, e.entity_id or "")) for e in entries}


async def actions(session: AsyncSession, actor: Actor) -> list[str]:
    """The action codes in the entries the actor may see, for the filter's list."""
    scope = searchlog.store_scope(AuditLog.store_id, actor.store_ids)
    stmt = searchlog.distinct_values(AuditLog.action, *([] if scope is None else [scope]))
    return [a for a in (await session.scalars(stmt)).all() if a is not None]


async def export(
    session: AsyncSession,
    actor: Actor,
    f: AuditFilter,
    *,
    fmt: str,
    lang: str,
    timezone: str,
    max_rows: int,
) -> IO[bytes]:
    """Every entry matching `f` in a file (xlsx or csv), times in `timezone`, newest first."""
    stmt = _query(actor, f)
    await searchlog.check_export_size(session, stmt, max_rows, ExportTooLarge)
    writer = AuditWriter(fmt, lang, timezone)
    batch: list[AuditLog] = []
    result = await session.stream_scalars(stmt.execution_options(yield_per=1000))
    async for entry in result:
        batch.append(entry)
        if len(batch) >= 1000:
            await asyncio.to_thread(writer.write, batch)
            batch = []
    if batch:
        await asyncio.to_thread(writer.write, batch)
    return await asyncio.to_thread(writer.finish)


async def prune(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    changes_before: datetime,
    security_before: datetime,
    batch: int,
) -> dict[str, int]:
    """Delete entries older than their retention: security events and changes each by their
    own cutoff, in batches (kit.prune). Returns the rows deleted of each kind."""
    condition = security.security_condition()
    changes, _ = await prune_rows.delete_older(
        sessionmaker, _audit_logs, "occurred_at", changes_before, batch=batch, where=~condition
    )
    secure, _ = await prune_rows.delete_older(
        sessionmaker, _audit_logs, "occurred_at", security_before, batch=batch, where=condition
    )
    return {"audit": changes, "security": secure}

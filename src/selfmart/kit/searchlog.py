"""What the console's searchable logs (the audit log, the business log) share: a query over
the rows of the actor's stores in a time range, words looked for in several columns, newest
first; and an export of it, counted before it is written and named after the log and moment."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from fastapi import Request
from sqlalchemy import ColumnElement, Select, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from selfmart.errors import ValidationFailed
from selfmart.kit.tabular import XLSX_MEDIA_TYPE
from selfmart.kit.time import utcnow

T = TypeVar("T")

EXPORT_MEDIA_TYPES = {"xlsx": XLSX_MEDIA_TYPE, "csv": "text/csv; charset=utf-8"}


def store_scope(
    store_id: InstrumentedAttribute[Any], store_ids: frozenset[int] | None
) -> ColumnElement[bool] | None:
    """Rows of the stores an actor sees (`Actor.store_ids`; None: all of them, and then the
    store-less rows too); None when that is every row."""
    if store_ids is None:
        return None
    if not store_ids:
        return false()
    return store_id.in_(sorted(store_ids))


def distinct_values(column: InstrumentedAttribute[T], *where: ColumnElement[bool]) -> Select[T]:
    """Each distinct value of an indexed column, in order, by a loose index scan: one index
    probe per value (the least value above the last one found), where `SELECT DISTINCT` reads
    the whole table or index, which grows with a year of logs while the values do not."""
    first = select(func.min(column).label("value")).where(*where)
    found = first.cte("found_values", recursive=True)
    following = select(func.min(column)).where(column > found.c.value, *where).scalar_subquery()
    found = found.union_all(select(following).where(found.c.value.is_not(None)))
    return select(found.c.value).where(found.c.value.is_not(None)).order_by(found.c.value)


def scoped(
    stmt: Select[T], store_id: InstrumentedAttribute[Any], store_ids: frozenset[int] | None
) -> Select[T]:
    scope = store_scope(store_id, store_ids)
    return stmt if scope is None else stmt.where(scope)


def in_range(
    stmt: Select[T],
    at: InstrumentedAttribute[datetime],
    since: datetime | None,
    until: datetime | None,
) -> Select[T]:
    """Rows from `since` (inclusive) to `until` (exclusive); 422 naming `until` when the range
    ends before it starts."""
    if since is not None and until is not None and since > until:
        raise ValidationFailed("until must not be before since", field="until")
    if since is not None:
        stmt = stmt.where(at >= since)
    if until is not None:
        stmt = stmt.where(at < until)
    return stmt


def containing(
    stmt: Select[T], q: str | None, columns: Iterable[InstrumentedAttribute[Any]]
) -> Select[T]:
    """Rows where any of `columns` holds the text `q` (any case; % and _ are literal)."""
    if not q:
        return stmt
    return stmt.where(or_(*(col.icontains(q, autoescape=True) for col in columns)))


class ExportTooLarge(ValidationFailed):
    """An export past its log's limit; each log names its rows (`noun`)."""

    code = "export_too_large"
    noun = "rows"


async def check_export_size(
    session: AsyncSession, stmt: Select[Any], max_rows: int, too_large: type[ExportTooLarge]
) -> None:
    """Refuse (`too_large`, naming `since`) an export of more than `max_rows` rows."""
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    if (total or 0) > max_rows:
        raise too_large(
            f"{total} {too_large.noun} match; an export holds at most {max_rows}."
            " Narrow the filters.",
            field="since",
        )


def export_responses(description: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI answer of an export route: the file, in either format."""
    return {
        200: {
            "description": description,
            "content": {media: {} for media in EXPORT_MEDIA_TYPES.values()},
        }
    }


def export_language(request: Request) -> str:
    """The headers' language of an export: English when the console asks for it, else Chinese."""
    return "en" if request.headers.get("accept-language", "").lower().startswith("en") else "zh"


#: a label in Chinese and in English
Label = tuple[str, str]


def language_index(lang: str) -> int:
    """Which of a Label's two words a language reads: 1 for English, else 0 (Chinese)."""
    return 1 if lang == "en" else 0


def in_language(label: Label, lang: str) -> str:
    return label[language_index(lang)]


def label_of(table: Mapping[str, Label], key: str, lang: str) -> str:
    """The key's label in the language; the key itself when the table has none."""
    pair = table.get(key)
    return key if pair is None else in_language(pair, lang)


def attachment(prefix: str, fmt: str) -> dict[str, str]:
    """The download's headers: `prefix`-YYYYmmdd-HHMMSS.fmt, in the server's local time."""
    name = f"{prefix}-{utcnow().astimezone().strftime('%Y%m%d-%H%M%S')}.{fmt}"
    return {"content-disposition": f'attachment; filename="{name}"'}

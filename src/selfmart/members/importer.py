"""Member import from xlsx or csv (UTF-8 or GBK): every row checked (mobile format, birthday
not in the future, duplicates in the file and against existing members), then a dry run's
report, or the members created — all of them or only the good rows, in the caller's
transaction, each audited. Imports create members; a row whose mobile or card is already a
member's is reported, never merged silently (merging is its own audited action)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, cast

from sqlalchemy import Table as SqlTable
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.iam.actor import Actor
from selfmart.kit import tabular
from selfmart.kit.rowimport import Columns, RowErrors, cell_text
from selfmart.kit.schema import control_character
from selfmart.kit.tabular import Cell, Table
from selfmart.kit.time import utcnow
from selfmart.members import profiles
from selfmart.members.schemas import MOBILE_RE, MemberImportReport, normalise_mobile, today_local
from selfmart.models import AuditLog, Member, Store

ImportMode = Literal["all_or_nothing", "good_rows_only"]
CHUNK = 500

COLUMNS = Columns(
    {
        "name": "姓名",
        "mobile": "手机号",
        "gender": "性别",
        "birthday": "生日",
        "card_no": "会员卡号",
        "home_store": "门店",
        "tags": "标签",
        "marketing_consent": "营销同意",
    },
    aliases={
        "手机": "mobile",
        "手机号码": "mobile",
        "电话": "mobile",
        "卡号": "card_no",
        "出生日期": "birthday",
        "门店编码": "home_store",
        "门店ID": "home_store",
        "home_store_id": "home_store",
        "store": "home_store",
        "card": "card_no",
        "consent": "marketing_consent",
        "Mobile": "mobile",
        "Name": "name",
        "Gender": "gender",
        "Birthday": "birthday",
        "Card no": "card_no",
        "Home store ID": "home_store",
        "Tags": "tags",
        "Marketing consent": "marketing_consent",
    },
    # What the member export writes besides the profile: kept by the programme, not imported.
    ignored={
        "id",
        "会员号",
        "等级",
        "积分",
        "状态",
        "注册渠道",
        "注册时间",
        "Member no",
        "Tier",
        "Points",
        "Status",
        "Channel",
        "Registered at",
    },  # fmt: skip
    required=("mobile",),
)

_GENDER = {
    "男": "male", "m": "male", "male": "male", "女": "female", "f": "female",
    "female": "female", "未知": "unknown", "unknown": "unknown", "保密": "unknown",
}  # fmt: skip
_TRUE = {"是", "y", "yes", "true", "1", "同意"}
_FALSE = {"否", "n", "no", "false", "0", "不同意"}
_SEPARATORS = re.compile(r"[,，、;；\n]")
_CARD = re.compile(r"^[A-Za-z0-9-]{1,32}$")


@dataclass
class ImportOptions:
    mode: ImportMode = "all_or_nothing"
    dry_run: bool = True
    encoding: tabular.Encoding = "auto"
    max_rows: int = 100_000


@dataclass
class Row:
    number: int
    values: dict[str, Any] = field(default_factory=dict)
    ok: bool = True


def _birthday(cell: Cell, today: date) -> date:
    if isinstance(cell, datetime):
        value = cell.date()
    elif isinstance(cell, date):
        value = cell
    else:
        text = cell_text(cell)
        m = re.fullmatch(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?", text) or re.fullmatch(
            r"(\d{4})(\d{2})(\d{2})", text
        )
        if m is None:
            raise ValueError("not_a_date", f"{text!r} is not a date like 1990-05-17")
        try:
            value = date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            raise ValueError("not_a_date", f"{text!r} is not a calendar date") from None
    if value > today:
        raise ValueError(
            "future_birthday",
            f"a birthday cannot be in the future (today is {today.isoformat()})",
        )
    if value.year < 1900:
        raise ValueError("implausible_birthday", "a birthday before 1900 is not plausible")
    return value


def _mobile(cell: Cell) -> str:
    text = cell_text(cell)
    value = normalise_mobile(text)
    if not MOBILE_RE.match(value):
        raise ValueError("bad_mobile", "not a mainland mobile number: 11 digits starting 13-19")
    return str(value)


def _parse(key: str, cell: Cell, today: date) -> Any:
    text = cell_text(cell)
    if key == "mobile":
        return _mobile(cell)
    if key == "name":
        if len(text) > 64:
            raise ValueError("too_long", "is longer than 64 characters")
        return text
    if key == "gender":
        if text.lower() not in _GENDER:
            raise ValueError("bad_gender", f"{text!r} is not 男, 女 or 未知")
        return _GENDER[text.lower()]
    if key == "birthday":
        return _birthday(cell, today)
    if key == "card_no":
        if not _CARD.match(text):
            raise ValueError("bad_card_no", "letters, digits and '-' only, at most 32")
        return text
    if key == "tags":
        names = list(dict.fromkeys(p.strip() for p in _SEPARATORS.split(text) if p.strip()))
        if any(len(n) > 32 for n in names):
            raise ValueError("too_long", "a tag is longer than 32 characters")
        if len(names) > 20:
            raise ValueError("too_many", "at most 20 tags")
        return names
    if key == "marketing_consent":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError("not_yes_no", f"{text!r} is not 是 or 否")
    if key == "home_store":
        return text
    raise AssertionError(key)


def parse_rows(table: Table, mapping: dict[int, str], errors: RowErrors) -> list[Row]:
    today = today_local()
    rows: list[Row] = []
    mobiles: dict[str, int] = {}
    cards: dict[str, int] = {}
    for number, cells in table.rows:
        by_key = COLUMNS.cells(mapping, cells)
        row = Row(number=number)
        if "mobile" not in by_key:
            errors.add(number, "mobile", "required", "the mobile number is empty")
            row.ok = False
        for key, cell in by_key.items():
            if isinstance(cell, str) and (char := control_character(cell)):
                errors.add(number, key, "control_character", f"contains {char!r}", cell)
                row.ok = False
                continue
            try:
                row.values[key] = _parse(key, cell, today)
            except ValueError as exc:
                reason, message = exc.args if len(exc.args) == 2 else ("invalid", str(exc))
                errors.add(number, key, reason, message, cell)
                row.ok = False
        for key, seen in (("mobile", mobiles), ("card_no", cards)):
            value = row.values.get(key)
            if value is None:
                continue
            if value in seen:
                errors.add(number, key, "duplicate_in_file", f"already in row {seen[value]}", value)
                row.ok = False
            else:
                seen[value] = number
        rows.append(row)
    return rows


async def _taken(session: AsyncSession, column: Any, values: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(values), CHUNK):
        found.update(
            (await session.scalars(select(column).where(column.in_(values[i : i + CHUNK])))).all()
        )
    return found


async def resolve(session: AsyncSession, rows: list[Row], errors: RowErrors) -> list[Row]:
    """Check the rows against the database: mobiles and cards already a member's, stores."""
    mobiles = await _taken(session, Member.mobile, [r.values["mobile"] for r in rows
                                                     if "mobile" in r.values])  # fmt: skip
    cards = await _taken(
        session, Member.card_no, [r.values["card_no"] for r in rows if "card_no" in r.values]
    )
    stores: dict[str, int] = {}
    for sid, code in (await session.execute(select(Store.id, Store.code))).all():
        stores[code.lower()] = sid
        stores[str(sid)] = sid
    good: list[Row] = []
    for row in rows:
        if row.values.get("mobile") in mobiles:
            errors.add(row.number, "mobile", "duplicate_existing",
                       "a member already has this mobile number", row.values["mobile"])  # fmt: skip
            row.ok = False
        if row.values.get("card_no") in cards:
            errors.add(row.number, "card_no", "duplicate_existing",
                       "a member already has this card number", row.values["card_no"])  # fmt: skip
            row.ok = False
        store = row.values.pop("home_store", None)
        if store is not None:
            store_id = stores.get(str(store).lower())
            if store_id is None:
                errors.add(row.number, "home_store", "store_not_found",
                           "no store has this code or id", store)  # fmt: skip
                row.ok = False
            row.values["home_store_id"] = store_id
        if row.ok:
            good.append(row)
    return good


_members = cast(SqlTable, Member.__table__)
_audit_logs = cast(SqlTable, AuditLog.__table__)


#: Told how many rows are done, of how many (a job's progress).
Progress = Callable[[int, int], Awaitable[None]]


async def _write(
    session: AsyncSession, rows: list[Row], *, actor: Actor, progress: Progress | None = None
) -> int:
    now = utcnow()
    created = 0
    for i in range(0, len(rows), CHUNK):
        chunk = rows[i : i + CHUNK]
        values: list[dict[str, Any]] = []
        numbers = await profiles.new_member_nos(session, len(chunk))
        for r, no in zip(chunk, numbers, strict=True):
            v = r.values
            values.append(
                {
                    "member_no": no,
                    "name": v.get("name") or None,
                    "mobile": v["mobile"],
                    "gender": v.get("gender", "unknown"),
                    "birthday": v.get("birthday"),
                    "card_no": v.get("card_no"),
                    "home_store_id": v.get("home_store_id"),
                    "tags": v.get("tags", []),
                    "marketing_consent": v.get("marketing_consent", False),
                    "channel": "import",
                    "status": "active",
                    "points_balance": 0,
                    "registered_at": now,
                    "updated_at": now,
                }
            )
        await session.execute(insert(_members), values)
        ids = dict(
            (
                await session.execute(
                    select(Member.member_no, Member.id).where(
                        Member.member_no.in_([v["member_no"] for v in values])
                    )
                )
            ).all()
        )
        changes = [
            audit.Change(
                ids[v["member_no"]],
                changes=audit.created(profiles.snapshot_values(v)),
                label=v["member_no"],
            )
            for v in values
        ]
        entries = audit.entry_rows(actor, "member.create", "member", changes, note="import")
        await session.execute(insert(_audit_logs), entries)
        created += len(chunk)
        if progress is not None:
            await progress(created, len(rows))
    return created


async def import_table(
    session: AsyncSession,
    table: Table,
    options: ImportOptions,
    *,
    actor: Actor,
    filename: str | None = None,
    progress: Progress | None = None,
) -> MemberImportReport:
    """Check every row; unless a dry run, create the members (all or only the good rows),
    telling `progress` after each chunk written."""
    mapping = COLUMNS.map(table.headers)
    errors = RowErrors(COLUMNS, table.headers, mapping)
    parsed = parse_rows(table, mapping, errors)
    good = await resolve(session, parsed, errors)
    total = len(table.rows)
    rejected = bool(errors.bad_rows) and options.mode == "all_or_nothing"
    created = 0
    if options.dry_run:
        status = "rejected" if rejected else "checked"
    else:
        if not rejected and good:
            created = await _write(session, good, actor=actor, progress=progress)
        status = "rejected" if rejected else ("partial" if errors.bad_rows else "imported")
    report = MemberImportReport(
        status=status,
        mode=options.mode,
        dry_run=options.dry_run,
        total_rows=total,
        valid_rows=len(good),
        bad_rows=len(errors.bad_rows),
        created=created,
        skipped=total - created,
        errors=errors.sorted(),
        errors_truncated=errors.truncated,
    )
    # A dry run is audited too: a file of people's mobiles was handed to the system.
    await audit.record(
        session, actor, "member.import_check" if options.dry_run else "member.import",
        "member_import", None,
        after={"file": filename, "status": status, "mode": options.mode, "rows": total,
               "created": created, "bad_rows": len(errors.bad_rows)},
    )  # fmt: skip
    return report


def template(fmt: str) -> bytes:
    headers = list(COLUMNS.labels.values())
    examples = [
        ["张三", "13812345678", "男", "1990-05-17", "C0001", "S001", "vip,夜间", "是"],
        ["李四", "13912345678", "女", "", "", "", "", "否"],
    ]
    if fmt == "csv":
        return tabular.csv_bytes(headers, examples)
    return tabular.xlsx_bytes(headers, examples, title="会员")

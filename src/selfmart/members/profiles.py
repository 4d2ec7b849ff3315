"""Member profiles: add, edit, disable, erase on request; lists with filters and exports that
mask personal data; the audited reveal of a member's whole name and mobile."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, extract, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.errors import ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.iam.permissions import Perm
from selfmart.kit import tabular
from selfmart.kit.pagination import PageParams
from selfmart.kit.time import utcnow
from selfmart.members.exceptions import CardTaken, MemberInactive, MemberNotFound, MobileTaken
from selfmart.members.schemas import (
    MemberCreate,
    MemberPii,
    MemberRead,
    MemberStatusChange,
    MemberUpdate,
    SegmentRules,
)
from selfmart.models import Member, MemberOrder, MemberTier, Store
from selfmart.orders import customers

#: The most rows one export writes.
EXPORT_LIMIT = 50_000


def mask_mobile(mobile: str | None) -> str | None:
    """138****5678: the last four digits stay (members give them to be found)."""
    if not mobile:
        return mobile
    return mobile[:3] + "*" * (len(mobile) - 7) + mobile[-4:] if len(mobile) > 7 else "****"


def mask_name(name: str | None) -> str | None:
    """张** : the family name stays."""
    if not name:
        return name
    return name[0] + "*" * (len(name) - 1) if len(name) > 1 else "*"


@dataclass(frozen=True, slots=True)
class MemberFilters:
    q: str | None = None
    tier_id: int | None = None
    home_store_id: int | None = None
    tag: str | None = None
    status: str | None = None
    birthday_month: int | None = None
    min_points: int | None = None
    registered_from: datetime | None = None
    registered_to: datetime | None = None
    #: net spend over the last 365 days
    min_spend_fen: int | None = None
    max_spend_fen: int | None = None
    #: last paid order on or after / before
    last_visit_from: datetime | None = None
    last_visit_to: datetime | None = None
    #: the members a saved segment picks
    segment_id: int | None = None


def read(member: Member, tier_name: str | None) -> MemberRead:
    """A member as lists and profiles show it: name and mobile always masked (the whole values
    come from the audited reveal)."""
    return MemberRead(
        id=member.id,
        member_no=member.member_no,
        name=mask_name(member.name),
        mobile=mask_mobile(member.mobile),
        masked=True,
        gender=member.gender,
        birthday=member.birthday,
        card_no=member.card_no,
        tier_id=member.tier_id,
        tier_name=tier_name,
        points_balance=member.points_balance,
        home_store_id=member.home_store_id,
        tags=list(member.tags or []),
        status=member.status,
        marketing_consent=member.marketing_consent,
        channel=member.channel,
        registered_at=member.registered_at,
        updated_at=member.updated_at,
        erased_at=member.erased_at,
        merged_into_id=member.merged_into_id,
    )


async def read_one(session: AsyncSession, member: Member) -> MemberRead:
    await session.refresh(member)
    tier = await session.get(MemberTier, member.tier_id) if member.tier_id else None
    return read(member, tier.name if tier else None)


async def get(session: AsyncSession, member_id: int) -> Member:
    member = await session.get(Member, member_id)
    if member is None:
        raise MemberNotFound(field="member_id")
    return member


def snapshot_values(v: Mapping[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of a profile: personal fields masked, so an erase leaves no
    copy of them behind in the log."""
    return {
        "member_no": v["member_no"],
        "name": mask_name(v.get("name")),
        "mobile": mask_mobile(v.get("mobile")),
        "gender": v.get("gender", "unknown"),
        "birthday": "set" if v.get("birthday") else None,
        "card_no": v.get("card_no"),
        "home_store_id": v.get("home_store_id"),
        "tags": list(v.get("tags") or []),
        "status": v.get("status", "active"),
        "marketing_consent": bool(v.get("marketing_consent")),
    }


def _snapshot(member: Member) -> dict[str, Any]:
    return snapshot_values({k: getattr(member, k) for k in _SNAPSHOT_FIELDS})


_SNAPSHOT_FIELDS = (
    "member_no", "name", "mobile", "gender", "birthday", "card_no", "home_store_id", "tags",
    "status", "marketing_consent",
)  # fmt: skip


async def _check_store(session: AsyncSession, store_id: int | None) -> None:
    if store_id is not None and await session.get(Store, store_id) is None:
        raise ValidationFailed("No such store", field="home_store_id")


async def _check_unique(
    session: AsyncSession, *, mobile: str | None, card_no: str | None, member_id: int | None
) -> None:
    """A clear 409 naming the field before the database's unique index would say it."""
    if mobile is not None:
        other = await session.scalar(select(Member.id).where(Member.mobile == mobile))
        if other is not None and other != member_id:
            raise MobileTaken(field="mobile")
    if card_no is not None:
        other = await session.scalar(select(Member.id).where(Member.card_no == card_no))
        if other is not None and other != member_id:
            raise CardTaken(field="card_no")


async def _flush(session: AsyncSession) -> None:
    """Flush, turning a unique clash that raced our check into the same 409."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        text = str(exc.orig).lower()
        if "card_no" in text:
            raise CardTaken(field="card_no") from None
        raise MobileTaken(field="mobile") from None


async def _new_member_no(session: AsyncSession) -> str:
    return (await new_member_nos(session, 1))[0]


async def new_member_nos(session: AsyncSession, n: int) -> list[str]:
    """`n` member numbers no member has yet (checked in one query per attempt)."""
    out: list[str] = []
    while len(out) < n:
        wanted = {f"M{secrets.randbelow(10**10):010d}" for _ in range(n - len(out))} - set(out)
        taken = set(
            await session.scalars(select(Member.member_no).where(Member.member_no.in_(wanted)))
        )
        out += sorted(wanted - taken)
    return out


async def create(session: AsyncSession, body: MemberCreate, *, actor: Actor) -> Member:
    await _check_store(session, body.home_store_id)
    await _check_unique(session, mobile=body.mobile, card_no=body.card_no, member_id=None)
    now = utcnow()
    member = Member(
        member_no=await _new_member_no(session),
        name=body.name,
        mobile=body.mobile,
        gender=body.gender,
        birthday=body.birthday,
        card_no=body.card_no,
        home_store_id=body.home_store_id,
        tags=list(dict.fromkeys(body.tags)),
        marketing_consent=body.marketing_consent,
        channel=body.channel,
        status="active",
        points_balance=0,
        registered_at=now,
        updated_at=now,
    )
    session.add(member)
    await _flush(session)
    await audit.record(
        session, actor, "member.create", "member", member.id,
        store_id=member.home_store_id, after=_snapshot(member), label=member.member_no,
    )  # fmt: skip
    return member


def _usable(member: Member) -> None:
    if member.status == "erased":
        raise MemberInactive("This member was erased", field="member_id")


async def update_profile(
    session: AsyncSession, member: Member, body: MemberUpdate, *, actor: Actor
) -> Member:
    _usable(member)
    changes = body.model_dump(exclude_unset=True)
    if "home_store_id" in changes:
        await _check_store(session, changes["home_store_id"])
    await _check_unique(
        session, mobile=changes.get("mobile"), card_no=changes.get("card_no"), member_id=member.id
    )
    before = _snapshot(member)
    if "tags" in changes:
        changes["tags"] = list(dict.fromkeys(changes["tags"]))
    for key, value in changes.items():
        setattr(member, key, value)
    member.updated_at = utcnow()
    await _flush(session)
    after = _snapshot(member)
    await audit.record(
        session, actor, "member.update", "member", member.id, store_id=member.home_store_id,
        before={k: v for k, v in before.items() if after[k] != v},
        after={k: v for k, v in after.items() if before[k] != v},
        label=member.member_no,
    )  # fmt: skip
    return member


async def set_status(
    session: AsyncSession, member: Member, body: MemberStatusChange, *, actor: Actor
) -> Member:
    _usable(member)
    before = member.status
    member.status = body.status
    member.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session, actor, "member.disable" if body.status == "disabled" else "member.enable",
        "member", member.id, store_id=member.home_store_id,
        before={"status": before}, after={"status": body.status}, note=body.reason,
        label=member.member_no,
    )  # fmt: skip
    return member


async def erase(session: AsyncSession, member: Member, *, reason: str, actor: Actor) -> Member:
    """Erase on request: personal data removed from the profile and from the member's orders
    (which stay, anonymised, with their money and lines), also from the orders a terminal only
    claimed for the member's number; points and history stay, as numbers."""
    _usable(member)
    before = _snapshot(member)
    now = utcnow()
    member.name = None
    member.mobile = None
    member.birthday = None
    member.card_no = None
    member.tags = []
    member.marketing_consent = False
    member.gender = "unknown"
    member.status = "erased"
    member.erased_at = now
    member.updated_at = now
    await session.flush()
    orders = await customers.anonymise_member_orders(
        session, member_id=member.id, member_no=member.member_no
    )
    await audit.record(
        session, actor, "member.erase", "member", member.id, store_id=member.home_store_id,
        before=before, after={"status": "erased", "orders_anonymised": orders}, note=reason,
        label=member.member_no,
    )  # fmt: skip
    return member


async def reveal(session: AsyncSession, member: Member, *, actor: Actor) -> MemberPii:
    """The whole name and mobile, for a holder of member:pii; every reveal is audited."""
    await audit.record(
        session, actor, "member.reveal", "member", member.id, store_id=member.home_store_id,
        after={"fields": ["name", "mobile"]}, label=member.member_no,
    )  # fmt: skip
    return MemberPii(
        id=member.id, member_no=member.member_no, name=member.name, mobile=member.mobile
    )


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def _filtered(session: AsyncSession, f: MemberFilters) -> Select[Member, str]:
    from selfmart.members import segments

    stmt = select(Member, MemberTier.name).outerjoin(MemberTier, MemberTier.id == Member.tier_id)
    dialect = segments.dialect_of(session)
    now = utcnow()
    if f.tag is not None:
        stmt = stmt.where(segments.has_any_tag(dialect, [f.tag]))
    if f.min_spend_fen is not None or f.max_spend_fen is not None:
        if f.min_spend_fen is not None and f.max_spend_fen is not None:
            if f.max_spend_fen < f.min_spend_fen:
                raise ValidationFailed(
                    "max_spend_fen must not be below min_spend_fen", field="max_spend_fen"
                )
        rules = SegmentRules(min_spend_fen=f.min_spend_fen, max_spend_fen=f.max_spend_fen)
        stmt = stmt.where(*segments.conditions(rules, dialect=dialect, now=now))
    if f.last_visit_from is not None or f.last_visit_to is not None:
        last = (
            select(MemberOrder.member_id)
            .where(MemberOrder.net_fen > 0)
            .group_by(MemberOrder.member_id)
        )
        if f.last_visit_from is not None:
            last = last.having(func.max(MemberOrder.paid_at) >= f.last_visit_from)
        if f.last_visit_to is not None:
            last = last.having(func.max(MemberOrder.paid_at) < f.last_visit_to)
        stmt = stmt.where(Member.id.in_(last))
    if f.segment_id is not None:
        rules = segments.rules_of(await segments.get(session, f.segment_id))
        stmt = stmt.where(Member.id.in_(segments.member_ids(rules, dialect=dialect, now=now)))
    if f.q:
        q = f.q.strip()
        conds = [Member.member_no == q, Member.card_no == q]
        if q.isdigit() and len(q) == 11:
            conds.append(Member.mobile == q)
        elif q.isdigit() and len(q) == 4:
            conds.append(Member.mobile.like(f"%{q}"))
        if not q.isdigit():
            conds.append(Member.name.like(_like(q), escape="\\"))
        stmt = stmt.where(or_(*conds))
    if f.tier_id is not None:
        stmt = stmt.where(Member.tier_id == f.tier_id)
    if f.home_store_id is not None:
        stmt = stmt.where(Member.home_store_id == f.home_store_id)
    if f.status is not None:
        stmt = stmt.where(Member.status == f.status)
    if f.birthday_month is not None:
        stmt = stmt.where(extract("month", Member.birthday) == f.birthday_month)
    if f.min_points is not None:
        stmt = stmt.where(Member.points_balance >= f.min_points)
    if f.registered_from is not None:
        stmt = stmt.where(Member.registered_at >= f.registered_from)
    if f.registered_to is not None:
        stmt = stmt.where(Member.registered_at < f.registered_to)
    return stmt


async def list_members(
    session: AsyncSession, f: MemberFilters, params: PageParams
) -> tuple[list[MemberRead], int]:
    stmt = (await _filtered(session, f)).order_by(Member.id.desc())
    total = int(
        await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    )
    rows = list((await session.execute(stmt.limit(params.size).offset(params.offset))).all())
    return [read(m, t) for m, t in rows], total


EXPORT_HEADERS = {
    "zh": ["会员号", "姓名", "手机号", "性别", "生日", "会员卡号", "等级", "积分", "门店ID",
           "标签", "状态", "营销同意", "注册渠道", "注册时间"],
    "en": ["Member no", "Name", "Mobile", "Gender", "Birthday", "Card no", "Tier", "Points",
           "Home store ID", "Tags", "Status", "Marketing consent", "Channel", "Registered at"],
}  # fmt: skip


async def export(
    session: AsyncSession,
    f: MemberFilters,
    *,
    fmt: str,
    lang: str,
    zone: str,
    actor: Actor,
    encoding: str = "utf-8",
) -> bytes:
    """The filtered members as xlsx or csv (UTF-8 or GBK). Names and mobiles are whole only
    for a holder of member:pii, and such an export is audited as a reveal of every row it
    holds."""
    from zoneinfo import ZoneInfo

    pii = actor.can(Perm.MEMBER_PII)
    stmt = (await _filtered(session, f)).order_by(Member.id).limit(EXPORT_LIMIT)
    rows = [(r[0], r[1]) for r in (await session.execute(stmt)).all()]
    tz = ZoneInfo(zone)

    def cells(m: Member, tier: str | None) -> list[Any]:
        birthday: date | None = m.birthday
        return [
            m.member_no,
            (m.name if pii else mask_name(m.name)) or "",
            (m.mobile if pii else mask_mobile(m.mobile)) or "",
            m.gender,
            birthday.isoformat() if birthday else "",
            m.card_no or "",
            tier or "",
            m.points_balance,
            m.home_store_id,
            ",".join(m.tags or []),
            m.status,
            "Y" if m.marketing_consent else "N",
            m.channel,
            m.registered_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
        ]

    headers = EXPORT_HEADERS["zh" if lang.startswith("zh") else "en"]
    data = [cells(m, t) for m, t in rows]
    if pii:
        await audit.record(
            session, actor, "member.export", "member", None,
            after={"rows": len(data), "pii": True, "format": fmt}, label="members export",
        )  # fmt: skip
    if fmt == "csv":
        return tabular.csv_bytes(headers, data, encoding)
    return tabular.xlsx_bytes(headers, data, title="members")

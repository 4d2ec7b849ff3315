"""Coupons: templates (an amount off, or a percentage off with a cap; a minimum spend; a
validity), coupons given to one member, to a segment or a tier (a job with progress), and
birthday coupons at the start of the birthday month (nightly, idempotent); redeemed once
within validity, released again when the order is refunded or cancelled.

Redeeming is one conditional UPDATE (`WHERE status = 'issued'`), so of two terminals that
redeem the same coupon at once exactly one wins. Both redeem and release take the member's
row lock first — the lock every points change and a merge take first — so a coupon, the
member's points and a merge are always locked in the same order.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.errors import ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.kit.time import utcnow
from selfmart.members import points, profiles
from selfmart.members import segments as segs
from selfmart.members.exceptions import (
    CouponExpired,
    CouponMinSpend,
    CouponNotFound,
    CouponNotYetValid,
    CouponTemplateInactive,
    CouponTemplateNotFound,
    CouponUsed,
    CouponVoid,
    MemberInactive,
    TierNotFound,
)
from selfmart.members.schemas import CouponIssueBody, CouponRead, CouponTemplateBody
from selfmart.models import CouponIssue, CouponTemplate, Member, MemberCoupon, MemberTier, Order
from selfmart.orders.pricing import PricedOrder, spread

_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read out at a till
CHUNK = 500
Progress = Callable[[int, int], Awaitable[None]]


def new_code() -> str:
    return "CP" + "".join(secrets.choice(_ALPHABET) for _ in range(10))


def discount(coupon: MemberCoupon, order_amount_fen: int) -> int:
    """What the coupon takes off an order of `order_amount_fen`: never more than the order,
    a percentage rounded down to the fen and capped."""
    if coupon.kind == "amount":
        off = coupon.amount_off_fen
    else:
        off = order_amount_fen * coupon.percent_off_bp // 10_000
        if coupon.max_off_fen is not None:
            off = min(off, coupon.max_off_fen)
    return max(0, min(off, order_amount_fen))


def state(coupon: MemberCoupon, now: datetime | None = None) -> str:
    if coupon.status == "issued" and coupon.valid_to <= (now or utcnow()):
        return "expired"
    return coupon.status


def read(coupon: MemberCoupon, now: datetime | None = None) -> CouponRead:
    return CouponRead(
        id=coupon.id, code=coupon.code, template_id=coupon.template_id,
        member_id=coupon.member_id, name=coupon.name, kind=coupon.kind,
        amount_off_fen=coupon.amount_off_fen, percent_off_bp=coupon.percent_off_bp,
        max_off_fen=coupon.max_off_fen, min_spend_fen=coupon.min_spend_fen,
        valid_from=coupon.valid_from, valid_to=coupon.valid_to, state=state(coupon, now),
        source=coupon.source, issued_at=coupon.issued_at, order_id=coupon.order_id,
        discount_fen=coupon.discount_fen, redeemed_at=coupon.redeemed_at,
    )  # fmt: skip


# --- templates ---


async def get_template(session: AsyncSession, template_id: int) -> CouponTemplate:
    found = await session.get(CouponTemplate, template_id)
    if found is None:
        raise CouponTemplateNotFound(field="template_id")
    return found


async def templates(session: AsyncSession) -> list[CouponTemplate]:
    rows = await session.scalars(
        select(CouponTemplate).order_by(CouponTemplate.is_active.desc(), CouponTemplate.id.desc())
    )
    return list(rows.all())


async def _check_tier(session: AsyncSession, tier_id: int | None) -> None:
    if tier_id is not None and await session.get(MemberTier, tier_id) is None:
        raise TierNotFound(field="birthday_tier_id")


_TEMPLATE_FIELDS = (
    "name", "kind", "amount_off_fen", "percent_off_bp", "max_off_fen", "min_spend_fen",
    "valid_days", "valid_from", "valid_to", "birthday", "birthday_tier_id", "is_active",
)  # fmt: skip


async def create_template(
    session: AsyncSession, body: CouponTemplateBody, *, actor: Actor
) -> CouponTemplate:
    await _check_tier(session, body.birthday_tier_id)
    now = utcnow()
    template = CouponTemplate(**body.model_dump(), created_at=now, updated_at=now)
    _normalise(template)
    session.add(template)
    await session.flush()
    await audit.record(
        session, actor, "coupon_template.create", "coupon_template", template.id,
        after=audit.snapshot(template, _TEMPLATE_FIELDS), label=template.name,
    )  # fmt: skip
    return template


def _normalise(template: CouponTemplate) -> None:
    # Only the value of the template's kind is kept, so the CHECK reads one way.
    if template.kind == "amount":
        template.percent_off_bp = 0
        template.max_off_fen = None
    else:
        template.amount_off_fen = 0


async def update_template(
    session: AsyncSession, template: CouponTemplate, body: CouponTemplateBody, *, actor: Actor
) -> CouponTemplate:
    """New terms apply to coupons issued from now on; coupons held keep theirs."""
    await _check_tier(session, body.birthday_tier_id)
    before = audit.snapshot(template, _TEMPLATE_FIELDS)
    for key, value in body.model_dump().items():
        setattr(template, key, value)
    _normalise(template)
    template.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session, actor, "coupon_template.update", "coupon_template", template.id,
        before=before, after=audit.snapshot(template, _TEMPLATE_FIELDS), label=template.name,
    )  # fmt: skip
    return template


# --- issuing ---


def _validity(template: CouponTemplate, now: datetime) -> tuple[datetime, datetime]:
    if template.valid_days is not None:
        return now, now + timedelta(days=template.valid_days)
    assert template.valid_from is not None
    assert template.valid_to is not None
    return template.valid_from, template.valid_to


def _values(
    template: CouponTemplate,
    member_id: int,
    *,
    source: str,
    now: datetime,
    issue_key: str | None = None,
    issue_id: int | None = None,
) -> dict[str, object]:
    valid_from, valid_to = _validity(template, now)
    return {
        "code": new_code(), "template_id": template.id, "member_id": member_id,
        "name": template.name, "kind": template.kind, "amount_off_fen": template.amount_off_fen,
        "percent_off_bp": template.percent_off_bp, "max_off_fen": template.max_off_fen,
        "min_spend_fen": template.min_spend_fen, "valid_from": valid_from,
        "valid_to": valid_to, "status": "issued", "source": source, "issue_key": issue_key,
        "issue_id": issue_id, "issued_at": now,
    }  # fmt: skip


async def give(
    session: AsyncSession, member: Member, template: CouponTemplate, *, actor: Actor
) -> MemberCoupon:
    """One coupon to one member, by an operator."""
    if member.status != "active":
        raise MemberInactive(field="member_id")
    if not template.is_active:
        raise CouponTemplateInactive(field="template_id")
    coupon = MemberCoupon(**_values(template, member.id, source="manual", now=utcnow()))
    session.add(coupon)
    await session.flush()
    await audit.record(
        session, actor, "member.coupon_issue", "member", member.id,
        after={"coupon": coupon.code, "template_id": template.id}, label=member.member_no,
    )  # fmt: skip
    return coupon


async def _issue_many(
    session: AsyncSession,
    template: CouponTemplate,
    member_ids: list[int],
    *,
    source: str,
    issue_key: str,
    issue_id: int | None,
    now: datetime,
) -> int:
    """Coupons for those of `member_ids` that have none under `issue_key` yet."""
    if not member_ids:
        return 0
    have = set(
        (
            await session.scalars(
                select(MemberCoupon.member_id).where(
                    MemberCoupon.issue_key == issue_key, MemberCoupon.member_id.in_(member_ids)
                )
            )
        ).all()
    )
    rows = [
        _values(template, m, source=source, now=now, issue_key=issue_key, issue_id=issue_id)
        for m in member_ids
        if m not in have
    ]
    if rows:
        await session.execute(insert(MemberCoupon), rows)
    return len(rows)


async def start_issue(session: AsyncSession, body: CouponIssueBody, *, actor: Actor) -> CouponIssue:
    """Record an issue run and queue its job (it starts after commit)."""
    from selfmart.jobs import service as jobs
    from selfmart.members.tasks import ISSUE_JOB

    template = await get_template(session, body.template_id)
    if not template.is_active:
        raise CouponTemplateInactive(field="template_id")
    if body.target == "segment":
        name = (await segs.get(session, body.target_id)).name
    else:
        tier = await session.get(MemberTier, body.target_id)
        if tier is None:
            raise TierNotFound(field="target_id")
        name = tier.name
    run = CouponIssue(
        template_id=template.id, target=body.target, target_id=body.target_id,
        target_name=name, status="queued", issued=0, created_by=actor.name,
        created_at=utcnow(),
    )  # fmt: skip
    session.add(run)
    await session.flush()
    job = await jobs.start_job(
        session, kind=ISSUE_JOB, created_by=actor, params={"issue_id": run.id}
    )
    run.job_id = job.id
    await session.flush()
    await audit.record(
        session, actor, "coupon.issue_start", "coupon_issue", run.id,
        after={"template_id": template.id, "target": body.target, "target_id": body.target_id,
               "target_name": name, "job_id": job.id},
        label=f"{template.name} → {name}",
    )  # fmt: skip
    return run


async def target_ids(
    session: AsyncSession, run: CouponIssue, *, after_id: int, limit: int
) -> list[int]:
    """The next `limit` active members of the run's target after `after_id`."""
    stmt: Select[int]
    if run.target == "segment":
        rules = segs.rules_of(await segs.get(session, run.target_id))
        stmt = segs.member_ids(rules, dialect=segs.dialect_of(session), now=utcnow())
    else:
        stmt = (
            select(Member.id)
            .where(Member.status == "active", Member.tier_id == run.target_id)
            .order_by(Member.id)
        )
    rows = await session.scalars(stmt.where(Member.id > after_id).limit(limit))
    return [int(i) for i in rows.all()]


async def issue_chunk(session: AsyncSession, run: CouponIssue, member_ids: list[int]) -> int:
    """Issue the run's coupon to one chunk of members (idempotent: the run's issue key)."""
    template = await get_template(session, run.template_id)
    n = await _issue_many(
        session, template, member_ids, source=run.target, issue_key=f"issue:{run.id}",
        issue_id=run.id, now=utcnow(),
    )  # fmt: skip
    await session.execute(
        update(CouponIssue).where(CouponIssue.id == run.id).values(issued=CouponIssue.issued + n)
    )
    return n


async def issue_birthday(
    session: AsyncSession, *, zone: str, actor: Actor, now: datetime | None = None
) -> int:
    """Birthday coupons for every active member whose birthday month it is (in the chain's
    zone), from every active birthday template: one per template per member per year, so
    every night of the month may run it and it issues each coupon once."""
    from zoneinfo import ZoneInfo

    now = now or utcnow()
    today = now.astimezone(ZoneInfo(zone)).date()
    issued = 0
    for template in await templates(session):
        if not (template.birthday and template.is_active):
            continue
        key = f"birthday:{template.id}:{today.year}"
        stmt = select(Member.id).where(
            Member.status == "active",
            Member.birthday.is_not(None),
            func.extract("month", Member.birthday) == today.month,
        )
        if template.birthday_tier_id is not None:
            stmt = stmt.where(Member.tier_id == template.birthday_tier_id)
        ids = [int(i) for i in (await session.scalars(stmt.order_by(Member.id))).all()]
        for i in range(0, len(ids), CHUNK):
            issued += await _issue_many(
                session, template, ids[i : i + CHUNK], source="birthday", issue_key=key,
                issue_id=None, now=now,
            )  # fmt: skip
    if issued:
        await audit.record(
            session, actor, "coupon.birthday_issue", "coupon_issue", None,
            after={"issued": issued, "month": today.strftime("%Y-%m")},
        )  # fmt: skip
    return issued


# --- a member's coupons ---


async def member_coupons(
    session: AsyncSession, member_id: int, *, usable_only: bool = False
) -> list[MemberCoupon]:
    stmt = select(MemberCoupon).where(MemberCoupon.member_id == member_id)
    if usable_only:
        now = utcnow()
        stmt = stmt.where(
            MemberCoupon.status == "issued",
            MemberCoupon.valid_from <= now,
            MemberCoupon.valid_to > now,
        )
    return list((await session.scalars(stmt.order_by(MemberCoupon.id.desc()))).all())


async def void(
    session: AsyncSession, coupon_id: int, *, member_id: int, reason: str, actor: Actor
) -> MemberCoupon:
    await points.lock(session, member_id)
    coupon = await _find(session, member_id=member_id, coupon_id=coupon_id, coupon_code=None)
    done = await session.scalar(
        update(MemberCoupon)
        .where(MemberCoupon.id == coupon.id, MemberCoupon.status == "issued")
        .values(status="void")
        .returning(MemberCoupon.id)
        .execution_options(synchronize_session=False)
    )
    if done is None:
        raise CouponUsed(field="coupon_id")
    await session.refresh(coupon)
    member = await profiles.get(session, member_id)
    await audit.record(
        session, actor, "member.coupon_void", "member", member_id,
        before={"coupon": coupon.code, "status": "issued"}, after={"status": "void"},
        note=reason, label=member.member_no,
    )  # fmt: skip
    return coupon


async def _find(
    session: AsyncSession, *, member_id: int, coupon_id: int | None, coupon_code: str | None
) -> MemberCoupon:
    if (coupon_id is None) == (coupon_code is None):
        raise ValidationFailed("Give the coupon's id or its code", field="coupon_code")
    stmt = select(MemberCoupon).where(MemberCoupon.member_id == member_id)
    if coupon_id is not None:
        stmt = stmt.where(MemberCoupon.id == coupon_id)
    else:
        stmt = stmt.where(MemberCoupon.code == (coupon_code or "").strip().upper())
    found = await session.scalar(stmt.execution_options(populate_existing=True))
    if found is None:
        raise CouponNotFound(field="coupon_id" if coupon_id is not None else "coupon_code")
    return found


# --- redeeming (the terminal's order calls these) ---


@dataclass(frozen=True, slots=True)
class Redemption:
    coupon_id: int
    code: str
    discount_fen: int


def _check_usable(
    coupon: MemberCoupon, order_amount_fen: int, *, field: str, min_field: str, now: datetime
) -> None:
    """409 with the coupon's own code when it cannot pay for an order of `order_amount_fen`."""
    if coupon.status == "redeemed":
        raise CouponUsed(field=field)
    if coupon.status == "void":
        raise CouponVoid(field=field)
    if now < coupon.valid_from:
        raise CouponNotYetValid(field=field)
    if now >= coupon.valid_to:
        raise CouponExpired(field=field)
    if order_amount_fen < coupon.min_spend_fen:
        raise CouponMinSpend(
            f"The coupon needs an order of at least {coupon.min_spend_fen} fen",
            field=min_field,
            min_spend_fen=coupon.min_spend_fen,
        )


async def redeem_coupon(
    session: AsyncSession,
    *,
    member_id: int,
    order_id: int,
    order_amount_fen: int,
    actor: Actor,
    coupon_id: int | None = None,
    coupon_code: str | None = None,
    cap_fen: int | None = None,
    store_id: int | None = None,
) -> Redemption:
    """Redeem the member's coupon on an order of `order_amount_fen` (what the coupon applies
    to, after member prices), taking off at most `cap_fen` when given. Raises a 409 with its
    own code when the coupon was used, voided, has expired, is not valid yet, or the order is
    below its minimum spend; a 404 when the member holds no such coupon. Redeeming again for
    the same order returns the first redemption (a terminal's retry), so the caller may call
    it twice."""
    if order_amount_fen < 0:
        raise ValidationFailed("The order amount cannot be negative", field="order_amount_fen")
    await points.lock(session, member_id)
    coupon = await _find(session, member_id=member_id, coupon_id=coupon_id, coupon_code=coupon_code)
    field = "coupon_id" if coupon_id is not None else "coupon_code"
    if coupon.status == "redeemed" and coupon.order_id == order_id:
        if coupon.discount_fen is not None:
            return Redemption(coupon.id, coupon.code, coupon.discount_fen)
    now = utcnow()
    min_field = "order_amount_fen" if coupon_id is not None else "coupon_code"
    _check_usable(coupon, order_amount_fen, field=field, min_field=min_field, now=now)
    off = discount(coupon, order_amount_fen)
    if cap_fen is not None:
        off = max(0, min(off, cap_fen))
    won = await session.scalar(
        update(MemberCoupon)
        .where(
            MemberCoupon.id == coupon.id,
            MemberCoupon.status == "issued",
            MemberCoupon.valid_to > now,
        )
        .values(status="redeemed", order_id=order_id, discount_fen=off, redeemed_at=now)
        .returning(MemberCoupon.id)
        .execution_options(synchronize_session=False)
    )
    if won is None:  # another terminal redeemed it between our read and our update
        raise CouponUsed(field=field)
    await audit.record(
        session, actor, "member.coupon_redeem", "member", member_id, store_id=store_id,
        after={"coupon": coupon.code, "order_id": order_id, "discount_fen": off},
    )  # fmt: skip
    return Redemption(coupon.id, coupon.code, off)


def order_cap(total_fen: int) -> int:
    """The most a coupon takes off an order of `total_fen`: all but one fen (an order of 0
    would never go through payment), as for points."""
    return max(0, total_fen - 1)


async def plan_for_order(
    session: AsyncSession, member_id: int, code: str, priced: PricedOrder
) -> Redemption:
    """The member's coupon `code` on the order `priced` (after member prices and the tier's
    discount): checked, nothing written, and its value spread over the lines as discounts
    (`pricing.spread`, so a refund of some lines gives back what they cost after it). 404 when
    the member holds no such coupon (another member's is not theirs), 409 naming `coupon_code`
    when it is used, void, expired, not valid yet, below its minimum spend or worth nothing
    on this order. The order's intake redeems it after inserting the order (`redeem_coupon`),
    where of two terminals only one wins."""
    coupon = await _find(session, member_id=member_id, coupon_id=None, coupon_code=code)
    total = priced.total_fen
    _check_usable(coupon, total, field="coupon_code", min_field="coupon_code", now=utcnow())
    off = min(discount(coupon, total), order_cap(total))
    if off <= 0:
        raise CouponMinSpend(
            "The coupon takes nothing off this order", field="coupon_code",
            min_spend_fen=coupon.min_spend_fen,
        )  # fmt: skip
    shares = spread([ln.amount_fen for ln in priced.lines], off)
    for ln, share in zip(priced.lines, shares, strict=True):
        ln.coupon_fen = share
        ln.discount_fen += share
    return Redemption(coupon.id, coupon.code, off)


async def settle_order(session: AsyncSession, order: Order, *, actor: Actor) -> bool:
    """Give back the coupon `order` redeemed when the order ended unpaid (closed or
    cancelled) or all the money paid for it was refunded (goods returned or money only); a
    partial refund keeps it used (its discount stays spread over the lines kept).
    Idempotent: True only when it was given back now."""
    from selfmart.members.service import COUNTED, net_spend

    if order.coupon_code is None:
        return False
    ended = order.status in ("closed", "cancelled")
    refunded = order.status in COUNTED and order.paid_fen > 0 and net_spend(order) == 0
    if not (ended or refunded):
        return False
    coupon = await session.scalar(
        select(MemberCoupon).where(
            MemberCoupon.order_id == order.id, MemberCoupon.status == "redeemed"
        )
    )
    if coupon is None:
        return False
    return await release_coupon(
        session, member_id=coupon.member_id, order_id=order.id, coupon_id=coupon.id,
        actor=actor,
    )  # fmt: skip


async def release_coupon(
    session: AsyncSession,
    *,
    member_id: int,
    order_id: int,
    actor: Actor,
    coupon_id: int | None = None,
    coupon_code: str | None = None,
) -> bool:
    """Give a coupon back after its order was refunded or cancelled: usable again (within
    its validity). False when it was not redeemed (released already: a second call changes
    nothing); a 409 when it was redeemed by another order."""
    await points.lock(session, member_id)
    coupon = await _find(session, member_id=member_id, coupon_id=coupon_id, coupon_code=coupon_code)
    if coupon.status != "redeemed":
        return False
    if coupon.order_id != order_id:
        raise CouponUsed("The coupon was redeemed by another order", field="order_id")
    await session.execute(
        update(MemberCoupon)
        .where(MemberCoupon.id == coupon.id, MemberCoupon.status == "redeemed")
        .values(status="issued", order_id=None, discount_fen=None, redeemed_at=None)
        .execution_options(synchronize_session=False)
    )
    await audit.record(
        session, actor, "member.coupon_release", "member", member_id,
        before={"coupon": coupon.code, "order_id": order_id}, after={"status": "issued"},
    )  # fmt: skip
    return True

"""Store settlement and the platform fee report: per store and day (or month), the money the
platforms took, gave back, charged and paid out.

Where a day's bill has been reconciled its lines are the truth (what the platform actually
settled); our payments and refunds that no reconciled bill holds (manual payments, days not
reconciled yet, money a bill missed) are counted from our own records, marked `ours`, with
fees estimated at the account's configured rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.errors import ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.payments import records as payments
from selfmart.reconciliation import fees as fee_rates
from selfmart.reconciliation import settled
from selfmart.stores import service as stores

Group = Literal["day", "month"]
#: the longest range one report covers
MAX_DAYS = 400


@dataclass
class Row:
    store_id: int | None
    period: str
    channel: str
    #: bill: from reconciled bill lines; ours: from our records, not (yet) in a reconciled bill
    source: str
    store_name: str = ""
    lines: int = 0
    sales_fen: int = 0
    refunds_fen: int = 0
    fees_fen: int = 0
    #: some fee in the row is our estimate (no bill yet), or unknown (no rate configured)
    fees_estimated: bool = False

    @property
    def net_fen(self) -> int:
        return self.sales_fen - self.refunds_fen - self.fees_fen

    def as_dict(self) -> dict[str, Any]:
        return {
            "store_id": self.store_id,
            "store_name": self.store_name,
            "period": self.period,
            "channel": self.channel,
            "source": self.source,
            "lines": self.lines,
            "sales_fen": self.sales_fen,
            "refunds_fen": self.refunds_fen,
            "fees_fen": self.fees_fen,
            "net_fen": self.net_fen,
            "fees_estimated": self.fees_estimated,
        }


@dataclass
class Report:
    rows: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)


def check_range(date_from: date, date_to: date) -> None:
    if date_to < date_from:
        raise ValidationFailed("The range ends before it starts", field="date_to")
    if (date_to - date_from).days + 1 > MAX_DAYS:
        raise ValidationFailed(f"A report covers at most {MAX_DAYS} days", field="date_to")


def _scope(actor: Actor, store_id: int | None) -> list[int] | None:
    if store_id is None:
        return None if actor.store_ids is None else sorted(actor.store_ids)
    if actor.store_ids is not None and store_id not in actor.store_ids:
        return []
    return [store_id]


def _period(day: date, group: Group) -> str:
    return day.isoformat() if group == "day" else f"{day:%Y-%m}"


async def store_settlement(
    session: AsyncSession,
    *,
    actor: Actor,
    date_from: date,
    date_to: date,
    store_id: int | None = None,
    group: Group = "day",
) -> Report:
    check_range(date_from, date_to)
    scope = _scope(actor, store_id)
    if scope == []:
        return Report(totals=_totals([]))
    rows: dict[tuple[int | None, str, str, str], Row] = {}

    def row(store: int | None, day: date, channel: str, source: str) -> Row:
        key = (store, _period(day, group), channel, source)
        if key not in rows:
            rows[key] = Row(store, key[1], channel, source)
        return rows[key]

    for b in await settled.billed_sums(
        session, date_from=date_from, date_to=date_to, store_ids=scope
    ):
        if b.store_id is None and actor.store_ids is not None:
            continue  # money no store is known for: only for those who see every store
        r = row(b.store_id, b.bill_date, b.channel, "bill")
        r.lines += b.lines
        if b.kind == "refund":
            r.refunds_fen += b.amount_fen
        else:
            r.sales_fen += b.amount_fen
        r.fees_fen += b.fee_fen

    # Our records that no reconciled bill holds, each on its store's local day, summed in SQL
    # with fees estimated at the configured rates.
    rates = {r.account_id: r.rate_bp for r in await fee_rates.list_all(session)}
    paid, refunded = await payments.captured_by_store_day(
        session,
        date_from=date_from,
        date_to=date_to,
        store_ids=scope,
        rates=rates,
        skip_payments=settled.billed_payment_ids(),
        skip_refunds=settled.billed_refund_ids(),
    )
    for sign, sums in ((1, paid), (-1, refunded)):
        for c in sums:
            r = row(c.store_id, c.day, c.channel, "ours")
            r.lines += c.lines
            if sign > 0:
                r.sales_fen += c.amount_fen
            else:
                r.refunds_fen += c.amount_fen
            if c.platform_lines:  # manual (cash, transfer): no platform, no fee
                r.fees_estimated = True
                r.fees_fen += sign * c.fee_fen

    names = await stores.names(session, [k[0] for k in rows if k[0] is not None])
    out = sorted(
        rows.values(), key=lambda r: (r.period, names.get(r.store_id or 0, ""), r.channel, r.source)
    )
    for r in out:
        r.store_name = names.get(r.store_id, "") if r.store_id is not None else ""
    return Report(rows=[r.as_dict() for r in out], totals=_totals(out))


def _totals(rows: list[Row]) -> dict[str, int]:
    return {
        "lines": sum(r.lines for r in rows),
        "sales_fen": sum(r.sales_fen for r in rows),
        "refunds_fen": sum(r.refunds_fen for r in rows),
        "fees_fen": sum(r.fees_fen for r in rows),
        "net_fen": sum(r.net_fen for r in rows),
    }


async def fee_report(
    session: AsyncSession,
    *,
    actor: Actor,
    date_from: date,
    date_to: date,
    store_id: int | None = None,
    channel: str | None = None,
    flagged_only: bool = False,
) -> list[dict[str, Any]]:
    """Per bill day, channel, store and merchant account: the fees the platform charged in
    its bill beside what the configured rate gives, and the difference (flagged when not
    zero, when a line's fee differs, or when no rate is configured to check against)."""
    check_range(date_from, date_to)
    scope = _scope(actor, store_id)
    if scope == []:
        return []
    groups: dict[tuple[date, str, int, int | None], dict[str, Any]] = {}
    for b in await settled.billed_sums(
        session, date_from=date_from, date_to=date_to, store_ids=scope
    ):
        if channel is not None and b.channel != channel:
            continue
        if b.store_id is None and actor.store_ids is not None:
            continue
        g = groups.setdefault(
            (b.bill_date, b.channel, b.account_id, b.store_id),
            {
                "bill_date": b.bill_date,
                "channel": b.channel,
                "account_id": b.account_id,
                "store_id": b.store_id,
                "lines": 0,
                "sales_fen": 0,
                "refunds_fen": 0,
                "fee_fen": 0,
                "expected_fee_fen": 0,
                "lines_without_rate": 0,
                "fee_differs": 0,
            },
        )
        g["lines"] += b.lines
        g["sales_fen" if b.kind == "payment" else "refunds_fen"] += b.amount_fen
        g["fee_fen"] += b.fee_fen
        g["expected_fee_fen"] += b.expected_fee_fen
        g["lines_without_rate"] += b.lines_without_rate
        g["fee_differs"] += b.fee_differs
    rates = {
        r.account_id: r.rate_bp
        for r in await fee_rates.list_rates(session, sorted({k[2] for k in groups}))
    }
    names = await stores.names(session, [k[3] for k in groups if k[3] is not None])
    out = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[3] or 0, k[2]), reverse=True):
        g = groups[key]
        g["store_name"] = names.get(g["store_id"], "") if g["store_id"] is not None else ""
        g["rate_bp"] = rates.get(g["account_id"])
        g["difference_fen"] = g["fee_fen"] - g["expected_fee_fen"]
        g["flagged"] = bool(g["difference_fen"] != 0 or g["fee_differs"] or g["lines_without_rate"])
        if flagged_only and not g["flagged"]:
            continue
        out.append(g)
    return out

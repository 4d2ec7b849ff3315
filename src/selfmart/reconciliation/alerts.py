"""Telling people about reconciliation differences nobody has worked a day after they were
found: one message per merchant account, in-app and by email to whoever may resolve them,
each difference told about once (a rerun keeps that it was)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.permissions import Perm
from selfmart.kit.money import fen_to_yuan
from selfmart.kit.time import utcnow
from selfmart.models import (
    PaymentAccount,
    ReconciliationItem,
    ReconciliationRun,
    Role,
    RolePermission,
    User,
    UserRole,
    UserStore,
)
from selfmart.notify.texts import MessageText, Phrase
from selfmart.reconciliation.bills import BEIJING

KIND = "reconciliation.unresolved"
CHANNELS = ("in_app", "email")
#: how many differences one message lists before "and N more"
LIST_MAX = 20
CLASS_ZH = {
    "ours_only": "我方有平台无",
    "platform_only": "平台有我方无",
    "amount_differs": "金额不符",
    "status_differs": "状态不符",
    "refund_differs": "退款不符",
    "fee_differs": "手续费不符",
    "duplicate_line": "账单行重复",
}
CHANNEL_ZH = {"wechat": "微信支付", "alipay": "支付宝", "card": "银联"}


async def _resolvers(session: AsyncSession, account: PaymentAccount) -> list[int]:
    """Active users who may resolve the account's differences: through a role covering every
    store, or (a store's own account) an assignment to its store."""
    may = select(RolePermission.role_id).where(
        RolePermission.permission == str(Perm.RECONCILIATION_RESOLVE)
    )
    stmt = (
        select(User.id)
        .join(UserRole, UserRole.user_id == User.id)
        .join(Role, Role.id == UserRole.role_id)
        .where(User.is_active.is_(True), Role.id.in_(may))
    )
    if account.store_id is None:
        stmt = stmt.where(Role.all_stores.is_(True))
    else:
        assigned = select(UserStore.user_id).where(UserStore.store_id == account.store_id)
        stmt = stmt.where(or_(Role.all_stores.is_(True), User.id.in_(assigned)))
    return sorted({int(x) for x in (await session.scalars(stmt.distinct())).all()})


def _line(item: ReconciliationItem, run: ReconciliationRun) -> tuple[str, Phrase]:
    number = item.out_trade_no or item.transaction_id or item.out_refund_no or f"#{item.id}"
    amount = item.bill_amount_fen if item.bill_amount_fen is not None else item.our_amount_fen
    yuan = "" if amount is None else fen_to_yuan(amount)
    zh = f"{run.bill_date.isoformat()} {CLASS_ZH.get(item.difference, item.difference)} {number}"
    params = {"date": run.bill_date.isoformat(), "number": number, "amount": yuan or "—"}
    return (f"{zh} ¥{yuan}" if yuan else zh), Phrase(f"reconciliation.{item.difference}", params)


async def alert_unresolved(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Alert the differences still open from bill days more than a day before today (Beijing)
    and not alerted yet; returns how many differences were alerted."""
    from selfmart.notify import service as notify

    now = now or utcnow()
    before = now.astimezone(BEIJING).date() - timedelta(days=1)
    rows = (
        await session.execute(
            select(ReconciliationItem, ReconciliationRun)
            .join(ReconciliationRun, ReconciliationRun.id == ReconciliationItem.run_id)
            .where(
                ReconciliationItem.state == "open",
                ReconciliationItem.alerted_at.is_(None),
                ReconciliationRun.bill_date < before,
            )
            .order_by(
                ReconciliationRun.account_id, ReconciliationRun.bill_date, ReconciliationItem.id
            )
            .with_for_update(of=ReconciliationItem, skip_locked=True)
        )
    ).all()
    by_account: dict[int, list[tuple[ReconciliationItem, ReconciliationRun]]] = defaultdict(list)
    for item, run in rows:
        by_account[run.account_id].append((item, run))
    told = 0
    for account_id, found in by_account.items():
        account = await session.get_one(PaymentAccount, account_id)
        channel = CHANNEL_ZH.get(account.channel, account.channel)
        name = account.name or account.merchant_id
        lines = [_line(i, r) for i, r in found]
        more = max(len(lines) - LIST_MAX, 0)
        body = "\n".join(text for text, _ in lines[:LIST_MAX])
        if more:
            body += f"\n……另有 {more} 条"
        oldest = found[0][1].bill_date.isoformat()
        await notify.send(
            session,
            kind=KIND,
            title=f"【对账】{channel} {name}：{len(found)} 条差异超过一天未处理",
            body=body,
            user_ids=await _resolvers(session, account),
            channels=CHANNELS,
            store_id=account.store_id,
            link=f"/reconciliation/day/{oldest}",
            data={"account_id": account.id, "difference_ids": [i.id for i, _ in found]},
            text=MessageText(
                title=Phrase(
                    "reconciliation.unresolvedTitle",
                    {"channel": account.channel, "account": name, "count": len(found)},
                ),
                lines=[phrase for _, phrase in lines[:LIST_MAX]],
                more=more,
            ),
        )
        for item, _ in found:
            item.alerted_at = now
        told += len(found)
    await session.flush()
    return told

"""Telling people about stock alerts: through the outbox, after the raising transaction commits.

Raising an alert (on the sale's hot path) only enqueues one outbox event. Its handler, in its
own transaction, works out who hears about it (the store's alert routes: people by role on
in-app/email/SMS, group-chat robots; or, with no route, everyone who may read alerts in the
store) and hands the messages to `notify.send`, which records and retries every delivery.
Routes in digest mode get one message a day listing what is still open instead.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.permissions import Perm
from selfmart.jobs import outbox
from selfmart.kit.time import utcnow
from selfmart.models import (
    AlertRoute,
    Product,
    Role,
    RolePermission,
    StockAlert,
    StockBatch,
    Store,
    User,
    UserRole,
    UserStore,
)
from selfmart.notify.texts import MessageText, Phrase

log = logging.getLogger(__name__)

ALERTS_OPENED = "inventory.alerts_opened"
DEFAULT_CHANNELS = ("in_app", "email")
#: How many alerts one message lists before saying "and N more".
LIST_MAX = 20


async def announce(session: AsyncSession, alert_ids: Sequence[int]) -> None:
    """Queue the notification of newly opened alerts (sent only if the transaction commits)."""
    await outbox.enqueue(session, ALERTS_OPENED, {"alert_ids": list(alert_ids)})


async def _users_for_store(
    session: AsyncSession, store_id: int, *, role_id: int | None = None
) -> list[int]:
    """Active users who work in the store: holding `role_id` (or any role that may read
    alerts), through a role covering every store or an assignment to this one."""
    assigned = select(UserStore.user_id).where(UserStore.store_id == store_id)
    stmt = (
        select(User.id)
        .join(UserRole, UserRole.user_id == User.id)
        .join(Role, Role.id == UserRole.role_id)
        .where(User.is_active.is_(True), or_(Role.all_stores.is_(True), User.id.in_(assigned)))
    )
    if role_id is not None:
        stmt = stmt.where(Role.id == role_id)
    else:
        readers = select(RolePermission.role_id).where(
            RolePermission.permission == str(Perm.ALERT_READ)
        )
        stmt = stmt.where(Role.id.in_(readers))
    return sorted({int(uid) for uid in (await session.scalars(stmt.distinct())).all()})


def _routes_for(routes: Sequence[AlertRoute], store_id: int, kind: str) -> list[AlertRoute]:
    return [
        r
        for r in routes
        if r.is_active
        and (r.store_id is None or r.store_id == store_id)
        and (not r.kinds or kind in r.kinds)
    ]


def _line(alert: StockAlert, product: str, batch: StockBatch | None) -> str:
    if alert.kind == "near_expiry":
        lot = f"批次 {batch.batch_no} " if batch and batch.batch_no else ""
        return f"{product}：{lot}{alert.expiry_date} 到期，剩余 {alert.quantity}"
    if alert.quantity <= 0:
        return f"{product}：已售罄（库存 {alert.quantity}）"
    return f"{product}：库存 {alert.quantity}，预警值 {alert.threshold}"


def _phrase(alert: StockAlert, product: str, batch: StockBatch | None) -> Phrase:
    """`_line` as a key and parameters, for the message centre (notify.texts)."""
    if alert.kind == "near_expiry":
        when = {"product": product, "date": str(alert.expiry_date), "quantity": alert.quantity}
        if batch and batch.batch_no:
            return Phrase("stock.lineExpiryLot", {**when, "lot": batch.batch_no})
        return Phrase("stock.lineExpiry", when)
    if alert.quantity <= 0:
        return Phrase("stock.lineSoldOut", {"product": product, "quantity": alert.quantity})
    return Phrase(
        "stock.lineLow",
        {"product": product, "quantity": alert.quantity, "threshold": alert.threshold},
    )


def _title_phrase(store: Store, kind: str, count: int) -> Phrase:
    what = "expiryTitle" if kind == "near_expiry" else "alertTitle"
    if count > 1:
        return Phrase(f"stock.{what}Many", {"store": store.name, "count": count})
    return Phrase(f"stock.{what}", {"store": store.name})


def _text(title: Phrase, phrases: list[Phrase]) -> MessageText:
    shown = phrases[:LIST_MAX]
    return MessageText(title, shown, len(phrases) - len(shown))


def _title(store: Store, kind: str, count: int) -> str:
    what = "临期预警" if kind == "near_expiry" else "库存预警"
    return f"【{store.name}】{what}" + (f"（{count} 项）" if count > 1 else "")


def _body(lines: list[str]) -> str:
    shown = lines[:LIST_MAX]
    more = len(lines) - len(shown)
    return "\n".join(shown) + (f"\n……另有 {more} 项" if more > 0 else "")


async def _describe(
    session: AsyncSession, alerts: Sequence[StockAlert]
) -> tuple[dict[int, Store], dict[int, str], dict[int, StockBatch]]:
    stores = {
        s.id: s
        for s in await session.scalars(
            select(Store).where(Store.id.in_({a.store_id for a in alerts}))
        )
    }
    names = {
        int(pid): str(name)
        for pid, name in await session.execute(
            select(Product.id, Product.name).where(Product.id.in_({a.product_id for a in alerts}))
        )
    }
    batch_ids = {a.batch_key for a in alerts if a.kind == "near_expiry"}
    batches = (
        {
            b.id: b
            for b in await session.scalars(select(StockBatch).where(StockBatch.id.in_(batch_ids)))
        }
        if batch_ids
        else {}
    )
    return stores, names, batches


async def _send(
    session: AsyncSession,
    *,
    store: Store,
    kind: str,
    alerts: Sequence[StockAlert],
    lines: list[str],
    phrases: list[Phrase],
    routes: Sequence[AlertRoute],
    title: str | None = None,
    title_phrase: Phrase | None = None,
) -> int:
    """Send one message about `alerts` along `routes` (or to the default readers); returns
    how many deliveries and in-app messages were made."""
    from selfmart.notify import service as notify

    title = title or _title(store, kind, len(alerts))
    body = _body(lines)
    text = _text(title_phrase or _title_phrase(store, kind, len(alerts)), phrases)
    link = f"/stock/alerts?store_id={store.id}&kind={kind}"
    data: dict[str, Any] = {"alert_ids": [a.id for a in alerts], "store_id": store.id}
    made = 0
    if not routes:
        users = await _users_for_store(session, store.id)
        sent = await notify.send(
            session,
            kind=f"stock.{kind}",
            title=title,
            body=body,
            user_ids=users,
            channels=DEFAULT_CHANNELS,
            store_id=store.id,
            link=link,
            data=data,
            text=text,
        )
        return len(sent.messages) + len(sent.deliveries)
    for route in routes:
        if route.target == "robot":
            sent = await notify.send(
                session,
                kind=f"stock.{kind}",
                title=title,
                body=body,
                channels=(),
                addresses=[(str(route.robot_kind), f"robot:{route.id}")],
                store_id=store.id,
                link=link,
                data=data,
                text=text,
            )
        else:
            users = await _users_for_store(session, store.id, role_id=route.role_id)
            sent = await notify.send(
                session,
                kind=f"stock.{kind}",
                title=title,
                body=body,
                user_ids=users,
                channels=list(route.channels) or list(DEFAULT_CHANNELS),
                store_id=store.id,
                link=link,
                data=data,
                text=text,
            )
        made += len(sent.messages) + len(sent.deliveries)
    return made


async def deliver_opened(session: AsyncSession, alert_ids: Sequence[int]) -> int:
    """The outbox handler's work: notify about alerts still open and not yet notified (a
    second run finds them notified and sends nothing). Returns messages + deliveries made."""
    alerts = list(
        (
            await session.scalars(
                select(StockAlert)
                .where(
                    StockAlert.id.in_(list(alert_ids)),
                    StockAlert.status == "open",
                    StockAlert.notified_at.is_(None),
                )
                .order_by(StockAlert.id)
                .with_for_update()
            )
        ).all()
    )
    if not alerts:
        return 0
    stores, names, batches = await _describe(session, alerts)
    routes = list(
        (
            await session.scalars(
                select(AlertRoute).where(
                    AlertRoute.is_active.is_(True),
                    or_(
                        AlertRoute.store_id.is_(None),
                        AlertRoute.store_id.in_({a.store_id for a in alerts}),
                    ),
                )
            )
        ).all()
    )
    groups: dict[tuple[int, str], list[StockAlert]] = defaultdict(list)
    for alert in alerts:
        groups[(alert.store_id, alert.kind)].append(alert)
    made = 0
    for (store_id, kind), group in sorted(groups.items()):
        applicable = _routes_for(routes, store_id, kind)
        immediate = [r for r in applicable if r.mode == "immediate"]
        if applicable and not immediate:
            continue  # this store hears about it in the daily digest only
        made += await _send(
            session,
            store=stores[store_id],
            kind=kind,
            alerts=group,
            lines=[_line(a, names.get(a.product_id, "?"), batches.get(a.batch_key)) for a in group],
            phrases=[
                _phrase(a, names.get(a.product_id, "?"), batches.get(a.batch_key)) for a in group
            ],
            routes=immediate,
        )
    now = utcnow()
    for alert in alerts:
        alert.notified_at = now
    await session.flush()
    return made


async def send_digests(session: AsyncSession, *, today: date) -> int:
    """One message per digest route listing the alerts open in its scope; a route gets at
    most one digest per day (`last_digest_on`). Returns the number of routes that sent."""
    routes = list(
        (
            await session.scalars(
                select(AlertRoute)
                .where(AlertRoute.is_active.is_(True), AlertRoute.mode == "digest")
                .order_by(AlertRoute.id)
                .with_for_update()
            )
        ).all()
    )
    sent_routes = 0
    for route in routes:
        if route.last_digest_on == today:
            continue
        stmt = select(StockAlert).where(StockAlert.status == "open")
        if route.store_id is not None:
            stmt = stmt.where(StockAlert.store_id == route.store_id)
        if route.kinds:
            stmt = stmt.where(StockAlert.kind.in_(list(route.kinds)))
        alerts = list(
            (await session.scalars(stmt.order_by(StockAlert.store_id, StockAlert.id))).all()
        )
        route.last_digest_on = today
        if not alerts:
            continue
        stores, names, batches = await _describe(session, alerts)
        by_store: dict[int, list[StockAlert]] = defaultdict(list)
        for alert in alerts:
            by_store[alert.store_id].append(alert)
        for store_id, group in sorted(by_store.items()):
            store = stores[store_id]
            await _send(
                session,
                store=store,
                kind=group[0].kind if len({a.kind for a in group}) == 1 else "digest",
                alerts=group,
                lines=[
                    _line(a, names.get(a.product_id, "?"), batches.get(a.batch_key)) for a in group
                ],
                phrases=[
                    _phrase(a, names.get(a.product_id, "?"), batches.get(a.batch_key))
                    for a in group
                ],
                routes=[route],
                title=f"【{store.name}】库存日报：{len(group)} 项待处理（{today:%m-%d}）",
                title_phrase=Phrase(
                    "stock.digestTitle",
                    {"store": store.name, "count": len(group), "date": f"{today:%m-%d}"},
                ),
            )
        sent_routes += 1
    await session.flush()
    return sent_routes


async def _role_users(session: AsyncSession, role_id: int | None) -> list[int]:
    """Active users holding the role, in any store (for a chain-wide route's test)."""
    stmt = (
        select(User.id)
        .join(UserRole, UserRole.user_id == User.id)
        .where(User.is_active.is_(True), UserRole.role_id == role_id)
    )
    return sorted({int(uid) for uid in (await session.scalars(stmt.distinct())).all()})


@dataclass(frozen=True, slots=True)
class SentTest:
    messages: int
    deliveries: int
    #: (user, channel) pairs the channel cannot reach (no email address, no phone)
    unreachable: int


async def send_test(session: AsyncSession, route: AlertRoute, *, sender: str) -> SentTest:
    """One test message along a route, whatever its kinds, mode or active flag: a robot gets
    it in its group, a role's users (in the route's store, or anywhere for a chain-wide route)
    on the route's channels. Deliveries go through notify, so they are recorded and retried
    like any other and leave only after the request commits."""
    from selfmart.notify import service as notify

    store = await session.get(Store, route.store_id) if route.store_id is not None else None
    title = f"【{store.name if store else '全部门店'}】库存预警测试"
    body = f"这是一条测试消息：预警通知「{route.name}」由 {sender} 发送测试，收到即说明配置可用。"
    text = MessageText(
        Phrase("stock.testTitle", {"store": store.name}) if store else Phrase("stock.testTitleAll"),
        [Phrase("stock.testBody", {"route": route.name, "sender": sender})],
    )
    if route.target == "robot":
        sent = await notify.send(
            session,
            kind="stock.test",
            title=title,
            body=body,
            channels=(),
            addresses=[(str(route.robot_kind), f"robot:{route.id}")],
            store_id=route.store_id,
            text=text,
        )
    else:
        users = (
            await _users_for_store(session, route.store_id, role_id=route.role_id)
            if route.store_id is not None
            else await _role_users(session, route.role_id)
        )
        sent = await notify.send(
            session,
            kind="stock.test",
            title=title,
            body=body,
            user_ids=users,
            channels=list(route.channels) or list(DEFAULT_CHANNELS),
            store_id=route.store_id,
            text=text,
        )
    return SentTest(len(sent.messages), len(sent.deliveries), len(sent.unreachable))

"""Demo data for `make run`: a small chain that a second run neither duplicates nor wipes."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.config import get_settings
from selfmart.iam.passwords import hash_password
from selfmart.iam.service import sync_builtin_roles
from selfmart.kit.time import utcnow
from selfmart.models import Role, Store, Terminal, User, UserRole, UserStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str
    stores: tuple[str, ...] = ()


DEMO_LOGINS = [
    DemoLogin("superadmin", "Super@2026", "super_admin"),
    DemoLogin("admin", "Admin@2026", "admin", ("SH001", "SH002", "HZ001")),
    DemoLogin("cashier", "Cashier@2026", "cashier", ("SH001", "SH002", "HZ001")),
    DemoLogin("hzadmin", "Hzadmin@2026", "admin", ("HZ001",)),
    # reconciliation and settlement only, every store (the finance role is chain-wide)
    DemoLogin("finance", "Finance@2026", "finance"),
]

#: (code, name, city, address, opening hours, the store's service phone)
DEMO_STORES = [
    ("SH001", "静安寺自助店", "上海", "上海市静安区南京西路 1788 号 B1", "24h", "021-62880001"),
    (
        "SH002",
        "张江高科自助店",
        "上海",
        "上海市浦东新区祖冲之路 2290 弄 1 号",
        "07:00-23:00",
        "021-50800002",
    ),
    ("HZ001", "西溪湿地自助店", "杭州", "杭州市西湖区文二西路 551 号", "24h", "0571-88990003"),
]

DEMO_TERMINALS = [
    ("T-SH001-01", "SH001", "收银一号机", "SM-K2 自助收银机"),
    ("T-SH001-02", "SH001", "收银二号机", "SM-K2 自助收银机"),
    ("T-SH002-01", "SH002", "收银一号机", "SM-K1 自助收银机"),
    ("T-HZ001-01", "HZ001", "收银一号机", "SM-K2 自助收银机"),
    ("T-HZ001-02", "HZ001", "收银二号机", "SM-K2 自助收银机"),
]


async def seed_logins(
    session: AsyncSession,
    roles: dict[str, Role],
    stores: dict[str, Store],
    logins: list[DemoLogin] = DEMO_LOGINS,
) -> None:
    """The demo's users (those not there yet), with their roles and stores."""
    for login in logins:
        if await session.scalar(select(User.id).where(User.username == login.username)):
            continue
        user = User(
            username=login.username,
            display_name=login.username,
            password_hash=hash_password(login.password),
            password_changed_at=utcnow(),
            # The demo passwords are printed for all to see: outside demo mode they are
            # only good for one login, to pick a real one.
            must_change_password=not get_settings().demo,
        )
        session.add(user)
        await session.flush()
        session.add(UserRole(user_id=user.id, role_id=roles[login.role].id))
        for store_code in login.stores:
            session.add(UserStore(user_id=user.id, store_id=stores[store_code].id))
    await session.flush()


async def seed_demo(session: AsyncSession) -> None:
    roles = await sync_builtin_roles(session)
    stores: dict[str, Store] = {}
    for code, name, city, address, hours, phone in DEMO_STORES:
        store = await session.scalar(select(Store).where(Store.code == code))
        if store is None:
            store = Store(
                code=code,
                name=name,
                city=city,
                address=address,
                opening_hours=hours,
                phone=phone,
            )
            session.add(store)
            await session.flush()
        stores[code] = store
    for code, store_code, name, model in DEMO_TERMINALS:
        if await session.scalar(select(Terminal.id).where(Terminal.code == code)) is None:
            session.add(Terminal(code=code, store_id=stores[store_code].id, name=name, model=model))
    await seed_logins(session, roles, stores)
    await session.flush()
    from selfmart.catalog.demo import seed_catalog

    added = await seed_catalog(session, list(stores.values()))
    from selfmart.members.demo import seed_members

    # The regulars first: the month of orders identifies them at checkout.
    await seed_members(session, list(stores.values()))
    settings = get_settings()
    if settings.payment_sandbox_enabled:
        from selfmart.inventory.demo import DEMO_ACTOR
        from selfmart.payments.sandboxes import configure_demo
        from selfmart.reconciliation import fees

        # The chain's channels against our sandboxes: `make run` takes payments as it is, and
        # the demo's customers pay through them.
        configured = await configure_demo(session, settings)
        # the fee each sandbox charges: a demo day's reconciliation checks its fees
        await fees.adopt_sandbox_rates(session, configured, actor=DEMO_ACTOR)
    from selfmart.inventory.demo import seed_inventory
    from selfmart.orders.demo import seed_orders
    from selfmart.payments.demo import sandbox_payer

    async with sandbox_payer(settings) as payer:
        stocked = await seed_inventory(
            session, list(stores.values()), sales=functools.partial(seed_orders, payer=payer)
        )
        if payer is not None:
            from selfmart.inventory.demo import DEMO_ACTOR
            from selfmart.orders.demo import HISTORY_DAYS
            from selfmart.reconciliation.tasks import reconcile_missing, yesterday

            # The month's bills, as the daily job would have reconciled them (the sandboxes
            # are served in this process while the demo is seeded); a second seed adds none.
            last = yesterday()
            await reconcile_missing(
                session,
                last - timedelta(days=HISTORY_DAYS - 1),
                last,
                actor=DEMO_ACTOR,
                since_opened=False,  # the demo's accounts are set up after its history
                commit=False,
            )
    from selfmart.analytics import refresh

    # The dashboards read summaries: bring them up to date with the month just written.
    await refresh.refresh(session)
    log.info("demo data in place (%d new products, %d stores stocked)", added, stocked)

"""Alert routes: who hears about stock alerts, for which store, on which channels."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.errors import NotFound, ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.inventory import notifications, robots
from selfmart.inventory.queries import visible_store
from selfmart.inventory.schemas import AlertRouteIn, AlertRouteUpdate
from selfmart.kit.time import utcnow
from selfmart.models import AlertRoute, Role

FIELDS = (
    "name",
    "store_id",
    "kinds",
    "target",
    "role_id",
    "channels",
    "robot_kind",
    "webhook_url",
    "mode",
    "is_active",
)


def read(route: AlertRoute, role_names: dict[int, str] | None = None) -> dict[str, Any]:
    return {
        **{f: getattr(route, f) for f in FIELDS},
        "role_name": (role_names or {}).get(route.role_id) if route.role_id else None,
        "id": route.id,
        "has_secret": bool(route.secret_encrypted),
        "last_digest_on": route.last_digest_on,
        "created_at": route.created_at,
        "updated_at": route.updated_at,
    }


async def role_names(session: AsyncSession) -> dict[int, str]:
    return {int(i): str(n) for i, n in await session.execute(select(Role.id, Role.name))}


async def role_options(session: AsyncSession) -> list[Role]:
    """Every role a route may address (people who route alerts need not be allowed to read
    the roles' permissions, only to name them)."""
    return list((await session.scalars(select(Role).order_by(Role.id))).all())


def _scope(actor: Actor) -> list[Any]:
    if actor.store_ids is None:
        return []
    return [or_(AlertRoute.store_id.is_(None), AlertRoute.store_id.in_(actor.store_ids))]


async def list_routes(session: AsyncSession, *, actor: Actor) -> list[AlertRoute]:
    stmt = select(AlertRoute).where(*_scope(actor)).order_by(AlertRoute.id)
    return list((await session.scalars(stmt)).all())


async def _get(session: AsyncSession, route_id: int, actor: Actor) -> AlertRoute:
    route = await session.scalar(
        select(AlertRoute).where(AlertRoute.id == route_id, *_scope(actor))
    )
    if route is None:
        raise NotFound("No such alert route", field="route_id")
    if route.store_id is None and actor.store_ids is not None:
        # chain-wide routes are shown to store managers but changed by chain admins only
        raise NotFound("No such alert route", field="route_id")
    return route


async def _check(session: AsyncSession, route: AlertRoute) -> None:
    if route.target == "role":
        if route.role_id is None:
            raise ValidationFailed("A role route needs a role", field="role_id")
        if await session.get(Role, route.role_id) is None:
            raise NotFound("No such role", field="role_id")
        if not route.channels:
            raise ValidationFailed("Choose at least one channel", field="channels")
    else:
        if route.robot_kind not in robots.ROBOT_KINDS:
            raise ValidationFailed("Choose wecom, dingtalk or feishu", field="robot_kind")
        if not route.webhook_url:
            raise ValidationFailed("A robot route needs its webhook URL", field="webhook_url")


async def create_route(session: AsyncSession, data: AlertRouteIn, *, actor: Actor) -> AlertRoute:
    if data.store_id is None:
        if actor.store_ids is not None:
            raise ValidationFailed(
                "Only someone who runs every store may route alerts of every store",
                field="store_id",
            )
    else:
        await visible_store(session, data.store_id, actor)
    now = utcnow()
    route = AlertRoute(
        **data.model_dump(exclude={"secret"}),
        created_at=now,
        updated_at=now,
    )
    route.kinds = list(data.kinds)
    route.channels = list(dict.fromkeys(data.channels))
    await _check(session, route)
    session.add(route)
    await session.flush()
    if data.secret:
        route.secret_encrypted = robots.seal(data.secret, route.id)
        await session.flush()
    await audit.record(
        session,
        actor,
        "stock_alert_route.create",
        "stock_alert_route",
        route.id,
        store_id=route.store_id,
        after={**audit.snapshot(route, FIELDS), "secret": "set" if data.secret else None},
    )
    return route


async def update_route(
    session: AsyncSession, route_id: int, data: AlertRouteUpdate, *, actor: Actor
) -> AlertRoute:
    route = await _get(session, route_id, actor)
    before = {**audit.snapshot(route, FIELDS), "secret": route.secret_encrypted}
    changes = data.model_dump(exclude_unset=True)
    secret = changes.pop("secret", None)
    for key, value in changes.items():
        if value is None and key in ("name", "kinds", "channels", "mode", "is_active"):
            continue
        setattr(route, key, list(value) if isinstance(value, list) else value)
    if "secret" in data.model_fields_set:
        route.secret_encrypted = robots.seal(secret, route.id) if secret else None
    route.updated_at = utcnow()
    await _check(session, route)
    await session.flush()
    await audit.record(
        session,
        actor,
        "stock_alert_route.update",
        "stock_alert_route",
        route.id,
        store_id=route.store_id,
        before=before,
        after={**audit.snapshot(route, FIELDS), "secret": route.secret_encrypted},
    )
    return route


async def delete_route(session: AsyncSession, route_id: int, *, actor: Actor) -> None:
    route = await _get(session, route_id, actor)
    before = audit.snapshot(route, FIELDS)
    await session.delete(route)
    await session.flush()
    await audit.record(
        session,
        actor,
        "stock_alert_route.delete",
        "stock_alert_route",
        route_id,
        store_id=before["store_id"],
        before=before,
    )


async def send_test(
    session: AsyncSession, route_id: int, *, actor: Actor
) -> notifications.SentTest:
    """Send a test message along the route now (it may be inactive: try it before turning it
    on). Who may change the route may test it; the test is audited."""
    route = await _get(session, route_id, actor)
    sent = await notifications.send_test(session, route, sender=actor.name)
    await audit.record(
        session,
        actor,
        "stock_alert_route.test",
        "stock_alert_route",
        route.id,
        store_id=route.store_id,
        after={"messages": sent.messages, "deliveries": sent.deliveries},
    )
    return sent

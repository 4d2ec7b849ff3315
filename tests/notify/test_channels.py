"""Channels plug in behind one interface: a group-chat robot style channel, addressed
explicitly, gets each delivery after commit and its failures are retried like email's."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.config import Settings
from selfmart.jobs import outbox, runtime
from selfmart.kit import aftercommit
from selfmart.kit.time import utcnow
from selfmart.models import User
from selfmart.notify import channels
from selfmart.notify.email import EmailChannel
from tests.builders import make_user
from tests.support import settings_for


class RobotChannel:
    """Like a WeCom/DingTalk/Feishu robot: not addressed to people, fails when told to."""

    name = "testrobot"

    def __init__(self) -> None:
        self.sent: list[channels.Outgoing] = []
        self.down = False

    def address_of(self, user: User) -> str | None:
        return None

    async def deliver(self, message: channels.Outgoing, settings: Settings) -> None:
        if self.down:
            raise channels.DeliveryFailed("robot webhook answered 503")
        self.sent.append(message)


ROBOT = RobotChannel()
channels.register(ROBOT)


def test_built_in_and_custom_channels_satisfy_the_protocol() -> None:
    assert isinstance(EmailChannel(), channels.Channel)
    assert isinstance(ROBOT, channels.Channel)
    assert {"email", "testrobot"} <= set(channels.names())


async def test_explicit_addresses_reach_a_plugged_in_channel(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], db_url: str
) -> None:
    from selfmart.notify import service as notify

    ROBOT.sent.clear()
    ROBOT.down = True
    user = await make_user(session, email="x@example.cn")
    sent = await notify.send(
        session,
        kind="stock.low",
        title="门店 A 低库存",
        body="雪碧 2 瓶",
        user_ids=[user.id],
        channels=["testrobot"],
        addresses=[("testrobot", "robot:7"), ("testrobot", "robot:7")],
        store_id=None,
        link="/alerts/3",
    )
    assert sent.unreachable == [(user.id, "testrobot")]  # robots do not reach people
    assert [(d.channel, d.recipient, d.user_id) for d in sent.deliveries] == [
        ("testrobot", "robot:7", None)
    ]
    async with runtime.running(settings_for(db_url), sessionmaker):
        await session.flush()
        await aftercommit.run_pending(session)
        delivery = sent.deliveries[0]
        await session.refresh(delivery)
        assert (delivery.status, delivery.last_error) == (
            "pending",
            "DeliveryFailed: robot webhook answered 503",
        )
        ROBOT.down = False
        await outbox.sweep(now=utcnow() + timedelta(hours=1))
    await session.refresh(delivery)
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    (out,) = ROBOT.sent
    assert (out.recipient, out.subject, out.body) == ("robot:7", "门店 A 低库存", "雪碧 2 瓶")
    assert out.link == "http://127.0.0.1:8000/alerts/3"
    assert out.delivery_id == delivery.id

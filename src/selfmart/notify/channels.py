"""Notification channels behind one interface.

A channel turns one delivery into a message on some medium: email now; SMS and group-chat
robots (WeCom, DingTalk, Feishu) plug in by implementing `Channel` and calling `register`.
In-app messages are not a channel: the message row itself is the delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from selfmart.config import Settings
from selfmart.models import User

IN_APP = "in_app"


@dataclass(frozen=True, slots=True)
class InlineImage:
    """An image shown with the text, e.g. a chart: `data` in the format `subtype` names."""

    data: bytes
    filename: str
    subtype: str = "png"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One delivery, as handed to its channel."""

    delivery_id: int
    channel: str
    recipient: str
    subject: str
    body: str
    kind: str
    #: absolute URL into the console, when the notification points somewhere
    link: str | None
    store_id: int | None
    user_id: int | None
    #: shown inline with the text by channels that can (email); others leave them out
    images: tuple[InlineImage, ...] = ()


class DeliveryFailed(Exception):
    """The channel could not hand the message over; the attempt is recorded and retried."""


@runtime_checkable
class Channel(Protocol):
    #: the name callers pass in `channels=` and deliveries record (at most 16 characters)
    name: str

    def address_of(self, user: User) -> str | None:
        """Where this channel reaches `user` (email address, phone), or None if it cannot.
        Channels that are not addressed to people (group-chat robots) return None and are
        given explicit addresses instead."""
        ...

    async def deliver(self, message: Outgoing, settings: Settings) -> None:
        """Hand the message over, or raise (preferably DeliveryFailed with a reason that holds
        no secret: it is stored and shown to operators)."""
        ...


_CHANNELS: dict[str, Channel] = {}


def register(channel: Channel) -> Channel:
    if not channel.name or len(channel.name) > 16 or channel.name == IN_APP:
        raise ValueError(f"bad channel name {channel.name!r}")
    _CHANNELS[channel.name] = channel
    return channel


def get(name: str) -> Channel:
    try:
        return _CHANNELS[name]
    except KeyError:
        raise LookupError(f"no notification channel {name!r}") from None


def names() -> list[str]:
    return sorted(_CHANNELS)

"""Group-chat robots as notification channels: WeCom (企业微信), DingTalk (钉钉) and Feishu (飞书)
custom-robot webhooks, each with its own JSON message format, and the signed-webhook
signatures of DingTalk and Feishu.

A delivery's recipient is `robot:<alert route id>`; the webhook URL and the signing secret
stay in the route (the secret encrypted), never in the delivery record.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any
from urllib.parse import quote_plus

import httpx

from selfmart.config import Settings
from selfmart.models import AlertRoute, User
from selfmart.notify import channels
from selfmart.notify.channels import DeliveryFailed, Outgoing
from selfmart.terminals.crypto import SecretUnreadable, decrypt_secret, encrypt_secret

ROBOT_KINDS = ("wecom", "dingtalk", "feishu")
#: tests point this at an in-process transport
TRANSPORT: httpx.AsyncBaseTransport | None = None


def secret_key_id(route_id: int) -> str:
    return f"stock_alert_route:{route_id}"


def seal(secret: str, route_id: int) -> str:
    return encrypt_secret(secret, key_id=secret_key_id(route_id))


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk: base64(HMAC-SHA256(key=secret, msg="{timestamp}\\n{secret}")), URL-encoded."""
    digest = hmac.new(
        secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return quote_plus(base64.b64encode(digest).decode("ascii"))


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu: base64(HMAC-SHA256(key="{timestamp}\\n{secret}", msg=empty))."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _text(message: Outgoing) -> str:
    parts = [message.subject, message.body]
    if message.link:
        parts.append(message.link)
    return "\n".join(p for p in parts if p)


def wecom_body(message: Outgoing) -> dict[str, Any]:
    content = f"**{message.subject}**\n{message.body}"
    if message.link:
        content += f"\n[查看详情]({message.link})"
    return {"msgtype": "markdown", "markdown": {"content": content}}


def dingtalk_body(message: Outgoing) -> dict[str, Any]:
    text = f"### {message.subject}\n\n{message.body}"
    if message.link:
        text += f"\n\n[查看详情]({message.link})"
    return {"msgtype": "markdown", "markdown": {"title": message.subject, "text": text}}


def feishu_body(message: Outgoing) -> dict[str, Any]:
    return {"msg_type": "text", "content": {"text": _text(message)}}


async def _route(recipient: str) -> AlertRoute:
    from selfmart.jobs import runtime

    if not recipient.startswith("robot:") or not recipient[6:].isdigit():
        raise DeliveryFailed(f"not a robot address: {recipient}")
    async with runtime.sessionmaker()() as session:
        route = await session.get(AlertRoute, int(recipient[6:]))
    if route is None or not route.webhook_url:
        raise DeliveryFailed(f"{recipient}: the robot route is gone")
    return route


async def _post(url: str, body: dict[str, Any], settings: Settings) -> dict[str, Any]:
    try:
        async with httpx.AsyncClient(
            timeout=settings.webhook_timeout_seconds, transport=TRANSPORT
        ) as http:
            response = await http.post(url, json=body)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"webhook unreachable: {type(exc).__name__}") from exc
    if response.status_code != 200:
        raise DeliveryFailed(f"webhook answered HTTP {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        raise DeliveryFailed("webhook answered something that is not JSON") from None
    return answer if isinstance(answer, dict) else {}


class RobotChannel:
    """One group-chat flavour; `name` is the robot kind."""

    def __init__(self, name: str) -> None:
        self.name = name

    def address_of(self, user: User) -> str | None:
        return None  # robots are addressed by route, not by person

    async def deliver(self, message: Outgoing, settings: Settings) -> None:
        route = await _route(message.recipient)
        url = str(route.webhook_url)
        secret = None
        if route.secret_encrypted:
            try:
                secret = decrypt_secret(route.secret_encrypted, key_id=secret_key_id(route.id))
            except SecretUnreadable as exc:
                raise DeliveryFailed(f"{message.recipient}: {exc}") from exc
        if self.name == "wecom":
            answer = await _post(url, wecom_body(message), settings)
            ok = answer.get("errcode") == 0
        elif self.name == "dingtalk":
            if secret:
                ts = int(time.time() * 1000)
                sep = "&" if "?" in url else "?"
                url = f"{url}{sep}timestamp={ts}&sign={dingtalk_sign(secret, ts)}"
            answer = await _post(url, dingtalk_body(message), settings)
            ok = answer.get("errcode") == 0
        else:
            body = feishu_body(message)
            if secret:
                ts = int(time.time())
                body = {"timestamp": str(ts), "sign": feishu_sign(secret, ts), **body}
            answer = await _post(url, body, settings)
            ok = answer.get("code", answer.get("StatusCode")) == 0
        if not ok:
            reason = answer.get("errmsg") or answer.get("msg") or answer.get("StatusMessage")
            raise DeliveryFailed(f"{self.name} robot refused the message: {reason}")


for _kind in ROBOT_KINDS:
    channels.register(RobotChannel(_kind))

"""SMS: a provider interface, the Aliyun-SMS-style HTTP implementation, and the channel.

The provider speaks Aliyun's SendSms RPC API (version 2017-05-25, signature version 1.0:
HMAC-SHA1 over the sorted, percent-encoded parameters). By default it talks to our own
sandbox of that API (selfmart/sandbox/sms.py), so `make run` and the tests send real HTTP
requests without an account.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import quote

import httpx

from selfmart.config import Settings
from selfmart.models import User
from selfmart.notify.channels import DeliveryFailed, Outgoing

API_VERSION = "2017-05-25"
#: mainland mobile numbers, optionally with +86
PHONE = re.compile(r"^(?:\+?86)?1\d{10}$")


class SmsFailed(Exception):
    """The provider refused or could not be reached; `code` is its error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True, slots=True)
class SmsReceipt:
    biz_id: str
    request_id: str


class SmsProvider(Protocol):
    async def send(
        self, phone: str, template_code: str, params: Mapping[str, str]
    ) -> SmsReceipt: ...


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as the signature scheme wants it (space %20, ~ unescaped)."""
    return quote(value, safe="~")


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items())
    )
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"


def sign(method: str, params: Mapping[str, str], secret: str) -> str:
    """The request signature: base64(HMAC-SHA1(secret + "&", string to sign))."""
    digest = hmac.new(
        (secret + "&").encode("utf-8"),
        string_to_sign(method, params).encode("utf-8"),
        hashlib.sha1,
    ).digest()
    return base64.b64encode(digest).decode("ascii")


class AliyunSmsProvider:
    """SendSms over HTTP POST (form-encoded), as Aliyun's dysmsapi endpoint accepts it."""

    def __init__(
        self,
        *,
        endpoint: str,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        region: str = "cn-hangzhou",
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.access_key_id = access_key_id
        self._secret = access_key_secret
        self.sign_name = sign_name
        self.region = region
        self.timeout = timeout
        self.transport = transport

    def signed_params(
        self, phone: str, template_code: str, params: Mapping[str, str], *, now: datetime
    ) -> dict[str, str]:
        query = {
            "AccessKeyId": self.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "PhoneNumbers": phone,
            "RegionId": self.region,
            "SignName": self.sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "TemplateCode": template_code,
            "TemplateParam": json.dumps(dict(params), ensure_ascii=False, separators=(",", ":")),
            "Timestamp": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
        }
        query["Signature"] = sign("POST", query, self._secret)
        return query

    async def send(self, phone: str, template_code: str, params: Mapping[str, str]) -> SmsReceipt:
        form = self.signed_params(phone, template_code, params, now=datetime.now(UTC))
        try:
            async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as http:
                response = await http.post(self.endpoint, data=form)
        except httpx.HTTPError as exc:
            raise SmsFailed("network", f"{type(exc).__name__}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            raise SmsFailed("bad_response", f"HTTP {response.status_code}, not JSON") from None
        code = str(body.get("Code", ""))
        if response.status_code != 200 or code != "OK":
            raise SmsFailed(code or f"http_{response.status_code}", str(body.get("Message", "")))
        return SmsReceipt(str(body.get("BizId", "")), str(body.get("RequestId", "")))


def provider_from(settings: Settings) -> AliyunSmsProvider:
    return AliyunSmsProvider(
        endpoint=settings.sms_url,
        access_key_id=settings.sms_access_key_id,
        access_key_secret=settings.sms_access_key_secret.get_secret_value(),
        sign_name=settings.sms_sign_name,
        region=settings.sms_region,
        timeout=settings.sms_timeout_seconds,
    )


def normalise_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    digits = re.sub(r"[\s-]", "", phone)
    if not PHONE.match(digits):
        return None
    return digits[-11:]


class SmsChannel:
    """Notifications as text messages to a user's mobile number, through one template with
    `title` and `content` parameters (SMS templates are approved in advance in China)."""

    name = "sms"
    #: a fixed provider (tests); by default one is built from the settings per delivery
    provider: SmsProvider | None = None

    def address_of(self, user: User) -> str | None:
        return normalise_phone(user.phone)

    async def deliver(self, message: Outgoing, settings: Settings) -> None:
        provider = self.provider or provider_from(settings)
        content = message.body if not message.link else f"{message.body} {message.link}"
        try:
            await provider.send(
                message.recipient,
                settings.sms_template_code,
                {"title": message.subject[:30], "content": content[:300]},
            )
        except SmsFailed as exc:
            raise DeliveryFailed(f"SMS to {message.recipient[:3]}****: {exc}") from exc

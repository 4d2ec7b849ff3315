"""Our sandbox of the Aliyun SMS SendSms API, for `make run` and the tests.

It checks what the real service checks that a client can get wrong (the signature, the
access key, the timestamp window, a replayed nonce, the phone numbers, the template
parameters as JSON) and answers in the same JSON shapes, then keeps the message in memory
instead of sending it. `GET /sandbox/sms/messages` lists what it received. A number ending in
0000 is refused with the provider's rate-limit error, to exercise retries.
"""

from __future__ import annotations

import hmac
import json
import uuid
from collections import deque
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from selfmart.config import Settings
from selfmart.notify.sms import API_VERSION, PHONE, sign

router = APIRouter(include_in_schema=False)

#: What the sandbox received, newest last (bounded).
RECEIVED: deque[SandboxSms] = deque(maxlen=1000)
_NONCES: dict[str, datetime] = {}
_WINDOW = timedelta(minutes=15)
REQUIRED = (
    "AccessKeyId",
    "Action",
    "Format",
    "PhoneNumbers",
    "SignName",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureVersion",
    "TemplateCode",
    "Timestamp",
    "Version",
    "Signature",
)


@dataclass(frozen=True, slots=True)
class SandboxSms:
    biz_id: str
    phone: str
    sign_name: str
    template_code: str
    params: dict[str, Any]
    received_at: str


def _answer(code: str, message: str, status: int = 200, **extra: str) -> JSONResponse:
    return JSONResponse(
        {"RequestId": str(uuid.uuid4()).upper(), "Code": code, "Message": message, **extra},
        status_code=status,
    )


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.post("/")
async def send_sms(request: Request) -> JSONResponse:
    settings = _settings(request)
    form = {k: str(v) for k, v in (await request.form()).items()}
    missing = [k for k in REQUIRED if not form.get(k)]
    if missing:
        return _answer("MissingParameter", f"{missing[0]} is mandatory for this action.", 400)
    if form["Action"] != "SendSms" or form["Version"] != API_VERSION:
        return _answer("InvalidAction.NotFound", "Specified api is not found.", 404)
    if form["AccessKeyId"] != settings.sms_access_key_id:
        return _answer("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
    if form["SignatureMethod"] != "HMAC-SHA1" or form["SignatureVersion"] != "1.0":
        return _answer("InvalidParameter", "Unsupported signature method.", 400)
    signature = form.pop("Signature")
    expected = sign("POST", form, settings.sms_access_key_secret.get_secret_value())
    if not hmac.compare_digest(signature, expected):
        return _answer("SignatureDoesNotMatch", "Specified signature is not matched.", 400)
    try:
        at = datetime.strptime(form["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return _answer("InvalidTimeStamp.Format", "Specified time stamp is not valid.", 400)
    now = datetime.now(UTC)
    if abs(now - at) > _WINDOW:
        return _answer("InvalidTimeStamp.Expired", "Specified time stamp is expired.", 400)
    for nonce, seen in list(_NONCES.items()):
        if now - seen > _WINDOW:
            del _NONCES[nonce]
    if form["SignatureNonce"] in _NONCES:
        return _answer("SignatureNonceUsed", "Specified signature nonce was used already.", 400)
    _NONCES[form["SignatureNonce"]] = now
    phones = form["PhoneNumbers"].split(",")
    if len(phones) > 1000 or not all(PHONE.match(p) for p in phones):
        return _answer("isv.MOBILE_NUMBER_ILLEGAL", "Invalid phone number.")
    try:
        params = json.loads(form.get("TemplateParam") or "{}")
        if not isinstance(params, dict):
            raise ValueError("not an object")
    except ValueError:
        return _answer("isv.INVALID_JSON_PARAM", "TemplateParam is not a JSON object.")
    if any(p.endswith("0000") for p in phones):
        return _answer("isv.BUSINESS_LIMIT_CONTROL", "Rate limit exceeded for this number.")
    biz_id = f"{now:%Y%m%d%H%M%S}^{uuid.uuid4().int % 10**10:010d}"
    for phone in phones:
        RECEIVED.append(
            SandboxSms(
                biz_id=biz_id,
                phone=phone,
                sign_name=form["SignName"],
                template_code=form["TemplateCode"],
                params=params,
                received_at=now.isoformat(),
            )
        )
    return _answer("OK", "OK", BizId=biz_id)


@router.get("/messages")
async def list_messages(phone: str | None = None) -> list[dict[str, Any]]:
    return [asdict(m) for m in RECEIVED if phone is None or m.phone == phone][-100:]

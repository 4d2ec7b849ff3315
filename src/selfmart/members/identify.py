"""Who the customer at a terminal is: the dynamic member code from their own page, or their
mobile number and a code sent to it by SMS. Both end in a member token the terminal sends
with its quote and its order (docs/terminal-protocol.md §7).

The dynamic code is 18 digits: "88", the member id in ten digits, and a six-digit TOTP
(RFC 6238, pyotp) over a per-member secret with a 30-second step. A code is accepted in its
own step and the one before (a code shown a moment before the step turned still works, so a
code lives 30 to 60 seconds) and works once: the member row keeps the last step used, and a
conditional UPDATE moves it forward or refuses.

SMS codes are six random digits, valid for five minutes and once; only a keyed hash is kept.
Wrong guesses are counted by the shared rate limiter (per terminal for member codes, per
mobile for SMS codes), so a refusal writes nothing and a guesser is stopped with a 429.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import pyotp
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.config import get_settings
from selfmart.errors import TooManyRequests
from selfmart.iam.actor import Actor
from selfmart.kit.ratelimit import RateLimiter
from selfmart.kit.time import utcnow
from selfmart.members.exceptions import (
    MemberCodeInvalid,
    MemberCodeUsed,
    MemberInactive,
    MemberNotFound,
    MemberTokenInvalid,
    SmsCodeInvalid,
)
from selfmart.models import Member, MemberSmsCode
from selfmart.notify import service as notify
from selfmart.notify.sms import normalise_phone

CODE_PREFIX = "88"
CODE_STEP_SECONDS = 30
CODE_DIGITS = 6
CODE_RE = re.compile(r"^88(\d{10})(\d{6})$")
SMS_CODE_TTL = timedelta(minutes=5)
#: how long a terminal's member token stays good (identify, then scan, quote and pay)
MEMBER_TOKEN_TTL = timedelta(minutes=30)

#: Rate-limit buckets counted here (limits in settings.rate_limits).
CODE_FAILURES = "member_code_failures"  # wrong member codes, per terminal
SMS_FAILURES = "member_sms_failures"  # wrong SMS codes, per mobile
SMS_SENDS = "member_sms_sends"  # SMS codes sent, per mobile


@dataclass(frozen=True, slots=True)
class MemberCode:
    code: str
    #: when this code's step ends (it is still accepted for one more step)
    step_ends_at: datetime
    step_seconds: int = CODE_STEP_SECONDS


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=CODE_DIGITS, interval=CODE_STEP_SECONDS)


async def current_code(
    session: AsyncSession, member: Member, *, now: datetime | None = None
) -> MemberCode:
    """The member's dynamic code now (their own page shows it). Makes the secret on first use."""
    if member.status != "active":
        raise MemberInactive(field="member")
    now = now or utcnow()
    if not member.code_secret:
        member.code_secret = pyotp.random_base32()
        await session.flush()
    otp = _totp(member.code_secret).at(now)
    step = int(now.timestamp()) // CODE_STEP_SECONDS
    ends = datetime.fromtimestamp((step + 1) * CODE_STEP_SECONDS, tz=now.tzinfo)
    return MemberCode(code=f"{CODE_PREFIX}{member.id:010d}{otp}", step_ends_at=ends)


async def _refuse(limiter: RateLimiter | None, bucket: str, key: str) -> None:
    if limiter is not None:
        wait = await limiter.hit(bucket, key)
        if wait is not None:
            raise TooManyRequests(
                "Too many wrong codes; try again later", retry_after=math.ceil(wait)
            )


async def by_code(
    session: AsyncSession,
    code: str,
    *,
    terminal_id: int,
    limiter: RateLimiter | None,
    now: datetime | None = None,
) -> Member:
    """The member a dynamic code names, once per step; 422 for a wrong or stale code, 409 for a
    code already used, 429 after too many wrong codes from this terminal."""
    now = now or utcnow()
    key = str(terminal_id)
    if limiter is not None and await limiter.blocked(CODE_FAILURES, key):
        raise TooManyRequests("Too many wrong codes; try again later", retry_after=60)
    match = CODE_RE.match(code.strip())
    member = None
    if match is not None:
        member = await session.get(Member, int(match.group(1)))
    step_used = None
    if member is not None and member.code_secret:
        totp = _totp(member.code_secret)
        step = int(now.timestamp()) // CODE_STEP_SECONDS
        for candidate in (step, step - 1):
            at = candidate * CODE_STEP_SECONDS
            if hmac.compare_digest(totp.at(at), match.group(2) if match else ""):
                step_used = candidate
                break
    if member is None or step_used is None:
        await _refuse(limiter, CODE_FAILURES, key)
        raise MemberCodeInvalid(
            "The member code is wrong or has expired; ask the member to refresh their page",
            field="code",
        )
    if member.status != "active":
        raise MemberInactive(field="code")
    moved = await session.execute(
        update(Member)
        .where(
            Member.id == member.id,
            or_(Member.code_last_step.is_(None), Member.code_last_step < step_used),
        )
        .values(code_last_step=step_used)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise MemberCodeUsed(field="code")
    return member


# ---------------------------------------------------------------- SMS codes


def _key() -> bytes:
    return _derive(get_settings().secret_key.get_secret_value())


@lru_cache(maxsize=4)
def _derive(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"selfmart.members.sms-code.v1", hashlib.sha256).digest()


def _hash(mobile: str, purpose: str, code: str) -> str:
    return hmac.new(_key(), f"{purpose}:{mobile}:{code}".encode(), hashlib.sha256).hexdigest()


def valid_mobile(mobile: str, field: str = "mobile") -> str:
    found = normalise_phone(mobile)
    if found is None:
        raise SmsCodeInvalid("Not a mainland mobile number (11 digits, 1 first)", field=field)
    return found


async def send_sms_code(
    session: AsyncSession,
    mobile: str,
    *,
    purpose: str,
    limiter: RateLimiter | None,
    must_exist: bool,
    actor: Actor,
    now: datetime | None = None,
) -> datetime | None:
    """Send a fresh code to the active member with `mobile` (after commit, through the SMS
    provider). Returns when it expires; None when no active member has that mobile and
    `must_exist` is off (the public page answers alike either way, so it cannot be probed)."""
    now = now or utcnow()
    mobile = valid_mobile(mobile)
    member = await session.scalar(select(Member).where(Member.mobile == mobile))
    if member is None or member.status != "active":
        if must_exist:
            if member is None:
                raise MemberNotFound("No member has this mobile number", field="mobile")
            raise MemberInactive(field="mobile")
        return None
    if limiter is not None:
        wait = await limiter.hit(SMS_SENDS, mobile)
        if wait is not None:
            raise TooManyRequests(
                "A code was sent to this number moments ago; wait before asking again",
                retry_after=math.ceil(wait),
            )
    code = f"{secrets.randbelow(10**6):06d}"
    session.add(
        MemberSmsCode(
            mobile=mobile,
            purpose=purpose,
            code_hash=_hash(mobile, purpose, code),
            created_at=now,
            expires_at=now + SMS_CODE_TTL,
        )
    )
    await session.flush()
    minutes = int(SMS_CODE_TTL.total_seconds() // 60)
    try:
        await notify.send(
            session,
            kind=f"member.sms_code.{purpose}",
            title="会员验证码",
            body=f"您的会员验证码为 {code}，{minutes} 分钟内有效。请勿告诉他人。",
            channels=[],
            addresses=[("sms", mobile)],
            data={"member_id": member.id},
        )
    except LookupError as exc:  # pragma: no cover - the SMS channel is always registered
        raise RuntimeError("no SMS channel") from exc
    await audit.record(
        session, actor, "member.sms_code_sent", "member", member.id,
        after={"purpose": purpose, "expires_at": (now + SMS_CODE_TTL).isoformat()},
        label=member.member_no,
    )  # fmt: skip
    return now + SMS_CODE_TTL


async def by_sms_code(
    session: AsyncSession,
    mobile: str,
    code: str,
    *,
    purpose: str,
    limiter: RateLimiter | None,
    now: datetime | None = None,
) -> Member:
    """The active member with `mobile` when `code` is the latest unused, unexpired code sent to
    it for `purpose`; the code is used up. 422 otherwise, 429 after too many wrong codes."""
    now = now or utcnow()
    mobile = valid_mobile(mobile)
    if limiter is not None and await limiter.blocked(SMS_FAILURES, mobile):
        raise TooManyRequests(
            "Too many wrong codes for this number; try again later", retry_after=60
        )
    sent = await session.scalar(
        select(MemberSmsCode)
        .where(MemberSmsCode.mobile == mobile, MemberSmsCode.purpose == purpose)
        .order_by(MemberSmsCode.id.desc())
        .limit(1)
    )
    good = (
        sent is not None
        and sent.used_at is None
        and sent.expires_at > now
        and hmac.compare_digest(sent.code_hash, _hash(mobile, purpose, code.strip()))
    )
    if not good or sent is None:
        await _refuse(limiter, SMS_FAILURES, mobile)
        raise SmsCodeInvalid("The code is wrong, used or expired; ask for a new one", field="code")
    used = await session.execute(
        update(MemberSmsCode)
        .where(MemberSmsCode.id == sent.id, MemberSmsCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        raise SmsCodeInvalid("The code is wrong, used or expired; ask for a new one", field="code")
    member = await session.scalar(select(Member).where(Member.mobile == mobile))
    if member is None:
        raise SmsCodeInvalid("The code is wrong, used or expired; ask for a new one", field="code")
    if member.status != "active":
        raise MemberInactive(field="mobile")
    return member


# ---------------------------------------------------------------- tokens


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().secret_key.get_secret_value(), salt=salt)


_TERMINAL_SALT = "selfmart.members.terminal-member.v1"


def member_token(member_id: int, terminal_id: int) -> str:
    """What the terminal sends with its quote and order: this member, identified at this
    terminal, for MEMBER_TOKEN_TTL."""
    return str(_serializer(_TERMINAL_SALT).dumps({"m": member_id, "t": terminal_id}))


def read_member_token(token: str, *, terminal_id: int, at: datetime | None = None) -> int:
    """The member id of a genuine token issued to `terminal_id` and not expired at `at` (an
    offline order's purchase time); 422 `member_token_invalid` otherwise."""
    at = at or utcnow()
    serializer = _serializer(_TERMINAL_SALT)
    try:
        doc, signed_at = serializer.loads(token, return_timestamp=True)
    except (BadSignature, SignatureExpired):
        raise MemberTokenInvalid(field="member.token") from None
    if (
        not isinstance(doc, dict)
        or doc.get("t") != terminal_id
        or not isinstance(doc.get("m"), int)
    ):
        raise MemberTokenInvalid(field="member.token")
    if at > signed_at + MEMBER_TOKEN_TTL:
        raise MemberTokenInvalid(
            "The member was identified too long ago; identify them again", field="member.token"
        )
    return int(doc["m"])


async def record_identified(
    session: AsyncSession, member: Member, *, how: str, actor: Actor, store_id: int
) -> None:
    await audit.record(
        session, actor, "member.identified", "member", member.id, store_id=store_id,
        after={"by": how}, label=member.member_no,
    )  # fmt: skip

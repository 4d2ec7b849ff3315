"""Errors of the payments domain, each with its stable code."""

from __future__ import annotations

from selfmart.errors import Conflict, ValidationFailed


class ChannelNotOffered(ValidationFailed):
    code, message = (
        "channel_not_offered",
        "This store has no enabled account for that payment channel",
    )


class NothingOwed(Conflict):
    code, message = "nothing_owed", "Nothing is owed on this order"


class AttemptConflict(Conflict):
    code, message = (
        "idempotency_conflict",
        "This attempt id was already used for another payment of this order",
    )


class PaymentInProgress(Conflict):
    code, message = (
        "payment_in_progress",
        "Another payment of this order is in progress: read its state instead of starting one",
    )


class PayerTokenRefused(ValidationFailed):
    code, message = (
        "payer_token_refused",
        "The page's WeChat payer is not valid (expired, or for another order): authorise again",
    )


class OAuthCodeRefused(ValidationFailed):
    code, message = (
        "oauth_code_refused",
        "WeChat refused the authorisation code (invalid, expired or already used): authorise again",
    )


class WechatUnreachable(Conflict):
    code, message = "platform_unreachable", "WeChat could not be reached; try again"

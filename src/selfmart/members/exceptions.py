"""Errors of the members domain, each with its stable code."""

from __future__ import annotations

from selfmart.errors import AlreadyExists, Conflict, NotFound, Unauthorized, ValidationFailed


class MemberNotFound(NotFound):
    code, message = "member_not_found", "No such member"


class TierNotFound(NotFound):
    code, message = "tier_not_found", "No such tier"


class MobileTaken(AlreadyExists):
    code, message = "mobile_taken", "Another member has this mobile number"


class CardTaken(AlreadyExists):
    code, message = "card_taken", "Another member has this card number"


class TierTaken(AlreadyExists):
    code, message = "tier_taken", "Another tier has this code or rank"


class TierInUse(Conflict):
    code, message = "tier_in_use", "Members hold this tier; move them first"


class MemberInactive(Conflict):
    code, message = "member_inactive", "This member is disabled or erased"


class InsufficientPoints(Conflict):
    code, message = "insufficient_points", "The member does not hold that many points"


class CouponNotFound(NotFound):
    code, message = "coupon_not_found", "No such coupon for this member"


class CouponTemplateNotFound(NotFound):
    code, message = "coupon_template_not_found", "No such coupon template"


class CouponUsed(Conflict):
    code, message = "coupon_used", "This coupon was already redeemed"


class CouponVoid(Conflict):
    code, message = "coupon_void", "This coupon was voided"


class CouponExpired(Conflict):
    code, message = "coupon_expired", "This coupon has expired"


class CouponNotYetValid(Conflict):
    code, message = "coupon_not_yet_valid", "This coupon is not valid yet"


class CouponMinSpend(Conflict):
    code, message = "coupon_min_spend", "The order does not reach the coupon's minimum spend"


class CouponTemplateInactive(Conflict):
    code, message = "coupon_template_inactive", "This coupon template is switched off"


class MemberCodeInvalid(ValidationFailed):
    code, message = "member_code_invalid", "The member code is wrong or has expired"


class MemberCodeUsed(Conflict):
    code, message = "member_code_used", "This member code was already used; show the new one"


class SmsCodeInvalid(ValidationFailed):
    code, message = "sms_code_invalid", "The code is wrong, used or expired"


class MemberTokenInvalid(ValidationFailed):
    code, message = "member_token_invalid", "The member token is not valid; identify again"


class PointsNotAllowed(ValidationFailed):
    code, message = "points_not_allowed", "These points cannot be spent on this order"


class PortalSessionInvalid(Unauthorized):
    code, message = "member_session_invalid", "Sign in again"


class MessageNotFound(NotFound):
    code, message = "member_message_not_found", "No such message"

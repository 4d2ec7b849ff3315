"""Errors of the members domain, each with its stable code."""

from __future__ import annotations

from selfmart.errors import AlreadyExists, Conflict, NotFound


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

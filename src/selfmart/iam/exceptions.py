"""Errors of the iam domain; each code is stable and translated by the console."""

from __future__ import annotations

from selfmart.errors import Conflict, Forbidden, Unauthorized


class InvalidCredentials(Unauthorized):
    code, message = "invalid_credentials", "The username or password is wrong"


class AccountLocked(Unauthorized):
    code, message = "account_locked", "Too many failed logins; the account is locked for a while"


class AccountDisabled(Unauthorized):
    code, message = "account_disabled", "The account is disabled"


class InvalidRefreshToken(Unauthorized):
    code, message = "invalid_refresh_token", "The refresh token is invalid or expired"


class RefreshTokenReused(Unauthorized):
    code, message = (
        "refresh_token_reused",
        "This refresh token was already used; the session has been ended for safety",
    )


class PasswordChangeRequired(Forbidden):
    code, message = "password_change_required", "Change your password before doing anything else"


class BeyondYourReach(Forbidden):
    """The actor tried to grant, or act on, permissions or stores they do not hold."""

    code, message = "beyond_your_reach", "You cannot grant or manage access you do not hold"


class CannotDisableSelf(Forbidden):
    code, message = "cannot_disable_self", "You cannot disable your own account"


class BuiltinRoleFixed(Conflict):
    code, message = "builtin_role_fixed", "The permissions of a built-in role cannot be changed"


class RoleInUse(Conflict):
    code, message = "role_in_use", "The role is still assigned to users"

"""Errors of the terminals domain; each code is stable and listed in docs/terminal-protocol.md."""

from __future__ import annotations

from selfmart.errors import Conflict, Forbidden, NotFound, TooManyRequests, Unauthorized


class TerminalNotFound(NotFound):
    code, message = "terminal_not_found", "No such terminal"


# --- signed requests -------------------------------------------------------------------------


class MissingHeader(Unauthorized):
    code, message = "missing_header", "A signature header is missing"


class InvalidHeader(Unauthorized):
    code, message = "invalid_header", "A signature header is malformed"


class StaleTimestamp(Unauthorized):
    code, message = "stale_timestamp", "The request timestamp is outside the allowed clock skew"


class UnknownKey(Unauthorized):
    code, message = "unknown_key", "No terminal key has this key id"


class KeyRevoked(Unauthorized):
    code, message = "key_revoked", "This terminal key has been revoked"


class KeyExpired(Unauthorized):
    code, message = "key_expired", "This terminal key has expired (it was rotated)"


class KeyUnusable(Unauthorized):
    code, message = "key_unusable", "This terminal key cannot be used; re-activate the terminal"


class BadSignature(Unauthorized):
    code, message = "bad_signature", "The request signature does not match"


class ReplayedNonce(Unauthorized):
    code, message = "replayed_nonce", "This nonce has already been used"


class TerminalDisabled(Forbidden):
    code, message = "terminal_disabled", "This terminal is disabled"


# --- activation ------------------------------------------------------------------------------


class InvalidActivationCode(Unauthorized):
    """Wrong code (or unknown terminal). The failed-attempt count it bumped must be committed
    although the request fails: see `keep_writes` and terminals.dependencies."""

    code, message = "invalid_activation_code", "The terminal code or activation code is wrong"
    keep_writes = True


class ActivationCodeExpired(Unauthorized):
    code, message = "activation_code_expired", "The activation code has expired; issue a new one"


class ActivationCodeUsed(Conflict):
    code, message = "activation_code_used", "The activation code has already been used"


class ActivationLocked(TooManyRequests):
    code, message = (
        "activation_locked",
        "Too many wrong activation codes; issue a new code in the console to unlock",
    )


class TerminalDisabledConflict(Conflict):
    code, message = "terminal_disabled", "This terminal is disabled; enable it first"


class TerminalNotActivated(Conflict):
    code, message = "terminal_not_activated", "This terminal has no key yet; activate it first"

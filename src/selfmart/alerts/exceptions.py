"""Errors of the alerts domain."""

from __future__ import annotations

from selfmart.errors import Conflict, NotFound


class RuleNotFound(NotFound):
    code = "alert_rule_not_found"
    message = "No such alert rule"


class AlertNotFound(NotFound):
    code = "alert_not_found"
    message = "No such alert"


class AlertAlreadyResolved(Conflict):
    code = "alert_resolved"
    message = "The alert is resolved already"


class AlertAlreadyAcknowledged(Conflict):
    code = "alert_acknowledged"
    message = "Someone acknowledged the alert already"

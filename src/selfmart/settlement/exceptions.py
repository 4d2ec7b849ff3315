"""Errors of settlement, each with its stable code."""

from __future__ import annotations

from selfmart.errors import Conflict, Forbidden, NotFound


class StatementNotFound(NotFound):
    code, message = "statement_not_found", "No such supplier statement"


class StatementOverlaps(Conflict):
    code, message = "statement_overlaps", "The period overlaps another statement of the supplier"


class EarlierStatementOpen(Conflict):
    code, message = (
        "earlier_statement_open",
        "An earlier statement of the supplier is not approved yet",
    )


class PeriodNotOver(Conflict):
    code, message = "period_not_over", "The statement's period has not ended yet"


class ChainWideOnly(Forbidden):
    code, message = (
        "chain_wide_only",
        "Supplier settlement covers every store: it needs a user of all stores",
    )

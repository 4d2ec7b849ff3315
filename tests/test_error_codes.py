"""Every error code the server can answer with is listed in web/tests/unit/error-codes.json,
where the console's test checks that both languages translate it (errors.<code>): a new code
fails here until it is listed, and there until it is translated."""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import selfmart
from selfmart.errors import STATUS_CODES, AppError

LISTED = Path(__file__).resolve().parents[1] / "web" / "tests" / "unit" / "error-codes.json"

#: codes the handlers answer with outside the AppError classes (selfmart.errors)
HANDLER_CODES = {"internal_error", "database_unavailable", "database_busy", "http_error"}


def _subclasses(cls: type[AppError]) -> Iterator[type[AppError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def declared_codes() -> set[str]:
    for module in pkgutil.walk_packages(selfmart.__path__, "selfmart."):
        importlib.import_module(module.name)
    codes = {AppError.code, *STATUS_CODES.values(), *HANDLER_CODES}
    return codes | {cls.code for cls in _subclasses(AppError)}


def test_every_declared_error_code_is_listed_for_the_console() -> None:
    listed = set(json.loads(LISTED.read_text(encoding="utf-8")))
    declared = declared_codes()
    assert sorted(declared - listed) == [], "add these to web/tests/unit/error-codes.json"
    assert sorted(listed - declared) == [], "no longer declared by the server"

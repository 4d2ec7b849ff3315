"""The words of audit entries (actor types, entity types, action verbs) in zh-CN and en: one
catalogue, read by the server's exports here and imported by the console's locale files, so a
spreadsheet says 订单：退款 where the console does, not `order.refund`."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_DIR = Path(__file__).parent


@cache
def catalogue(lang: str) -> dict[str, Any]:
    """The words of `lang` ("zh-CN" or "en"; anything else reads as zh-CN)."""
    name = "en" if lang == "en" else "zh-CN"
    data: dict[str, Any] = json.loads((_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return data


def actor_type(code: str, lang: str) -> str:
    return str(catalogue(lang)["actorTypes"].get(code, code))


def entity_type(code: str, lang: str) -> str:
    return str(catalogue(lang)["entityTypes"].get(code, code))


def action(code: str, lang: str) -> str:
    """An action code in words, as the console shows it: "order.issue.remind" is the entity's
    word and each further part's, any part without a word shown as it is."""
    words = catalogue(lang)
    entity, *rest = code.split(".")
    if not rest:
        return entity_type(entity, lang)
    verb = " · ".join(str(words["verbs"].get(part, part)) for part in rest)
    return (
        str(words["actionFormat"])
        .replace("{entity}", entity_type(entity, lang))
        .replace("{verb}", verb)
    )

"""Message-centre texts as keys and parameters, so the console words each message in its
reader's language (web/src/i18n: messages.texts.<key>). The Chinese title and body a sender
also gives are what the outside channels (email, SMS, group robots) carry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Phrase:
    """One sentence: its key under messages.texts and the values it names."""

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "params": dict(self.params)}


@dataclass(frozen=True, slots=True)
class MessageText:
    """A message's title and lines as phrases; `more` lines were left out of a long list."""

    title: Phrase
    lines: Sequence[Phrase] = ()
    more: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title.as_json(),
            "lines": [line.as_json() for line in self.lines],
            "more": self.more,
        }

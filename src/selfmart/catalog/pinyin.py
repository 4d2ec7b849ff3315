"""Pinyin search keys: 可口可乐 is found by "kekoukele" and by "kkkl"."""

from __future__ import annotations

import re
from functools import lru_cache

from pypinyin import lazy_pinyin

_MARK = "\x00"
_KEEP = re.compile(r"[^0-9a-z]+")
#: Separates name and brand so a match never spans the two.
SEP = "|"


def _non_han(chars: str) -> str:
    return _MARK + chars


@lru_cache(maxsize=8192)
def _word_keys(text: str) -> tuple[str, str]:
    if text.isascii():
        # No Han characters: pypinyin would hand the whole word to _non_han.
        plain = _KEEP.sub("", text.lower())
        return plain, plain
    full: list[str] = []
    initials: list[str] = []
    for syllable in lazy_pinyin(text, errors=_non_han):
        if syllable.startswith(_MARK):
            plain = _KEEP.sub("", syllable[1:].lower())
            full.append(plain)
            initials.append(plain)
        elif syllable:
            full.append(syllable.lower())
            initials.append(syllable[0].lower())
    return "".join(full), "".join(initials)


def _keys(text: str) -> tuple[str, str]:
    # Word by word: pypinyin never segments across a space (it is not a Han character), and
    # product names share their words (brands, 牛奶, 500ml), so the cache answers most of an
    # import of 50,000 names that are all different.
    words = [_word_keys(w) for w in text.split()]
    return "".join(w[0] for w in words), "".join(w[1] for w in words)


#: The lengths of Product.pinyin_full and Product.pinyin_initials. A 200-character name spells
#: up to 1,200 letters of pinyin ("zhuang"): the keys are cut to fit, so a very long name is
#: found by its beginning rather than refused by PostgreSQL (a 500).
FULL_MAX = 600
INITIALS_MAX = 200


def search_keys(name: str, brand: str = "") -> tuple[str, str]:
    """(full pinyin, initials) for a product, e.g. ("kekoukele|kekoukele", "kkkl|kkkl")."""
    parts = [_keys(t) for t in (name, brand or "") if t.strip()]
    full = SEP.join(p[0] for p in parts)
    initials = SEP.join(p[1] for p in parts)
    return full[:FULL_MAX], initials[:INITIALS_MAX]


def normalise_query(q: str) -> str:
    """A typed query reduced to what the pinyin columns hold (lower-case letters, digits)."""
    return _KEEP.sub("", q.lower())

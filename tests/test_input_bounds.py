"""Every integer the API takes, and every string in a request body, is bounded in the OpenAPI
document.

An unbounded integer (an id, an amount, a cursor; in a path, query, header or body) reaches the
database, which refuses it with an error: a 500 (SQLite above 2**63-1, PostgreSQL above 2**31-1
for a 32-bit column). An unbounded body string lets a client store megabytes in a name, or
overflow a VARCHAR on PostgreSQL (another 500). Strings in paths, query strings and headers are
filters, never stored, and the server's request-line limit bounds them. Walking the document
covers every route, including ones added later, without per-route code.
Use selfmart.kit.ids for ids, `le=` for other integers and `max_length` for body strings.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from selfmart.app import create_app
from selfmart.kit.ids import INT64_MAX

from .support import settings_for

#: String formats whose parser bounds them already.
BOUNDED_FORMATS = {"date-time", "date", "time", "binary", "uuid", "duration"}


def _document() -> dict[str, Any]:
    doc: dict[str, Any] = create_app(settings_for("sqlite+aiosqlite:///:memory:")).openapi()
    return doc


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = doc
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _leaves(
    doc: dict[str, Any], schema: dict[str, Any], where: str, seen: frozenset[str] = frozenset()
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every scalar schema inside `schema`, with a readable path to it."""
    ref = schema.get("$ref")
    if ref is not None:
        if ref in seen:
            return
        seen = seen | {ref}
    schema = _resolve(doc, schema)
    for key in ("anyOf", "oneOf", "allOf"):
        subs = schema.get(key, [])
        if {"number", "string"} <= {s.get("type") for s in subs}:
            # pydantic's Decimal: a number, or the same number as text; the number's bounds
            # hold for both (the text is parsed, then compared)
            subs = [s for s in subs if s.get("type") != "string"]
        for sub in subs:
            yield from _leaves(doc, sub, where, seen)
    for name, sub in schema.get("properties", {}).items():
        yield from _leaves(doc, sub, f"{where}.{name}", seen)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _leaves(doc, schema["additionalProperties"], f"{where}.*", seen)
    if "items" in schema:
        yield from _leaves(doc, schema["items"], f"{where}[]", seen)
    if schema.get("type") in {"integer", "string"}:
        yield where, schema


def _inputs(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            label = f"{method.upper()} {path}"
            for param in op.get("parameters", []):
                where = f"{label} {param['in']}:{param['name']}"
                for at, leaf in _leaves(doc, param.get("schema", {}), where):
                    if leaf.get("type") == "integer":
                        yield at, leaf
            for media, content in op.get("requestBody", {}).get("content", {}).items():
                yield from _leaves(doc, content.get("schema", {}), f"{label} body({media})")


def _unbounded(schema: dict[str, Any]) -> str | None:
    if "enum" in schema or "const" in schema:
        return None
    if schema["type"] == "integer":
        top = schema.get("maximum", schema.get("exclusiveMaximum"))
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        if top is None or low is None:
            return "integer without minimum and maximum"
        if top > INT64_MAX:
            return f"maximum {top} is beyond 64 bits"
        return None
    if schema.get("format") in BOUNDED_FORMATS or "contentMediaType" in schema:
        return None  # parsed into a fixed shape, or a file (held by the body size limit)
    if "maxLength" not in schema:
        return "string without maxLength"
    return None


def test_every_integer_and_string_input_is_bounded() -> None:
    doc = _document()
    found = list(_inputs(doc))
    # the walker must see inputs of every kind, or this test checks nothing
    wheres = " ".join(w for w, _ in found)
    for kind in ("path:user_id", "query:page", "body(application/json).username"):
        assert kind in wheres
    problems = sorted({f"{w}: {why}" for w, s in found if (why := _unbounded(s))})
    assert problems == [], "unbounded inputs:\n  " + "\n  ".join(problems)


def test_the_bounds_check_finds_what_it_must() -> None:
    assert _unbounded({"type": "integer"}) is not None
    assert _unbounded({"type": "integer", "minimum": 1, "maximum": 2**64}) is not None
    assert _unbounded({"type": "integer", "minimum": 1, "maximum": 2**31 - 1}) is None
    assert _unbounded({"type": "string"}) is not None
    assert _unbounded({"type": "string", "maxLength": 10}) is None
    assert _unbounded({"type": "string", "format": "date-time"}) is None
    assert _unbounded({"type": "string", "enum": ["a"]}) is None

"""Every string the API takes, at its edges: a NUL character, one character past its declared
maximum (both a 422 naming exactly that field), and exactly its maximum in multi-byte
characters where its pattern allows (stored, or refused for a business reason: never a 500,
which is what a schema maximum above the column's length gives on PostgreSQL).

Driven by the OpenAPI document, like the fuzz: new routes are covered without code here.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from schemathesis.generation import GenerationMode
from sqlalchemy.ext.asyncio import AsyncSession

from ..builders import auth_headers, make_store, make_user
from ..matrix import ID_PARAMS
from ..support import fingerprint
from . import harness


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    doc = harness.openapi_document()
    while "$ref" in schema:
        node: Any = doc
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _string_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    schema = _resolve(schema)
    if schema.get("type") == "string" and "enum" not in schema and "format" not in schema:
        return schema
    for sub in schema.get("anyOf", []):
        found = _string_schema(sub)
        if found is not None:
            return found
    return None


def _inputs(label: str) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(JSON body string properties, query string parameters) of one operation."""
    method, path = label.split(" ", 1)
    op = harness.openapi_document()["paths"][path][method.lower()]
    query = {
        p["name"]: s
        for p in op.get("parameters", [])
        if p["in"] == "query" and (s := _string_schema(p.get("schema", {}))) is not None
    }
    body_schema = op.get("requestBody", {}).get("content", {}).get("application/json")
    body: dict[str, dict[str, Any]] = {}
    if body_schema:
        props = _resolve(body_schema["schema"]).get("properties", {})
        body = {n: s for n, sub in props.items() if (s := _string_schema(sub)) is not None}
    return body, query


#: (streams of server-sent events never end: the fuzz covers them with a time limit)
LABELS = [
    label
    for label in sorted(harness.operations())
    if any(_inputs(label)) and not harness.is_stream(label)
]


def _filler(schema: dict[str, Any], n: int) -> str | None:
    """n characters the field's pattern accepts, multi-byte ones when it allows them."""
    pattern = schema.get("pattern")
    for ch in ("汉", "a", "A", "9"):
        text = ch * n
        if pattern is None or re.search(pattern, text):
            return text
    return None


def test_the_walk_sees_string_fields() -> None:
    body, query = _inputs("POST /api/v1/stores")
    assert {"code", "name", "address"} <= set(body)
    assert "q" in _inputs("GET /api/v1/stores")[1]
    assert len(LABELS) >= 15


@pytest.mark.parametrize("label", LABELS)
async def test_string_fields_at_their_edges(
    label: str, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    method, path = label.split(" ", 1)
    store = await make_store(session)
    for name in harness.path_params(label):
        value = await ID_PARAMS[name].factory(session, store) if name in ID_PARAMS else "x"
        path = path.replace("{" + name + "}", str(value))
    body_fields, query_fields = _inputs(label)
    positive = harness.cases(label, GenerationMode.POSITIVE, 1)
    base: Any = positive[0].body if positive and body_fields else None
    base = dict(base) if isinstance(base, dict) else {}

    problems: list[str] = []
    op = harness.openapi_document()["paths"][harness.operations()[label].path]
    signed_in = any("HTTPBearer" in sec for sec in op[method.lower()].get("security", []))
    signed_in = signed_in or harness.is_public(label)

    async def send(where: str, name: str, value: str, expect_422: bool) -> None:
        headers = await auth_headers(session, await make_user(session, role="super_admin"))
        before = await fingerprint(session)
        if where == "body":
            r = await client.request(method, path, json={**base, name: value}, headers=headers)
        else:
            r = await client.request(method, path, params={name: value}, headers=headers)
        what = f"{where}.{name}={value[:12]!r}…({len(value)})"
        if r.status_code == 401 and not signed_in:
            return  # a terminal-signed route: the signature is checked before the body
        if r.status_code >= 500:
            problems.append(f"{what}: {r.status_code} {r.text[:200]}")
            return
        if expect_422:
            fields = [d.get("field") for d in r.json().get("details", [])]
            if r.status_code != 422 or f"{where}.{name}" not in fields:
                problems.append(f"{what}: {r.status_code}, expected 422 naming it: {r.text[:200]}")
        if 400 <= r.status_code < 500 and await fingerprint(session) != before:
            if label not in harness.REFUSALS_THAT_WRITE:
                problems.append(f"{what}: refused {r.status_code} yet changed the database")

    for where, fields in (("body", body_fields), ("query", query_fields)):
        for name, schema in fields.items():
            await send(where, name, "a\x00b", True)
            top = schema.get("maxLength")
            if top is None:
                continue
            over = _filler(schema, top + 1)
            if over is not None:
                await send(where, name, over, True)
            exact = _filler(schema, top)
            if exact is not None:
                await send(where, name, exact, False)
    assert problems == [], f"{label}:\n  " + "\n  ".join(problems)

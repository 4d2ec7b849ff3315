"""Hostile input the schema fuzzer cannot generate well: bodies that are not JSON at all, huge
or deeply nested bodies, wrong media types, null bytes, giant numbers, look-alike usernames,
SQL and HTML that must come back verbatim. Each answer is a 4xx in our error shape that
changes nothing, or a success that stores exactly what was sent; never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from selfmart.app import create_app
from selfmart.kit.schema import InSchema

from .builders import auth_headers, make_store, make_user
from .support import client_with, fingerprint, settings_for

ERROR_KEYS = {"error", "message", "details", "request_id"}
STORES = "/api/v1/stores"
LOGIN = "/api/v1/auth/login"


async def _admin(session: AsyncSession) -> dict[str, str]:
    return await auth_headers(session, await make_user(session, role="super_admin"))


def assert_refused(response: httpx.Response, status: int, field: str | None = None) -> Any:
    """`response` is a refusal with `status` in our error shape, naming `field` if given."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["request_id"] == response.headers["x-request-id"]
    if field is not None:
        assert field in [d["field"] for d in body["details"]], body
    return body


# --- bodies that are not what the route reads ---------------------------------------------

UNREADABLE_BODIES = {
    "not JSON": b"this is not json",
    "truncated JSON": b'{"code": "S1", "name": ',
    "bytes that are not UTF-8": b"\x94w\xf7/\xa5\x1e",
    "a lone UTF-16 BOM": b"\xff\xfe",
    "deeply nested arrays (1e5)": b"[" * 100_000 + b"]" * 100_000,
    "deeply nested objects (1e5)": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
}


@pytest.mark.parametrize("what", sorted(UNREADABLE_BODIES))
@pytest.mark.parametrize("path", [STORES, LOGIN])
async def test_unreadable_json_body_is_422_naming_the_body(
    what: str, path: str, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = {**await _admin(session), "content-type": "application/json"}
    before = await fingerprint(session)
    r = await client.post(path, content=UNREADABLE_BODIES[what], headers=headers)
    body = assert_refused(r, 422)
    assert any(d["field"].startswith("body") for d in body["details"]), body
    assert await fingerprint(session) == before


@pytest.mark.parametrize("payload", [[], [{"code": "S1", "name": "x"}], "a string", 42, None, True])
async def test_json_that_is_not_an_object_is_422(
    payload: Any, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await _admin(session)
    before = await fingerprint(session)
    r = await client.post(STORES, json=payload, headers=headers)
    assert_refused(r, 422, "body")
    assert await fingerprint(session) == before


# --- numbers no id can be -------------------------------------------------------------------


def _integer_params(where: str) -> list[tuple[str, str, str]]:
    """(method, path, name) of every integer parameter `where` (path | query) in the API."""
    from .fuzz.harness import openapi_document

    out = []
    for path, ops in openapi_document()["paths"].items():
        for method, op in ops.items():
            for p in op.get("parameters", []):
                schema = p.get("schema", {})
                types = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
                if p["in"] == where and "integer" in types:
                    out.append((method.upper(), path, p["name"]))
    return out


def _fill(path: str, values: dict[str, object]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", str(value))
    return path.replace("{", "").replace("}", "")  # any other path parameter: its own name


@pytest.mark.parametrize("value", [2**31, 2**63, 2**64, 10**40, -(2**63) - 1, 0, -1])
async def test_ids_beyond_what_a_column_holds_are_refused_in_every_path(
    value: int, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    params = _integer_params("path")
    assert len(params) >= 10, "the walker must see the id parameters"
    headers = await _admin(session)
    before = await fingerprint(session)
    for method, path, name in params:
        r = await client.request(method, _fill(path, {name: value}), headers=headers, json={})
        if path.startswith("/api/v1/public/members/me"):
            # the member page's routes refuse a request without a member session first
            assert r.status_code == 401, r.text
            continue
        # 2**31 may be a valid 64-bit id: unknown (404) then; beyond 64 bits it is invalid
        allowed = {404, 422} if 0 < value < 2**63 else {422}
        assert r.status_code in allowed, f"{method} {path} {name}={value}: {r.text}"
        fields = [d["field"] for d in r.json()["details"]] if r.status_code == 422 else []
        if r.status_code == 422 and f"path.{name}" not in fields:
            # a valid 64-bit id may pass its own check and the request fail on something
            # else (the empty body, another path parameter left unfilled)
            assert 0 < value < 2**63, f"{method} {path} {name}={value}: {r.text}"
            assert fields, r.text
        elif r.status_code == 422:
            assert_refused(r, 422, f"path.{name}")
    assert await fingerprint(session) == before


@pytest.mark.parametrize("value", [2**63, 2**64, 10**40, -(2**64)])
async def test_integers_beyond_64_bits_in_query_parameters_are_422(
    value: int, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    params = _integer_params("query")
    assert any(name == "page" for _, _, name in params)
    headers = await _admin(session)
    for method, path, name in params:
        r = await client.request(method, _fill(path, {}), params={name: value}, headers=headers)
        if path.startswith(("/api/terminal/", "/api/v1/public/members/me")):
            # signed routes refuse an unsigned request before reading its query, and the
            # member page's a request without a member session
            assert r.status_code == 401, r.text
            continue
        assert_refused(r, 422, f"query.{name}")


@pytest.mark.parametrize("page", [0, -1, -(2**63), 100_001])
async def test_page_numbers_out_of_range_are_422(
    page: int, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    r = await client.get(STORES, params={"page": page}, headers=await _admin(session))
    assert_refused(r, 422, "query.page")
    r = await client.get(STORES, params={"size": page}, headers=await _admin(session))
    assert_refused(r, 422, "query.size")


# --- bodies too large to read ---------------------------------------------------------------

MB = 1024 * 1024


class CountingBody:
    """A request body streamed in 64 KiB chunks that counts how many the server pulled."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunk = b" " * (64 * 1024)
        for _ in range(self.total // len(chunk)):
            self.pulled += 1
            yield chunk


async def test_a_20_mb_body_is_refused_413_before_it_is_read(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = {**await _admin(session), "content-type": "application/json"}
    before = await fingerprint(session)
    body = CountingBody(20 * MB)
    r = await client.post(
        STORES, content=body, headers={**headers, "content-length": str(body.total)}
    )
    refusal = assert_refused(r, 413, "body")
    assert refusal["error"] == "payload_too_large"
    assert body.pulled == 0, "the body was read although its Content-Length was too large"
    assert r.headers["connection"] == "close"
    assert await fingerprint(session) == before


async def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """No Content-Length (chunked transfer): counted as it streams, refused at the limit."""
    headers = {**await _admin(session), "content-type": "application/json"}
    before = await fingerprint(session)
    body = CountingBody(20 * MB)
    r = await client.post(LOGIN, content=body, headers=headers)
    assert "content-length" not in r.request.headers
    assert assert_refused(r, 413, "body")["error"] == "payload_too_large"
    assert body.pulled <= 17, f"read {body.pulled} chunks of 64 KiB past a 1 MiB limit"
    assert await fingerprint(session) == before


async def test_body_limits_are_set_per_path_prefix(
    db_url: str,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    headers = {**await _admin(session), "content-type": "application/json"}
    big = b'{"code": "S1", "name": "' + b"x" * (2 * MB) + b'"}'
    limits = {"/api/v1/stores": 4 * MB, "/api/v1/users/*/reset-password": 10}
    async with client_with(
        db_url, engine, sessionmaker, max_body_bytes=MB, max_body_bytes_by_path=limits
    ) as c:
        # over the default, under the stores limit: read, then refused for what it says
        assert_refused(await c.post(STORES, content=big, headers=headers), 422, "body.name")
        assert_refused(await c.post(LOGIN, content=big, headers=headers), 413)
        r = await c.post("/api/v1/users/1/reset-password", content=b"x" * 11, headers=headers)
        assert_refused(r, 413)
        assert_refused(await c.post("/api/v1/users/1/disable", content=big, headers=headers), 413)


def test_every_operation_declares_413() -> None:
    from .fuzz.harness import openapi_document

    for path, ops in openapi_document()["paths"].items():
        for method, op in ops.items():
            assert "413" in op["responses"], f"{method.upper()} {path}"


# --- what the fuzz found ----------------------------------------------------------------------


async def test_a_product_created_with_only_its_required_fields(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """No brand given: the pinyin search keys were computed from None (a 500)."""
    r = await client.post(
        "/api/v1/products",
        json={"name": "可口可乐", "price_fen": 350},
        headers=await _admin(session),
    )
    assert r.status_code == 201, r.text
    assert r.json()["brand"] in {"", None}
    found = await client.get(
        "/api/v1/products", params={"q": "kkkl"}, headers=await _admin(session)
    )
    assert [p["name"] for p in found.json()["items"]] == ["可口可乐"]


# --- media types ------------------------------------------------------------------------------

WRONG_MEDIA = {
    "text/plain": b'{"code": "S1", "name": "x"}',
    "application/xml": b"<store><code>S1</code></store>",
    "application/x-www-form-urlencoded": b"code=S1&name=x",
    "multipart/form-data; boundary=zz": b"--zz\r\nnot a part\r\n--zz--\r\n",
    "multipart/form-data": b"no boundary at all",
    "image/png": b"\x89PNG\r\n\x1a\n",
}


@pytest.mark.parametrize("media", sorted(WRONG_MEDIA))
async def test_a_json_route_given_another_media_type_refuses_it(
    media: str, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = {**await _admin(session), "content-type": media}
    before = await fingerprint(session)
    r = await client.post(STORES, content=WRONG_MEDIA[media], headers=headers)
    assert r.status_code in {415, 422}, r.text
    assert_refused(r, r.status_code, "body" if r.status_code == 422 else None)
    assert await fingerprint(session) == before


BROKEN_MULTIPART = {
    "garbage between boundaries": ("multipart/form-data; boundary=zz", b"--zz\r\n\x00\x01--zz"),
    "no boundary": ("multipart/form-data", b"--zz\r\nContent-Disposition: form-data\r\n\r\n"),
    "JSON instead": ("application/json", b'{"file": "x"}'),
    "a part without a name": (
        "multipart/form-data; boundary=zz",
        b"--zz\r\nContent-Disposition: form-data\r\n\r\nabc\r\n--zz--\r\n",
    ),
}


@pytest.mark.parametrize("what", sorted(BROKEN_MULTIPART))
async def test_upload_routes_refuse_broken_multipart_with_422(
    what: str, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    media, content = BROKEN_MULTIPART[what]
    headers = {**await _admin(session), "content-type": media}
    product = await client.post(
        "/api/v1/products", json={"name": "测试", "price_fen": 1}, headers=headers | _JSON
    )
    before = await fingerprint(session)
    for path in ("/api/v1/products/import", f"/api/v1/products/{product.json()['id']}/images"):
        r = await client.post(path, content=content, headers=headers)
        body = assert_refused(r, 422)
        assert any(d["field"].startswith("body") for d in body["details"]), body
    assert await fingerprint(session) == before


_JSON = {"content-type": "application/json"}


# --- NUL characters: PostgreSQL cannot store them in text ----------------------------------


async def test_nul_in_a_body_string_is_422_naming_the_field(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await _admin(session)
    before = await fingerprint(session)
    r = await client.post(STORES, json={"code": "S1", "name": "a\x00b"}, headers=headers)
    assert_refused(r, 422, "body.name")
    r = await client.post(LOGIN, json={"username": "x\x00", "password": "p\x00"})
    body = assert_refused(r, 422, "body.username")
    assert "body.password" in [d["field"] for d in body["details"]]
    assert await fingerprint(session) == before


@pytest.mark.parametrize("query", ["q=a%00b", "city=%00", "q=ok&city=x%00"])
async def test_nul_in_a_query_string_is_422_naming_the_parameter(
    query: str, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    r = await client.get(f"{STORES}?{query}", headers=await _admin(session))
    name = query.split("%00")[0].rsplit("&", 1)[-1].split("=")[0]
    assert_refused(r, 422, f"query.{name}")


async def test_nul_in_a_path_is_422(client: httpx.AsyncClient, session: AsyncSession) -> None:
    r = await client.get("/api/v1/media/a%00b.png?exp=1&sig=x")
    assert_refused(r, 422, "path")


async def test_a_product_name_of_200_han_characters_is_stored_and_found(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """Its pinyin (up to 6 letters a character) overflowed the search-key columns: a 500 on
    PostgreSQL. The keys are cut to the columns' lengths."""
    from selfmart.catalog.pinyin import FULL_MAX, INITIALS_MAX
    from selfmart.models import Product

    assert Product.__table__.c.pinyin_full.type.length == FULL_MAX  # type: ignore[attr-defined]
    assert Product.__table__.c.pinyin_initials.type.length == INITIALS_MAX  # type: ignore[attr-defined]
    headers = await _admin(session)
    name, brand = "装" * 200, "双" * 100  # zhuang, shuang: the longest syllables
    r = await client.post(
        "/api/v1/products", json={"name": name, "brand": brand, "price_fen": 1}, headers=headers
    )
    assert r.status_code == 201, r.text
    r = await client.patch(
        f"/api/v1/products/{r.json()['id']}", json={"name": "床" * 200}, headers=headers
    )
    assert r.status_code == 200, r.text
    found = await client.get("/api/v1/products", params={"q": "chuangchuang"}, headers=headers)
    assert [p["name"] for p in found.json()["items"]] == ["床" * 200]


async def test_upload_routes_take_their_files_past_the_json_limit(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """A 3 MB image and a 3 MB import pass the 1 MiB default (the routes judge them); 40 MB
    does not reach the import route at all."""
    headers = await _admin(session)
    product = await client.post(
        "/api/v1/products", json={"name": "测试", "price_fen": 1}, headers=headers
    )
    blob = b"\x00" * (3 * MB)
    r = await client.post(
        f"/api/v1/products/{product.json()['id']}/images",
        files={"file": ("x.png", blob, "image/png")},
        headers=headers,
    )
    assert r.status_code == 422, r.text  # not an image: judged by the route, not cut off
    r = await client.post(
        "/api/v1/products/import", files={"file": ("x.csv", blob, "text/csv")}, headers=headers
    )
    assert r.status_code != 413, r.text
    big = CountingBody(40 * MB)
    r = await client.post(
        "/api/v1/products/import",
        content=big,
        headers={
            **headers,
            "content-type": "multipart/form-data; boundary=zz",
            "content-length": str(big.total),
        },
    )
    assert_refused(r, 413)
    assert big.pulled == 0


# --- look-alike usernames -----------------------------------------------------------------------

LOOK_ALIKES = {
    "fullwidth": "ａｄｍｉｎ",
    "cyrillic a": "\u0430dmin",
    "kelvin sign": "\u212aevin",
    "dotless i": "adm\u0131n",
    "combining accent": "admi\u0301n",
    "zero-width joiner": "ad\u200dmin",
    "right-to-left mark": "\u200fadmin",
    "ligature": "\ufb01nance",
}


@pytest.mark.parametrize("what", sorted(LOOK_ALIKES))
async def test_usernames_that_only_look_like_ascii_are_refused(
    what: str, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await _admin(session)
    before = await fingerprint(session)
    body = {
        "username": LOOK_ALIKES[what],
        "display_name": "Look Alike",
        "password": "Passw0rd!long",
        "role_ids": [],
        "store_ids": [],
    }
    r = await client.post("/api/v1/users", json=body, headers=headers)
    assert_refused(r, 422, "body.username")
    assert await fingerprint(session) == before


async def test_usernames_differing_only_in_case_are_one_username(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await _admin(session)
    body = {
        "username": "Cashier.Li",
        "display_name": "李",
        "password": "Passw0rd!long",
        "role_ids": [],
        "store_ids": [],
    }
    r = await client.post("/api/v1/users", json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["username"] == "cashier.li"
    before = await fingerprint(session)
    r = await client.post("/api/v1/users", json={**body, "username": "CASHIER.LI"}, headers=headers)
    assert_refused(r, 409, "username")
    assert await fingerprint(session) == before
    login = await client.post(LOGIN, json={"username": "CaShIeR.lI", "password": "Passw0rd!long"})
    assert login.status_code == 200, login.text
    # a look-alike of an existing username logs nobody in
    login = await client.post(
        LOGIN, json={"username": "ｃａｓｈｉｅｒ.ｌｉ", "password": "Passw0rd!long"}
    )
    assert_refused(login, 401)


# --- SQL and HTML are text --------------------------------------------------------------------

VERBATIM = [
    "'; DROP TABLE stores; --",
    "Robert'); DELETE FROM users WHERE ('1'='1",
    '" OR 1=1 --',
    "<script>alert(document.cookie)</script>",
    '<img src=x onerror="alert(1)">',
    "100% 纯_天然 \\ / 店",
    "e\u0301 vs \u00e9",  # NFD and NFC: kept as sent
    "\U0001f600 emoji \u202e reversed",
]


@pytest.mark.parametrize("text", VERBATIM)
async def test_sql_and_html_are_stored_and_returned_verbatim(
    text: str, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await _admin(session)
    r = await client.post(
        STORES,
        json={"code": "V1", "name": text, "address": text, "city": text[:64]},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith("application/json")
    store_id = r.json()["id"]
    got = (await client.get(f"{STORES}/{store_id}", headers=headers)).json()
    assert (got["name"], got["address"]) == (text, text)
    found = await client.get(STORES, params={"q": text}, headers=headers)
    assert [s["id"] for s in found.json()["items"]] == [store_id]


@pytest.mark.parametrize("wildcard", ["%", "_", "/", "\\", "%%", "[a-z]", "*"])
async def test_search_wildcards_match_only_themselves(
    wildcard: str, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_store(session, name="普通门店")
    await make_store(session, name=f"特别{wildcard}门店")
    r = await client.get(STORES, params={"q": wildcard}, headers=await _admin(session))
    assert r.status_code == 200, r.text
    assert [s["name"] for s in r.json()["items"]] == [f"特别{wildcard}门店"]


# --- numbers JSON can spell but no field can hold -------------------------------------------

ODD_NUMBERS = {
    "5000 digits": b"1" * 5000,
    "NaN": b"NaN",
    "Infinity": b"Infinity",
    "-Infinity": b"-Infinity",
    "1e400": b"1e400",
    "float": b"3.5",
    "numeric string": b'"350"',
    "true": b"true",
}


@pytest.mark.parametrize("what", sorted(ODD_NUMBERS))
async def test_odd_numbers_in_a_money_field_are_422(
    what: str, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = {**await _admin(session), "content-type": "application/json"}
    before = await fingerprint(session)
    body = b'{"name": "x", "price_fen": ' + ODD_NUMBERS[what] + b"}"
    r = await client.post("/api/v1/products", content=body, headers=headers)
    refusal = assert_refused(r, 422)
    assert any(d["field"] in {"body.price_fen", "body"} for d in refusal["details"]), refusal
    assert await fingerprint(session) == before


@pytest.mark.parametrize("value", [b"NaN", b"Infinity", b'"NaN"', b'"1e999"', b'"-0"', b"1e-999"])
async def test_odd_numbers_in_a_percent_are_refused_or_exact(
    value: bytes, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = {**await _admin(session), "content-type": "application/json"}
    body = (
        b'{"selection": {"ids": [1]}, "action": {"op": "adjust_price", "percent": ' + value + b"}}"
    )
    r = await client.post("/api/v1/products/bulk/preview", content=body, headers=headers)
    assert r.status_code in {200, 404, 422}, r.text
    if r.status_code == 422:
        assert_refused(r, 422)


# --- lax numbers: a boolean or a string where a number belongs ----------------------------


def _request_schemas() -> list[type[InSchema]]:
    create_app(settings_for("sqlite+aiosqlite:///:memory:"))  # imports every domain's schemas
    found: list[type[InSchema]] = []
    todo = list(InSchema.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def _number_fields() -> list[tuple[type[InSchema], str, bool]]:
    """(schema, field, is a list) for every integer or float field of every request body."""
    out = []
    for cls in _request_schemas():
        if cls.numbers_from_text:  # a query model: every value arrives as text
            continue
        for name, info in cls.model_fields.items():
            if info.annotation is None:
                continue
            schema = TypeAdapter(info.annotation).json_schema()
            options = schema.get("anyOf", [schema])
            types_ = {o.get("type") for o in options} - {"null"}
            if types_ and types_ <= {"integer", "number"}:
                out.append((cls, name, False))
            elif types_ == {"array"} and all(
                o.get("items", {}).get("type") in {"integer", "number"}
                for o in options
                if o.get("type") == "array"
            ):
                out.append((cls, name, True))
    return out


def test_every_number_in_a_request_body_refuses_booleans_and_strings() -> None:
    """pydantic's lax mode reads `true` as 1 and "5" as 5; a request body must not (the fuzzer
    found `{"sort_order": true}` stored as 1)."""
    fields = _number_fields()
    assert len(fields) > 50, fields  # the walk reaches the domains' schemas
    for cls, name, is_list in fields:
        for odd in (True, "5"):
            value = [odd] if is_list else odd
            with pytest.raises(ValidationError) as caught:
                cls.model_validate({name: value})
            locs = [e["loc"] for e in caught.value.errors()]
            assert (name,) in locs or (name, 0) in locs, (cls.__name__, name, odd, locs)

"""Security basics: secrets never in error bodies or logs, CORS closed unless configured,
security headers on every answer, the bearer scheme declared in the OpenAPI document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from selfmart.app import create_app
from selfmart.iam.dependencies import PUBLIC_ROUTES

from .builders import DEFAULT_PASSWORD, auth_headers, make_store, make_user
from .support import api_routes, captured_logs, client_with, settings_for
from .terminals.builders import make_active_terminal

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
HEARTBEAT = "/api/terminal/v1/heartbeat"


def _leaks(secrets: list[str], *texts: str) -> list[str]:
    return [s for s in secrets if any(s in t for t in texts)]


async def test_login_failures_and_successes_leak_no_password_or_token(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session)
    wrong = "Wr0ng-Hunter2-guess!"
    long_wrong = "L0ng-" + "p" * 1100  # past the accepted length: a validation error
    answers: list[str] = []
    with captured_logs() as logs:
        for body in (
            {"username": user.username, "password": wrong},
            {"username": "no-such-user", "password": wrong},
            {"username": user.username, "password": long_wrong},
            {"username": user.username, "password": wrong, "extra": wrong},
        ):
            r = await client.post(LOGIN, json=body)
            assert r.status_code in {401, 422}, r.text
            answers.append(r.text)
        ok = await client.post(
            LOGIN, json={"username": user.username, "password": DEFAULT_PASSWORD}
        )
        assert ok.status_code == 200
        tokens = ok.json()
        r = await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
        assert r.status_code == 200
        # the old refresh token again: reuse, the session is revoked
        reused = await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
        assert reused.status_code == 401
        answers.append(reused.text)
        bad_bearer = await client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}x"}
        )
        assert bad_bearer.status_code == 401
        answers.append(bad_bearer.text)
    assert logs, "no log line was captured: the check would prove nothing"
    secrets = [wrong, long_wrong[:40], DEFAULT_PASSWORD, tokens["refresh_token"]]
    secrets.append(tokens["access_token"])
    assert _leaks(secrets, *answers) == [], "an error body repeats a secret"
    assert _leaks(secrets, *logs) == [], "a log line holds a secret"


async def test_terminal_signature_failures_leak_no_secret(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    creds = await make_active_terminal(session, await make_store(session))
    body, headers = creds.signed_json("POST", HEARTBEAT, {"app_version": "1.0.0"})
    expected = headers["X-Selfmart-Signature"]
    forged = {**headers, "X-Selfmart-Signature": "0" * 64}
    answers = []
    with captured_logs() as logs:
        r = await client.post(HEARTBEAT, content=body, headers=forged)
        assert r.status_code == 401, r.text
        answers.append(r.text)
        # the right signature over other bytes: also refused
        r = await client.post(HEARTBEAT, content=body + b" ", headers=headers)
        assert r.status_code == 401, r.text
        answers.append(r.text)
    # the secret, and the signature the server computed (which would let anyone replay)
    secrets = [creds.secret, expected]
    assert _leaks(secrets, *answers) == []
    assert _leaks(secrets, *logs) == []


async def test_rotated_key_and_activation_secrets_only_in_their_one_answer(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """The secrets shown once are in that answer and in no log line or audit change set."""
    store = await make_store(session)
    headers = await auth_headers(session, await make_user(session))
    creds = await make_active_terminal(session, store)
    with captured_logs() as logs:
        r = await client.post(f"/api/v1/terminals/{creds.terminal.id}/rotate-key", headers=headers)
        assert r.status_code == 200, r.text
        secret = r.json()["secret"]
        audit = await client.get(
            "/api/v1/audit-logs", params={"entity_type": "terminal"}, headers=headers
        )
    assert secret not in audit.text
    assert _leaks([secret], *logs) == []


# --- CORS -------------------------------------------------------------------------------------


def _preflight(origin: str) -> dict[str, str]:
    return {
        "origin": origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }


async def test_cors_is_closed_by_default(client: httpx.AsyncClient) -> None:
    r = await client.options(LOGIN, headers=_preflight("https://evil.example"))
    assert "access-control-allow-origin" not in r.headers
    r = await client.post(
        LOGIN, json={"username": "x", "password": "y"}, headers={"origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in r.headers


async def test_cors_opens_only_for_configured_origins(
    db_url: str, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    allowed = "https://console.example.com"
    async with client_with(db_url, engine, sessionmaker, cors_origins=[allowed]) as c:
        r = await c.options(LOGIN, headers=_preflight(allowed))
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == allowed
        assert "access-control-allow-credentials" not in r.headers  # bearer tokens, no cookies
        r = await c.options(LOGIN, headers=_preflight("https://evil.example"))
        assert r.headers.get("access-control-allow-origin") != "https://evil.example"
        # errors carry CORS headers too, so the console can read them
        r = await c.post(LOGIN, json={}, headers={"origin": allowed})
        assert r.status_code == 422
        assert r.headers["access-control-allow-origin"] == allowed


# --- headers and the document -------------------------------------------------------------

SECURITY_HEADERS = ["x-content-type-options", "x-frame-options", "content-security-policy"]


@pytest.mark.parametrize(
    ("method", "path", "kw"),
    [
        ("GET", "/api/health", {}),
        ("GET", "/api/v1/users", {}),  # 401
        ("POST", LOGIN, {"content": b"{"}),  # 422
        ("POST", LOGIN, {"content": b" " * (2 * 1024 * 1024)}),  # 413 from middleware
        ("GET", "/api/v1/stores?q=%00", {}),  # 422 from middleware
    ],
)
async def test_every_answer_carries_the_security_headers(
    method: str, path: str, kw: dict[str, Any], client: httpx.AsyncClient
) -> None:
    r = await client.request(method, path, **kw)
    for name in SECURITY_HEADERS:
        assert name in r.headers, f"{method} {path} → {r.status_code} lacks {name}"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_openapi_declares_the_bearer_scheme_on_every_protected_operation() -> None:
    app = create_app(settings_for("sqlite+aiosqlite:///:memory:"))
    doc = app.openapi()
    schemes = doc["components"]["securitySchemes"]
    bearer = [name for name, s in schemes.items() if s == {**s, "type": "http", "scheme": "bearer"}]
    assert bearer, schemes
    protected = 0
    for route in api_routes(app):
        if (route.method, route.path) in PUBLIC_ROUTES or route.path.startswith("/api/terminal"):
            continue
        op = doc["paths"][route.path.replace(":path", "")][route.method.lower()]
        if "401" not in op["responses"]:
            continue  # signed media links: the signature is the credential
        # The member page's own routes carry the member's session, not a console token.
        scheme = "MemberSession" if route.path.startswith("/api/v1/public/members/") else bearer[0]
        assert any(scheme in s for s in op.get("security", [])), route.id
        protected += 1
    assert protected >= 40


async def test_the_console_route_serves_nothing_outside_its_folder(
    db_url: str,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<html>console</html>")
    (tmp_path / "secret.txt").write_text("TOP-SECRET")
    async with client_with(db_url, engine, sessionmaker, static_dir=dist) as c:
        for path in (
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/..%2fsecret.txt",
            "/%2e%2e%2fsecret.txt",
        ):
            r = await c.get(path)
            assert "TOP-SECRET" not in r.text, path
        assert (await c.get("/some/spa/route")).text == "<html>console</html>"
        r = await c.get("/api/v1/no-such-route")
        assert r.status_code == 404
        assert r.json()["error"] == "not_found"
        r = await c.post("/api/v1/no-such-route", json={})
        assert r.status_code in {404, 405}
        assert set(r.json()) == {"error", "message", "details", "request_id"}

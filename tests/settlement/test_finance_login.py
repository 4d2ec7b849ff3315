"""The demo's finance login (printed by `serve --print-logins`): a chain-wide finance team
that opens reconciliation and settlement, and nothing else."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.config import get_settings
from selfmart.demo import DEMO_LOGINS, seed_logins
from selfmart.iam.service import sync_builtin_roles
from selfmart.models import User
from tests.builders import auth_headers
from tests.test_access_matrix import PROTECTED, UNKNOWN_ID

FINANCE = {
    "reconciliation:read", "reconciliation:run", "reconciliation:resolve",
    "settlement:read", "settlement:write", "settlement:approve",
}  # fmt: skip


@pytest.fixture
def demo_mode(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`make run`'s demo mode: the printed passwords need no change before use."""
    monkeypatch.setenv("SELFMART_DEMO", "true")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("demo_mode")
async def test_the_demo_finance_login_opens_reconciliation_and_settlement_only(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    (login,) = [x for x in DEMO_LOGINS if x.username == "finance"]
    assert (login.role, login.stores) == ("finance", ())  # every store
    await seed_logins(session, await sync_builtin_roles(session), {}, [login])
    user = await session.scalar(select(User).where(User.username == "finance"))
    assert user is not None
    headers = await auth_headers(session, user)

    me = await client.get("/api/v1/auth/me", headers=headers)
    assert me.status_code == 200, me.text
    assert set(me.json()["permissions"]) == FINANCE
    assert me.json()["store_ids"] is None  # every store

    # Their pages answer (ranges over every store's accounts)...
    for url in (
        "/api/v1/reconciliation/calendar?date_from=2026-11-01&date_to=2026-11-30",
        "/api/v1/reconciliation/differences",
        "/api/v1/settlement/stores?date_from=2026-11-01&date_to=2026-11-30",
        "/api/v1/settlement/fees?date_from=2026-11-01&date_to=2026-11-30",
        "/api/v1/settlement/statements",
    ):
        r = await client.get(url, headers=headers)
        assert r.status_code == 200, (url, r.text)
    # ...and every other guarded route is refused before anything is looked up.
    refused, let_in = [], []
    for route in PROTECTED:
        url = route.path.format(**dict.fromkeys(route.params, UNKNOWN_ID))
        r = await client.request(route.method, url, headers=headers)
        if route.perm in FINANCE:
            let_in.append(route.id)
            assert r.status_code != 403, (route.id, r.text)
        else:
            refused.append(route.id)
            assert r.status_code == 403, (route.id, r.status_code, r.text)
    assert let_in
    assert refused

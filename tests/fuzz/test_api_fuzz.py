"""Schema-driven fuzzing of every operation in our OpenAPI document, on both databases.

For each operation: cases that obey the schema and cases that break it, sent as a super admin
(valid path ids are also swapped for real resources, made by tests/matrix.py's factories, so
the fuzz reaches past "404"), and cases sent without credentials. Every response must obey
`harness.judge` (no 5xx, a declared status, our error shape, a 422 that names a field),
schemathesis' schema checks, and every 4xx must leave the database as it found it.

A new route is covered as soon as it is in the document: there is no per-route code here.
`SELFMART_FUZZ_EXAMPLES=200 pytest tests/fuzz` fuzzes deeper.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest
from schemathesis.generation import GenerationMode
from schemathesis.generation.case import Case
from sqlalchemy.ext.asyncio import AsyncSession

from ..builders import auth_headers, make_store, make_user
from ..matrix import ID_PARAMS
from ..support import fingerprint
from . import harness
from .harness import EXAMPLES, UNAUTH_EXAMPLES, Verdict

LABELS = sorted(harness.operations())
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}

#: (case, credentials or None, path ids to use instead of the generated ones)
Plan = list[tuple[Case[Any], dict[str, str] | None, dict[str, Any] | None]]


def test_the_fuzz_sees_every_route() -> None:
    """The document the fuzz reads holds the routes the app serves (none hidden from it)."""
    assert "POST /api/v1/auth/login" in LABELS
    assert "PATCH /api/v1/users/{user_id}" in LABELS
    assert len(LABELS) >= 40


async def _super_admin(session: AsyncSession) -> dict[str, str]:
    return await auth_headers(session, await make_user(session, role="super_admin"))


def _uses_bearer(label: str) -> bool:
    method, path = label.split(" ", 1)
    op = harness.openapi_document()["paths"][path][method.lower()]
    return any("HTTPBearer" in s for s in op.get("security", []))


@pytest.mark.parametrize("label", LABELS)
async def test_fuzz(label: str, client: httpx.AsyncClient, session: AsyncSession) -> None:
    method, path = label.split(" ", 1)
    declared = set(harness.openapi_document()["paths"][path][method.lower()]["responses"])
    store = await make_store(session)
    real_ids = {
        name: await ID_PARAMS[name].factory(session, store)
        for name in harness.path_params(label)
        if name in ID_PARAMS
    }
    can_use_real_ids = bool(real_ids) and len(real_ids) == len(harness.path_params(label))
    auth = await _super_admin(session)

    plan: Plan = []
    for case in harness.cases(label, GenerationMode.POSITIVE, EXAMPLES):
        plan.append((case, auth, None))
        if can_use_real_ids:
            plan.append((case, auth, real_ids))
    plan += [(c, auth, None) for c in harness.cases(label, GenerationMode.NEGATIVE, EXAMPLES)]
    public = harness.is_public(label)
    n_anon = EXAMPLES if public else UNAUTH_EXAMPLES
    for mode in (
        [GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if public else [GenerationMode.POSITIVE]
    ):
        plan += [(c, None, None) for c in harness.cases(label, mode, n_anon, with_auth=False)]

    streaming = harness.is_stream(label)
    if streaming:
        # An opened event stream never ends, and cutting it off mid-query can leave the shared
        # test connection busy: only the refusals are fuzzed here (the stream's own tests
        # cover what it sends).
        plan = [(c, creds, o) for c, creds, o in plan if creds is None]
    verdict = Verdict(label)
    statuses: Counter[int] = Counter()
    may_write = harness.REFUSALS_THAT_WRITE.get(label, set())
    before = await fingerprint(session)
    for case, creds, override in plan:
        if creds is not None:
            creds = auth
        try:
            request = harness.build_request(client, case, auth=creds, path_override=override)
        except (UnicodeEncodeError, httpx.InvalidURL, httpx.LocalProtocolError, TypeError):
            continue  # no HTTP client could send it: not the server's concern
        try:
            if streaming:
                response = await asyncio.wait_for(client.send(request), harness.STREAM_SECONDS)
            else:
                response = await client.send(request)
        except TimeoutError:
            statuses[200 if creds else 0] += 1  # the stream opened and kept streaming
            before = await fingerprint(session)
            continue
        except AssertionError as exc:  # the audit guard of the `client` fixture
            verdict.fail(request, "2xx", str(exc))
            before = await fingerprint(session)
            continue
        except Exception as exc:  # an error that escaped every handler: a 500
            verdict.fail(request, 500, f"{type(exc).__name__}: {exc}")
            before = await fingerprint(session)
            continue
        statuses[response.status_code if creds else 0] += 1
        harness.judge(verdict, case, request, response, declared)
        harness.schemathesis_checks(verdict, case, request, response)
        if response.is_success and method in MUTATING:
            # the change may have been to the caller (logged out, disabled, demoted)
            auth = await _super_admin(session)
        after = await fingerprint(session)
        if 400 <= response.status_code < 500:
            # a 403 is written to the operation log (security.denied) in a transaction of its
            # own; anything else a refusal changes is a defect
            allowed = may_write | ({"audit_logs"} if response.status_code == 403 else set())
            changed = sorted(t for t in after if after[t] != before[t] and t not in allowed)
            if changed:
                verdict.fail(
                    request,
                    response.status_code,
                    f"refused, yet changed tables {changed}",
                    response.text,
                )
        before = after

    if _uses_bearer(label) and label not in harness.REFUSALS_THAT_WRITE and not streaming:
        authenticated = sum(n for s, n in statuses.items() if s)
        assert statuses[401] < authenticated, (
            f"{label}: every authenticated case was refused 401: the fuzz reached nothing"
        )
    assert not verdict.problems, f"{label}: {len(verdict.problems)} problem(s)\n  " + "\n  ".join(
        verdict.problems[:15]
    )

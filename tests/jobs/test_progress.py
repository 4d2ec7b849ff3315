"""job_runs: start_job queues after commit, the body reports progress, GET /jobs/{id} shows it
to its owner (and to a super admin) only."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.iam.actor import Actor
from selfmart.iam.permissions import Perm
from selfmart.jobs import runtime
from selfmart.jobs import service as job_service
from selfmart.kit import aftercommit
from selfmart.models import User
from tests.builders import auth_headers, make_role, make_store, make_user

from .progress_jobs import RUNS, SEEN_PROGRESS


def _actor(user: User, perms: list[str] | None = None) -> Actor:
    return Actor(kind="user", id=user.id, name=user.username, permissions=frozenset(perms or []))


async def _commit(session: AsyncSession) -> None:
    """What the request's session scope does: commit, then the after-commit work. The test's
    session stays inside the test's transaction (a flush), so nothing outlives the test."""
    await session.flush()
    await aftercommit.run_pending(session)


async def test_job_runs_after_commit_with_progress_and_result(
    session: AsyncSession, client: httpx.AsyncClient, jobs: Any
) -> None:
    user = await make_user(session)
    token = uuid.uuid4().hex
    run = await job_service.start_job(
        session, kind="test.count", created_by=_actor(user), params={"n": 3, "token": token}
    )
    assert (run.status, run.progress, run.created_by) == ("queued", 0, user.id)
    assert token not in RUNS  # nothing runs before commit
    await _commit(session)
    assert RUNS.count(token) == 1
    assert SEEN_PROGRESS[token] == [1, 2, 3]  # each report was visible while the job ran

    r = await client.get(f"/api/v1/jobs/{run.id}", headers=await auth_headers(session, user))
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "succeeded"
    assert (body["progress"], body["total"]) == (3, 3)
    assert body["result"] == {"counted": 3, "label": "计数"}
    assert body["error"] is None
    assert body["finished_at"] is not None
    assert set(body) == {
        "id",
        "kind",
        "status",
        "progress",
        "total",
        "result",
        "error",
        "created_at",
        "finished_at",
    }


async def test_failing_job_is_marked_failed(
    session: AsyncSession, client: httpx.AsyncClient, jobs: Any
) -> None:
    user = await make_user(session)
    run = await job_service.start_job(session, kind="test.explode", created_by=_actor(user))
    await _commit(session)
    r = await client.get(f"/api/v1/jobs/{run.id}", headers=await auth_headers(session, user))
    body = r.json()
    assert body["status"] == "failed"
    # An unexpected exception's text is for the server log, not for the reader: a code only.
    assert body["error"] == {"code": "internal_error", "details": []}
    assert "header row" not in r.text
    assert (body["progress"], body["total"]) == (1, 10)
    assert body["finished_at"] is not None


async def test_a_job_refused_with_an_app_error_keeps_its_code_and_details(
    session: AsyncSession, client: httpx.AsyncClient, jobs: Any
) -> None:
    """The console words a failed job from its code and details in the reader's language."""
    user = await make_user(session)
    run = await job_service.start_job(session, kind="test.refuse", created_by=_actor(user))
    await _commit(session)
    r = await client.get(f"/api/v1/jobs/{run.id}", headers=await auth_headers(session, user))
    body = r.json()
    assert body["status"] == "failed"
    assert body["error"] == {
        "code": "validation_error",
        "details": [{"field": "file", "reason": "not_a_spreadsheet", "message": "not xlsx"}],
    }


async def test_a_run_is_not_started_twice(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], app: Any
) -> None:
    """A duplicate delivery of the same job finds it no longer queued and leaves it."""
    from .progress_jobs import count

    token = uuid.uuid4().hex
    run = await job_service.start_job(session, kind="test.count", params={"n": 1, "token": token})
    aftercommit.discard(session)
    async with runtime.running(app.state.settings, sessionmaker):
        await job_service.execute(run.id, count)
        await job_service.execute(run.id, count)
    assert RUNS.count(token) == 1
    await session.refresh(run)
    assert run.status == "succeeded"


async def test_unknown_job_kind_is_refused(session: AsyncSession) -> None:
    with pytest.raises(LookupError, match="unknown job"):
        await job_service.start_job(session, kind="no.such.job")


async def test_jobs_are_visible_to_their_owner_and_super_admins_only(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    store = await make_store(session)
    role = await make_role(session, [Perm.JOB_READ])
    owner = await make_user(session, role=role, stores=[store])
    other = await make_user(session, role=role, stores=[store])
    run = await job_service.start_job(session, kind="test.count", created_by=_actor(owner))
    system_run = await job_service.start_job(session, kind="test.count")  # by the system
    aftercommit.discard(session)

    url = f"/api/v1/jobs/{run.id}"
    r = await client.get(url, headers=await auth_headers(session, owner))
    assert (r.status_code, r.json()["status"]) == (200, "queued")
    other_headers = await auth_headers(session, other)
    r = await client.get(url, headers=other_headers)
    assert (r.status_code, r.json()["error"]) == (404, "not_found")
    r = await client.get(f"/api/v1/jobs/{system_run.id}", headers=other_headers)
    assert r.status_code == 404

    boss = await auth_headers(session, await make_user(session))  # super admin
    assert (await client.get(url, headers=boss)).status_code == 200
    assert (await client.get(f"/api/v1/jobs/{system_run.id}", headers=boss)).status_code == 200
    assert (await client.get("/api/v1/jobs/999999999", headers=boss)).status_code == 404

    cashier = await make_user(session, role="cashier", stores=[store])
    r = await client.get(url, headers=await auth_headers(session, cashier))
    assert r.status_code == 403
    assert (await client.get(url)).status_code == 401

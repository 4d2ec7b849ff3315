"""HTTP routes of the jobs domain: a long job's progress."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from selfmart.deps import SessionDep
from selfmart.errors import error_responses
from selfmart.iam.actor import Actor
from selfmart.iam.dependencies import require
from selfmart.iam.permissions import Perm
from selfmart.jobs import service as jobs
from selfmart.jobs.schemas import JobRead
from selfmart.kit.ids import BigPathId
from selfmart.models import JobRun

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get(
    "/{job_id}",
    response_model=JobRead,
    operation_id="get_job",
    responses=error_responses(401, 403, 404),
)
async def get_job(
    job_id: BigPathId, session: SessionDep, actor: Annotated[Actor, require(Perm.JOB_READ)]
) -> JobRun:
    """A job's status and progress: your own jobs (a super admin sees every job)."""
    return await jobs.get_job(session, actor, job_id)

"""Test-only outbox topics and jobs, registered before any test here runs."""

from . import handlers as _handlers  # noqa: F401
from . import progress_jobs as _progress_jobs  # noqa: F401

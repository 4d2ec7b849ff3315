"""The broker and scheduler that `selfmart worker` and `selfmart scheduler` processes load.

Importing this module builds them from the environment's settings (SELFMART_REDIS_URL must be
set). A worker process installs a runtime with its own database engine when it starts.
"""

from __future__ import annotations

from taskiq import TaskiqEvents, TaskiqState

from selfmart.config import get_settings
from selfmart.db import make_engine, make_sessionmaker
from selfmart.jobs import runtime
from selfmart.monitoring import machines

settings = get_settings()
broker = runtime.build_broker(settings)
scheduler = runtime.build_scheduler(broker, settings)


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def _worker_startup(state: TaskiqState) -> None:
    engine = make_engine(settings.database_url)
    state.engine = engine
    runtime.install(
        runtime.Runtime(settings=settings, sessionmaker=make_sessionmaker(engine), broker=broker)
    )
    # a machine that runs only workers is watched too (host alert rules, monitoring page)
    state.machine_publisher = machines.Publisher(settings, role=machines.WORKER)
    state.machine_publisher.start()


@broker.on_event(TaskiqEvents.WORKER_SHUTDOWN)
async def _worker_shutdown(state: TaskiqState) -> None:
    await state.machine_publisher.stop()
    runtime.uninstall()
    await state.engine.dispose()

"""The `selfmart` command: serve, migrate, seed-demo, create-admin, openapi, worker, scheduler."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click
import uvicorn

from selfmart.config import get_settings

T = TypeVar("T")


def _with_session(fn: Callable[..., Awaitable[T]]) -> T:
    from selfmart.db import make_engine, make_sessionmaker
    from selfmart.kit import aftercommit

    async def run() -> T:
        engine = make_engine(get_settings().database_url)
        try:
            async with make_sessionmaker(engine)() as session:
                try:
                    result = await fn(session)
                except BaseException:
                    aftercommit.discard(session)
                    raise
                await session.commit()
                # what the command's services left for after the commit (as a request's do)
                await aftercommit.run_pending(session)
                return result
        finally:
            await engine.dispose()

    return asyncio.run(run())


@click.group()
def main() -> None:
    """selfmart back office."""


@main.command()
def migrate() -> None:
    """Apply every database migration, then make the built-in roles what this version
    defines (a role narrowed or widened by an upgrade is right before anyone logs in)."""
    from selfmart import migrate as m
    from selfmart.iam.service import sync_builtin_roles

    settings = get_settings()
    if settings.is_sqlite:
        path = settings.database_url.split("///", 1)[-1]
        from pathlib import Path

        Path(path).parent.mkdir(parents=True, exist_ok=True)
    m.upgrade(settings.database_url)
    click.echo("migrations applied")
    roles = _with_session(sync_builtin_roles)
    click.echo(f"built-in roles in sync ({len(roles)})")


@main.command("seed-demo")
def seed_demo() -> None:
    """Load the demo chain (idempotent)."""
    from selfmart.demo import seed_demo as seed

    _with_session(seed)
    click.echo("demo data loaded")


@main.command("check-stock")
@click.option("--store-id", type=int, default=None, help="check one store only")
def check_stock(store_id: int | None) -> None:
    """Verify that every cached stock balance equals the sum of its ledger movements."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from selfmart.inventory.checks import Mismatch, find_mismatches

    async def run(session: AsyncSession) -> list[Mismatch]:
        return await find_mismatches(session, store_id)

    mismatches = _with_session(run)
    for m in mismatches:
        click.echo(
            f"MISMATCH store={m.store_id} product={m.product_id} "
            f"balance={m.balance} ledger={m.ledger_sum}"
        )
    if mismatches:
        click.echo(f"{len(mismatches)} balance(s) differ from the ledger", err=True)
        sys.exit(1)
    click.echo("stock balances match the ledger")


@main.command()
@click.option("--date", "day", required=True, help="the bill day, YYYY-MM-DD (Beijing)")
@click.option("--account", "account_id", type=int, default=None, help="one payment account")
def reconcile(day: str, account_id: int | None) -> None:
    """Download and reconcile the platforms' bills of one day (every enabled account)."""
    from datetime import date

    from sqlalchemy.ext.asyncio import AsyncSession

    from selfmart.iam.actor import job_actor
    from selfmart.reconciliation.tasks import reconcile_accounts

    try:
        bill_day = date.fromisoformat(day)
    except ValueError:
        raise click.BadParameter("not a date YYYY-MM-DD", param_hint="--date") from None

    async def run(session: AsyncSession) -> list[tuple[int, str, str | None]]:
        return await reconcile_accounts(
            session, bill_day, actor=job_actor("cli.reconcile"), account_id=account_id
        )

    results = _with_session(run)
    for id_, status, error in results:
        refused = f" refused: {error}" if error else ""
        click.echo(f"account={id_} date={bill_day} status={status}{refused}")
    if not results:
        click.echo("no payment account to reconcile", err=True)
        sys.exit(1)
    if any(error for _, _, error in results):
        sys.exit(1)


@main.command("check-money")
@click.option("--date", "day", default=None, help="one day, YYYY-MM-DD (default: every day)")
def check_money(day: str | None) -> None:
    """Verify per store and day that orders' paid less refunded equals payments captured less
    refunds given, and that every reconciled bill day's differences are resolved with a note;
    exit 1 naming each that does not tie out."""
    from datetime import date

    from sqlalchemy.ext.asyncio import AsyncSession

    from selfmart.reconciliation.checks import Report
    from selfmart.reconciliation.checks import check_money as check

    only: date | None = None
    if day is not None:
        try:
            only = date.fromisoformat(day)
        except ValueError:
            raise click.BadParameter("not a date YYYY-MM-DD", param_hint="--date") from None

    async def run(session: AsyncSession) -> Report:
        return await check(session, day=only)

    report = _with_session(run)
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        click.echo(
            f"{len(report.mismatches)} store day(s) and {len(report.unresolved)} bill day(s) "
            "do not tie out",
            err=True,
        )
        sys.exit(1)
    click.echo(
        f"money ties out: {report.store_days} store day(s), {report.bill_days} reconciled bill(s)"
    )


@main.command("check-points")
def check_points() -> None:
    """Verify that every member's points balance equals their ledger and their award lots."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from selfmart.members.checks import Mismatch, find_mismatches

    async def run(session: AsyncSession) -> list[Mismatch]:
        return await find_mismatches(session)

    mismatches = _with_session(run)
    for m in mismatches:
        click.echo(
            f"MISMATCH member={m.member_no} id={m.member_id} "
            f"balance={m.balance} ledger={m.ledger_sum} lots={m.lots_sum}"
        )
    if mismatches:
        click.echo(f"{len(mismatches)} member balance(s) differ from the ledger", err=True)
        sys.exit(1)
    click.echo("points balances match the ledger")


@main.command("maintenance")
@click.argument("switch", type=click.Choice(["on", "off", "status"]))
@click.option("--message", default="", help="shown to console users in the banner")
def maintenance_mode(switch: str, message: str) -> None:
    """Turn maintenance mode on or off (writes refused with 503 `maintenance`), or show it."""
    from dataclasses import replace
    from functools import partial

    from sqlalchemy.ext.asyncio import AsyncSession

    from selfmart.iam.actor import SYSTEM
    from selfmart.kit import aftercommit, invalidation
    from selfmart.maintenance import service as maintenance

    async def run(session: AsyncSession) -> maintenance.State:
        if switch == "status":
            return await maintenance.get(session)
        actor = replace(SYSTEM, name=f"cli:{getpass.getuser()}")
        state = await maintenance.change(session, on=switch == "on", message=message, actor=actor)
        # every API process forgets its cached flag once this commits (with Redis)
        aftercommit.on_commit(
            session, partial(invalidation.publish, get_settings(), maintenance.INVALIDATION)
        )
        return state

    state = _with_session(run)
    since = f" since {state.since.isoformat()}" if state.since else ""
    by = f" by {state.by}" if state.by else ""
    click.echo(f"maintenance mode {'on' if state.on else 'off'}{since}{by}")
    if state.on and state.message:
        click.echo(f"message: {state.message}")


@main.command("rebuild-analytics")
def rebuild_analytics() -> None:
    """Throw the sales summaries away and compute them again from the raw orders."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from selfmart.analytics import refresh

    async def run(session: AsyncSession) -> int:
        return await refresh.rebuild(session)

    days = _with_session(run)
    click.echo(f"sales summaries rebuilt: {days} store day(s)")


@main.command("check-analytics")
def check_analytics() -> None:
    """Recompute every sales summary from the raw orders; exit 1 naming any difference."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from selfmart.analytics.refresh import CheckResult, check

    async def run(session: AsyncSession) -> CheckResult:
        return await check(session)

    result = _with_session(run)
    for d in result.differences:
        click.echo(
            f"MISMATCH {d.table} store={d.store_id} day={d.day.isoformat()}"
            f"{' key=' + d.key if d.key else ''} {d.column}: "
            f"stored={d.stored} raw={d.expected}"
        )
    if result.pending:
        click.echo(f"{result.pending} store day(s) changed since the last refresh, not checked")
    if result.scoped_unbuilt:
        click.echo(
            "analytics_category_days, analytics_category_members, analytics_product_members and"
            " analytics_product_days.refunds were never built from the orders summarised before"
            " this version: run selfmart rebuild-analytics",
            err=True,
        )
    if result.differences or result.scoped_unbuilt:
        if result.differences:
            click.echo(
                f"{len(result.differences)} summary figure(s) differ from the orders", err=True
            )
        sys.exit(1)
    click.echo(f"sales summaries match the orders ({result.checked} store day(s))")


@main.command("partition-order-lines")
def partition_order_lines() -> None:
    """PostgreSQL: partition the order lines by month (run again: add the months ahead).

    One transaction with an exclusive lock on the order lines: turn maintenance mode on and
    take a backup first (docs/analytics.md, "Partitioning order lines by month")."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from selfmart.orders.partitioning import Outcome, PartitioningUnsupported, partition

    async def run(session: AsyncSession) -> Outcome:
        return await partition(session)

    try:
        out = _with_session(run)
    except PartitioningUnsupported as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    if out.converted:
        click.echo(f"order lines partitioned by month: {out.lines} line(s) moved")
        for fk in out.dropped_foreign_keys:
            click.echo(f"dropped foreign key {fk} (checked by the refund service)")
    click.echo(f"partitions made: {', '.join(out.created) if out.created else 'none needed'}")


@main.command("create-admin")
@click.option("--username", required=True, help="login name of the new super admin")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="asked for when not given",
)
@click.option("--display-name", default=None)
def create_admin(username: str, password: str, display_name: str | None) -> None:
    """Create a super admin, who must change the password at first login."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from selfmart.errors import AppError
    from selfmart.iam import service

    async def create(session: AsyncSession) -> str:
        user = await service.create_super_admin(
            session, username=username, password=password, display_name=display_name
        )
        return user.username

    try:
        name = _with_session(create)
    except AppError as exc:
        reasons = "; ".join(
            f"{d.field}: {d.message or d.reason}" if d.field else (d.message or d.reason)
            for d in exc.details
        )
        raise click.ClickException(f"{exc.message}" + (f" ({reasons})" if reasons else "")) from exc
    except ValueError as exc:  # the username is not acceptable
        raise click.ClickException(f"username: {exc}") from exc
    click.echo(f"super admin {name} created; the password must be changed at first login")


@main.command()
@click.option("--host", default=None)
@click.option("--port", default=None, type=int)
@click.option("--print-logins", is_flag=True, help="print the demo logins once serving")
def serve(host: str | None, port: int | None, print_logins: bool) -> None:
    """Serve the API and the console."""
    from selfmart.app import create_app

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    banner = _logins_banner(f"http://{host}:{port}") if print_logins else None
    server = _Server(
        uvicorn.Config(create_app(settings), host=host, port=port, log_config=None), banner
    )
    # uvicorn shuts down gracefully on Ctrl-C, then raises the signal again for the default
    # handler; `uvicorn.run` swallows that KeyboardInterrupt, and so must we (or click reports
    # "Aborted!" and exits 1 after a clean stop).
    with contextlib.suppress(KeyboardInterrupt):
        server.run()


def _logins_banner(url: str) -> str:
    """What a newcomer needs once the server runs: where to go and how to log in."""
    from selfmart.demo import DEMO_LOGINS

    lines = [
        "",
        f"  selfmart console: {url}",
        f"  API docs:         {url}/api/docs",
        "  demo logins (username / password / role):",
    ]
    for login in DEMO_LOGINS:
        scope = ", ".join(login.stores) or "all stores"
        lines.append(f"    {login.username:<12} {login.password:<14} {login.role} ({scope})")
    lines += ["  Ctrl-C stops the server.", ""]
    return "\n".join(lines)


class _Server(uvicorn.Server):
    """uvicorn's server, printing the banner after its own start-up lines, so the URL and the
    logins are the last thing on the screen."""

    def __init__(self, config: uvicorn.Config, banner: str | None) -> None:
        super().__init__(config)
        self.banner = banner

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.banner:
            click.echo(self.banner)


def _needs_redis(command: str) -> None:
    settings = get_settings()
    if not settings.redis_url:
        raise click.ClickException(
            f"`selfmart {command}` needs SELFMART_REDIS_URL; without Redis, jobs and schedules "
            "run inside `selfmart serve`"
        )
    from selfmart.kit.logging import configure_logging

    configure_logging(settings.log_level, settings.log_json)


@main.command()
@click.option("--workers", default=2, show_default=True, help="worker processes")
@click.option(
    "--max-async-tasks", default=50, show_default=True, help="concurrent jobs per process"
)
def worker(workers: int, max_async_tasks: int) -> None:
    """Run background jobs from the Redis queue (scale out: as many as the work needs)."""
    _needs_redis("worker")
    from taskiq.cli.worker.args import WorkerArgs
    from taskiq.cli.worker.run import run_worker

    status = run_worker(
        WorkerArgs(
            broker="selfmart.jobs.worker:broker",
            modules=[],
            tasks_pattern=(),
            configure_logging=False,
            workers=workers,
            max_async_tasks=max_async_tasks,
            wait_tasks_timeout=30,
            shutdown_timeout=10,
        )
    )
    sys.exit(status or 0)


@main.command()
def scheduler() -> None:
    """Fire the periodic jobs onto the Redis queue (several may run: one sends, the others
    stand by to take over)."""
    _needs_redis("scheduler")
    import faulthandler
    import signal

    from taskiq.cli.scheduler.args import SchedulerArgs

    # `kill -USR1 <pid>` prints every thread's stack to stderr: where a scheduler that does not
    # stop (or does not send) is waiting
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    from taskiq.cli.scheduler.run import run_scheduler

    from selfmart.jobs import scheduler_process

    args = SchedulerArgs(
        scheduler="selfmart.jobs.worker:scheduler",
        modules=[],
        tasks_pattern=(),
        configure_logging=False,
    )
    try:
        # Ctrl-C / SIGTERM stop it within a bounded time (see jobs/scheduler_process.py)
        scheduler_process.run(run_scheduler(args))
    except KeyboardInterrupt:  # before the loop took the signals (still importing)
        pass
    click.echo("scheduler stopped")


@main.group()
def sandbox() -> None:
    """Our sandboxes of WeChat Pay, Alipay and UnionPay (served at /sandbox/...)."""


@sandbox.command("credentials")
def sandbox_credentials() -> None:
    """Print the sandboxes' merchant credentials as one JSON object (wechat, alipay,
    unionpay): what a merchant enters in the channel settings to use them."""
    from selfmart.payments.sandboxes import printed

    json.dump(printed(get_settings()), sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


@main.command("rotate-secrets")
def rotate_secrets() -> None:
    """Re-seal the payment channel secrets under the current SELFMART_SECRET_KEY (run after
    moving the old key to SELFMART_SECRET_KEYS_PREVIOUS; the server keeps working meanwhile)."""
    from selfmart.payments.accounts import reseal_all

    count = _with_session(reseal_all)
    click.echo(f"{count} payment account(s) re-sealed under the current key")


@main.command()
def backup() -> None:
    """Back up the database and uploaded files into one archive in SELFMART_BACKUP_DIR (and on
    S3 when SELFMART_BACKUP_S3_BUCKET is set), keeping SELFMART_BACKUP_KEEP archives."""
    from selfmart.backup import service as backups
    from selfmart.backup.exceptions import BackupFailed

    try:
        result = asyncio.run(backups.backup(get_settings()))
    except BackupFailed as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"backup written: {result.path} ({result.size} bytes)")
    if result.s3_key:
        click.echo(f"uploaded to s3://{get_settings().backup_s3_bucket}/{result.s3_key}")
    for name in result.deleted:
        click.echo(f"deleted old backup {name}")


@main.command()
@click.argument("archive", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="verify the archive and say what would change")
def restore(archive: Path, dry_run: bool) -> None:
    """Restore a backup archive (stop the API and workers first). The archive is verified whole
    before anything is touched."""
    from selfmart.backup import service as backups
    from selfmart.backup.exceptions import ArchiveInvalid, BackupFailed

    try:
        plan = asyncio.run(backups.restore(get_settings(), archive, dry_run=dry_run))
    except (ArchiveInvalid, BackupFailed) as exc:
        raise click.ClickException(f"refused, nothing was changed: {exc.message}") from exc
    for line in plan.lines():
        click.echo(line)
    click.echo("dry run: nothing was changed" if dry_run else "restored")


@main.command()
def openapi() -> None:
    """Print the OpenAPI document (the console's client is generated from it)."""
    from selfmart.app import create_app

    json.dump(create_app().openapi(), sys.stdout, ensure_ascii=False, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

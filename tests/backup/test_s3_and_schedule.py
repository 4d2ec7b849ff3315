"""Archives uploaded to S3-compatible storage (moto's S3 server on loopback) with the same
retention as on disk, and the nightly backup job."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from pydantic import SecretStr

from selfmart.backup import service as backups
from selfmart.backup.exceptions import BackupFailed
from selfmart.backup.tasks import SCHEDULED
from selfmart.config import Settings
from selfmart.db import make_engine, make_sessionmaker
from selfmart.jobs import runtime
from selfmart.jobs.registry import JOBS, Cron

REGION = "us-east-1"
KEYS = {"aws_access_key_id": "selfmart-test", "aws_secret_access_key": "selfmart-test-secret"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_settings(
    own_settings: Settings, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[Settings, Any, str]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    bucket = f"selfmart-backups-{uuid.uuid4().hex[:10]}"
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION, **KEYS)
    s3.create_bucket(Bucket=bucket)
    settings = own_settings.model_copy(
        update={
            "backup_s3_bucket": bucket,
            "backup_keep": 2,
            "s3_endpoint_url": s3_endpoint,
            "s3_region": REGION,
            "s3_access_key": SecretStr(KEYS["aws_access_key_id"]),
            "s3_secret_key": SecretStr(KEYS["aws_secret_access_key"]),
        }
    )
    return settings, s3, bucket


async def test_archives_go_to_s3_with_retention(s3_settings: tuple[Settings, Any, str]) -> None:
    settings, s3, bucket = s3_settings
    made = [await backups.backup(settings) for _ in range(3)]
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    assert listed == [f"backups/{r.path.name}" for r in made[1:]]
    newest = made[-1]
    assert newest.s3_key == f"backups/{newest.path.name}"
    body = s3.get_object(Bucket=bucket, Key=newest.s3_key)["Body"].read()
    assert body == newest.path.read_bytes()


async def test_an_unreachable_bucket_keeps_the_local_archive_and_says_so(
    s3_settings: tuple[Settings, Any, str],
) -> None:
    settings, _s3, _bucket = s3_settings
    settings = settings.model_copy(update={"backup_s3_bucket": "no-such-bucket-here"})
    with pytest.raises(BackupFailed) as err:
        await backups.backup(settings)
    assert "written locally but not uploaded" in err.value.message
    assert len(backups.archives(settings)) == 1


async def test_the_nightly_job_makes_a_backup(own_settings: Settings) -> None:
    job = JOBS[SCHEDULED]
    assert job.schedules == (Cron("30 3 * * *"),)
    engine = make_engine(own_settings.database_url)
    try:
        factory = make_sessionmaker(engine)
        off = own_settings.model_copy(update={"backup_scheduled": False})
        async with runtime.running(off, factory):
            assert await runtime.kick(SCHEDULED)
        assert backups.archives(own_settings) == []
        async with runtime.running(own_settings, factory):
            assert await runtime.kick(SCHEDULED)
    finally:
        await engine.dispose()
    [made] = backups.archives(own_settings)
    plan = await backups.restore(own_settings, made, dry_run=True)
    assert plan.tables == {}

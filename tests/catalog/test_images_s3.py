"""Product images on S3-compatible storage: the app's image API against a real S3 HTTP server
on loopback (moto's standalone server), with SELFMART_MEDIA_STORAGE=s3 settings pointing at
it — upload with thumbnail, signed and authenticated reads, delete. No network beyond
127.0.0.1."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from PIL import Image
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.catalog import images as media

from .helpers import PRODUCTS, audit_count, headers_for, make_product
from .test_images import image_bytes, stored_files

REGION = "us-east-1"
KEYS = {"aws_access_key_id": "selfmart-test", "aws_secret_access_key": "selfmart-test-secret"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, for this module's tests."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@dataclass(frozen=True)
class Bucket:
    s3: Any
    name: str

    def objects(self) -> dict[str, str]:
        """Key -> content type of every object in the bucket."""
        listed = self.s3.list_objects_v2(Bucket=self.name).get("Contents", [])
        return {
            o["Key"]: self.s3.head_object(Bucket=self.name, Key=o["Key"])["ContentType"]
            for o in listed
        }

    def read(self, key: str) -> bytes:
        data: bytes = self.s3.get_object(Bucket=self.name, Key=key)["Body"].read()
        return data


@pytest.fixture
def bucket(s3_endpoint: str, app: Any, media_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """A fresh bucket, and the app's media storage switched to it (as SELFMART_S3_* would)."""
    # Loopback must never go through a proxy, and no ambient AWS profile may leak in.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    name = f"selfmart-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION, **KEYS)
    s3.create_bucket(Bucket=name)
    app.state.settings = app.state.settings.model_copy(
        update={
            "media_storage": "s3",
            "s3_endpoint_url": s3_endpoint,
            "s3_bucket": name,
            "s3_region": REGION,
            "s3_access_key": SecretStr(KEYS["aws_access_key_id"]),
            "s3_secret_key": SecretStr(KEYS["aws_secret_access_key"]),
            "s3_prefix": "media/",
        }
    )
    app.state.media_storage = None  # made from the settings on first use
    return Bucket(s3, name)


async def test_images_live_in_the_bucket(
    client: httpx.AsyncClient, session: AsyncSession, app: Any, media_dir: Path, bucket: Bucket
) -> None:
    h = await headers_for(session)
    product = await make_product(session)
    data = image_bytes("JPEG", size=(800, 600))
    r = await client.post(
        f"{PRODUCTS}/{product.id}/images",
        headers=h,
        files={"file": ("photo.jpg", data, "image/jpeg")},
    )
    assert r.status_code == 201, r.text
    img = r.json()
    assert isinstance(app.state.media_storage, media.S3Storage)
    assert await audit_count(session, "product.image_add", product.id) == 1

    # Two objects under the prefix, typed; nothing on local disk.
    objects = bucket.objects()
    assert sorted(objects.values()) == ["image/jpeg", "image/webp"]
    assert all(k.startswith(f"media/products/{product.id}/") for k in objects)
    assert stored_files(media_dir) == []
    original = next(k for k, t in objects.items() if t == "image/jpeg")
    assert bucket.read(original) == data

    # The signed read URL (no credentials) and the thumbnail come back from the bucket.
    full = await client.get(img["url"])
    assert full.status_code == 200
    assert full.content == data
    assert full.headers["content-type"] == "image/jpeg"
    thumb = await client.get(img["thumb_url"])
    assert thumb.status_code == 200
    with Image.open(io.BytesIO(thumb.content)) as t:
        assert t.format == "WEBP"
        assert t.size == (256, 192)
    r = await client.get(
        f"{PRODUCTS}/{product.id}/images/{img['id']}/file", headers=h, params={"variant": "thumb"}
    )
    assert r.content == thumb.content

    # A signed URL for a key the bucket does not hold is a 404, not a storage error.
    missing = media.signed_url(app.state.settings, f"products/{product.id}/{uuid.uuid4().hex}.jpg")
    assert (await client.get(missing)).status_code == 404

    # Delete removes both objects (after the commit).
    r = await client.delete(f"{PRODUCTS}/{product.id}/images/{img['id']}", headers=h)
    assert r.status_code == 204
    assert bucket.objects() == {}
    assert (await client.get(img["url"])).status_code == 404


async def test_a_refused_upload_writes_nothing_to_the_bucket(
    client: httpx.AsyncClient, session: AsyncSession, bucket: Bucket
) -> None:
    h = await headers_for(session)
    product = await make_product(session)
    r = await client.post(
        f"{PRODUCTS}/{product.id}/images",
        headers=h,
        files={"file": ("x.gif", image_bytes("GIF"), "image/gif")},
    )
    assert r.status_code == 422
    assert bucket.objects() == {}

"""Product images: content-checked upload, size limit, thumbnails, signed and private reads."""

from __future__ import annotations

import io
import os
from pathlib import Path

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import ProductImage

from .helpers import PRODUCTS, audit_count, headers_for, make_product


def image_bytes(fmt: str, size: tuple[int, int] = (640, 480), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 30, 30) if mode == "RGB" else (200, 30, 30, 128)).save(
        out, format=fmt
    )
    return out.getvalue()


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def _count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(ProductImage)) or 0)


@pytest.mark.parametrize(
    ("fmt", "mode", "content_type"),
    [("JPEG", "RGB", "image/jpeg"), ("PNG", "RGBA", "image/png"), ("WEBP", "RGB", "image/webp")],
)
async def test_upload_thumbnail_and_read(
    client: httpx.AsyncClient,
    session: AsyncSession,
    media_dir: Path,
    fmt: str,
    mode: str,
    content_type: str,
) -> None:
    h = await headers_for(session)
    product = await make_product(session)
    data = image_bytes(fmt, mode=mode)
    # the file name and declared type lie: the content decides
    r = await client.post(
        f"{PRODUCTS}/{product.id}/images",
        headers=h,
        files={"file": ("photo.gif", data, "application/octet-stream")},
    )
    assert r.status_code == 201, r.text
    img = r.json()
    assert (img["content_type"], img["width"], img["height"]) == (content_type, 640, 480)
    assert await audit_count(session, "product.image_add", product.id) == 1
    assert len(stored_files(media_dir)) == 2

    # the signed URL works without credentials and returns the original bytes
    full = await client.get(img["url"])
    assert full.status_code == 200
    assert full.content == data
    assert full.headers["content-type"] == content_type
    thumb = await client.get(img["thumb_url"])
    assert thumb.status_code == 200
    with Image.open(io.BytesIO(thumb.content)) as t:
        assert t.format == "WEBP"
        assert max(t.size) == 256

    # tampering with the signature or the key is a 404
    assert (await client.get(img["url"].replace("sig=", "sig=0"))).status_code == 404
    other = img["url"].replace(img["url"].split("?")[0].rsplit("/", 1)[1].split(".")[0], "0" * 32)
    assert (await client.get(other)).status_code == 404

    # the authenticated route
    r = await client.get(
        f"{PRODUCTS}/{product.id}/images/{img['id']}/file", headers=h, params={"variant": "thumb"}
    )
    assert r.status_code == 200
    assert r.content == thumb.content
    assert (await client.get(f"{PRODUCTS}/{product.id}/images/{img['id']}/file")).status_code == 401

    detail = (await client.get(f"{PRODUCTS}/{product.id}", headers=h)).json()
    assert [i["id"] for i in detail["images"]] == [img["id"]]

    r = await client.delete(f"{PRODUCTS}/{product.id}/images/{img['id']}", headers=h)
    assert r.status_code == 204
    assert await audit_count(session, "product.image_delete", product.id) == 1
    assert stored_files(media_dir) == []


async def test_expired_link_is_404(
    client: httpx.AsyncClient, session: AsyncSession, app: object
) -> None:
    from selfmart.catalog import images as media

    settings = app.state.settings  # type: ignore[attr-defined]
    url = media.signed_url(settings, "products/1/" + "a" * 32 + ".jpg", now=0)
    assert (await client.get(url)).status_code == 404


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (image_bytes("GIF"), "unsupported_format"),
        (image_bytes("BMP"), "unsupported_format"),
        (b"%PDF-1.4 not an image at all", "not_an_image"),
        (image_bytes("PNG")[:200], "not_an_image"),
        (b"", "not_an_image"),
    ],
)
async def test_not_an_accepted_image_is_422(
    client: httpx.AsyncClient, session: AsyncSession, media_dir: Path, data: bytes, reason: str
) -> None:
    h = await headers_for(session)
    product = await make_product(session)
    r = await client.post(
        f"{PRODUCTS}/{product.id}/images", headers=h, files={"file": ("x.jpg", data, "image/jpeg")}
    )
    assert r.status_code == 422, r.text
    assert r.json()["details"][0]["field"] == "file"
    assert r.json()["details"][0]["reason"] == reason
    assert await _count(session) == 0
    assert stored_files(media_dir) == []


async def test_a_20_mb_image_is_413(
    client: httpx.AsyncClient, session: AsyncSession, media_dir: Path
) -> None:
    h = await headers_for(session)
    product = await make_product(session)
    big = io.BytesIO()
    side = 2650  # 2650 x 2650 RGB noise, stored uncompressed: just over 20 MiB
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(
        big, format="PNG", compress_level=0
    )
    assert big.tell() > 20 * 1024 * 1024
    r = await client.post(
        f"{PRODUCTS}/{product.id}/images",
        headers=h,
        files={"file": ("big.png", big.getvalue(), "image/png")},
    )
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "payload_too_large"
    # the route names the file; a body this far past the route's limit is refused unread by
    # the body-limit middleware, which names the body
    assert r.json()["details"][0]["field"] in {"file", "body"}
    assert await _count(session) == 0

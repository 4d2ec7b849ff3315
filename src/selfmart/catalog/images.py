"""Product images: content checks, thumbnails, signed URLs, and where the bytes live.

The bytes go through a small `Storage` protocol: `LocalStorage` (files under
settings.media_dir, the default) or `S3Storage` (any S3-compatible service, when
SELFMART_MEDIA_STORAGE=s3). The console reads images through a signed, time-limited URL
served by our own route, so the storage never needs to be public.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from PIL import Image, ImageOps, UnidentifiedImageError

from selfmart.catalog.exceptions import invalid
from selfmart.config import Settings
from selfmart.errors import NotFound

#: Formats we accept, decided by what Pillow finds in the bytes (never by the file name).
ACCEPTED_FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}
MAX_PIXELS = 40_000_000
#: Image keys: the only keys the signed media route serves.
KEY_PATTERN = re.compile(r"^products/[0-9]+/[0-9a-f]{32}(_thumb)?\.(jpg|png|webp)$")
#: Every key the storage accepts: images, and uploads kept for a background import.
STORAGE_KEY_PATTERN = re.compile(
    r"^(products/[0-9]+/[0-9a-f]{32}(_thumb)?\.(jpg|png|webp)|imports/[0-9a-f]{32}\.(xlsx|csv))$"
)


class Storage(Protocol):
    """Where media bytes live. Keys are relative paths such as products/7/<hex>.jpg."""

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes:
        """The bytes; raises KeyError when there is no such object."""
        ...

    def delete(self, key: str) -> None: ...


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not STORAGE_KEY_PATTERN.match(key):
            raise KeyError(key)
        return self.root / key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Storage:
    """Any S3-compatible object store (AWS S3, MinIO, Aliyun OSS's S3 API) through boto3."""

    def __init__(self, settings: Settings) -> None:
        import boto3

        if not settings.s3_bucket:
            raise ValueError("SELFMART_S3_BUCKET is required when SELFMART_MEDIA_STORAGE=s3")
        self.bucket = settings.s3_bucket
        self.prefix = settings.s3_prefix
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=(
                settings.s3_access_key.get_secret_value() if settings.s3_access_key else None
            ),
            aws_secret_access_key=(
                settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None
            ),
        )

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=self.prefix + key, Body=data, ContentType=content_type
        )

    def get(self, key: str) -> bytes:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
        except self.client.exceptions.NoSuchKey:
            raise KeyError(key) from None
        data: bytes = obj["Body"].read()
        return data

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)


def make_storage(settings: Settings) -> Storage:
    if settings.media_storage == "s3":
        return S3Storage(settings)
    if settings.media_storage != "local":
        raise ValueError(f"unknown media storage {settings.media_storage!r} (local | s3)")
    return LocalStorage(settings.media_dir)


# --- processing -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcessedImage:
    content_type: str
    ext: str
    width: int
    height: int
    data: bytes
    thumb: bytes


def process(data: bytes, thumb_px: int) -> ProcessedImage:
    """Check the bytes are a JPEG, PNG or WebP image and make a WebP thumbnail.

    CPU-bound: call it in a worker thread.
    """
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt = probe.format or ""
            width, height = probe.size
            if fmt in ACCEPTED_FORMATS and width * height <= MAX_PIXELS:
                probe.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError):
        raise invalid("file", "not_an_image", "The file is not a readable image") from None
    if fmt not in ACCEPTED_FORMATS:
        raise invalid(
            "file", "unsupported_format", f"Images must be JPEG, PNG or WebP, not {fmt or '?'}"
        )
    if width * height > MAX_PIXELS:
        raise invalid(
            "file",
            "too_many_pixels",
            f"The image is {width}x{height}; at most {MAX_PIXELS:,} pixels are accepted",
        )
    content_type, ext = ACCEPTED_FORMATS[fmt]
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            oriented = ImageOps.exif_transpose(img) or img
            thumb = oriented.convert("RGBA") if oriented.mode not in ("RGB", "RGBA") else oriented
            thumb.thumbnail((thumb_px, thumb_px))
            out = io.BytesIO()
            thumb.save(out, format="WEBP", quality=80)
    except (OSError, ValueError, SyntaxError):
        raise invalid(
            "file", "damaged_image", "The image is damaged and cannot be decoded"
        ) from None
    return ProcessedImage(content_type, ext, width, height, data, out.getvalue())


def new_keys(product_id: int, ext: str) -> tuple[str, str]:
    name = uuid.uuid4().hex
    return f"products/{product_id}/{name}.{ext}", f"products/{product_id}/{name}_thumb.webp"


# --- signed URLs ----------------------------------------------------------------------------

MEDIA_ROUTE = "/api/v1/media/"


def _signature(secret: str, key: str, expires: int) -> str:
    msg = f"{key}\n{expires}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()[:40]


def signed_url(settings: Settings, key: str, *, now: float | None = None) -> str:
    expires = int(now if now is not None else time.time()) + settings.media_url_ttl_seconds
    # Round up to the hour so a page of images keeps stable URLs (browser caching).
    expires += -expires % 3600
    sig = _signature(settings.secret_key.get_secret_value(), key, expires)
    return f"{MEDIA_ROUTE}{quote(key)}?exp={expires}&sig={sig}"


def check_signature(settings: Settings, key: str, expires: int, sig: str) -> None:
    """Raises NotFound for a bad, expired or tampered link (never says which)."""
    expected = _signature(settings.secret_key.get_secret_value(), key, expires)
    if not KEY_PATTERN.match(key) or expires < time.time():
        raise NotFound("No such image")
    if not hmac.compare_digest(expected, sig):
        raise NotFound("No such image")


def content_type_for(key: str) -> str:
    ext = key.rsplit(".", 1)[-1]
    return {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}[ext]

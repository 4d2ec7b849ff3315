"""Errors of the catalog domain, each with a stable code the console translates."""

from __future__ import annotations

from selfmart.errors import (
    AlreadyExists,
    Conflict,
    ErrorDetail,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)


def invalid(field: str, reason: str, message: str) -> ValidationFailed:
    """A 422 naming one field with a specific reason."""
    return ValidationFailed(
        message, details=[ErrorDetail(field=field, reason=reason, message=message)]
    )


def too_large(field: str, message: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        message, details=[ErrorDetail(field=field, reason="too_large", message=message)]
    )


def unsupported(field: str, message: str) -> UnsupportedMediaType:
    return UnsupportedMediaType(
        message,
        details=[ErrorDetail(field=field, reason="unsupported_media_type", message=message)],
    )


class ProductNotFound(NotFound):
    code, message = "product_not_found", "No such product"


class CategoryNotFound(NotFound):
    code, message = "category_not_found", "No such category"


class TagNotFound(NotFound):
    code, message = "tag_not_found", "No such tag"


class StoreNotFound(NotFound):
    code, message = "store_not_found", "No such store"


class ImageNotFound(NotFound):
    code, message = "image_not_found", "No such image"


class BarcodeTaken(AlreadyExists):
    code, message = "barcode_taken", "The barcode already belongs to another product"


class CategoryNotEmpty(Conflict):
    code, message = "category_not_empty", "The category still has sub-categories or products"


class ProductInUse(Conflict):
    code, message = "product_in_use", "The product is referenced by other records"


class PreviewStale(Conflict):
    code, message = (
        "preview_stale",
        "The selection or the products changed since the preview; preview again",
    )

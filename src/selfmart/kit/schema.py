"""Base schema for every request and response body."""

from __future__ import annotations

import re
import types
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple | set | frozenset):
        return any(contains_nul(v) for v in value)
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    return False


#: C0 control characters and DEL. No business text holds one: they come from a paste, a
#: scanner or an attacker, and they break what reads the text later (openpyxl refuses them,
#: so one in a product name made the product export a 500).
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: The same, but tab and line breaks, for text that may span lines.
CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: Fields whose text may span lines (a textarea in the console, a PEM key): by name, in every
#: request body. A schema with another such field extends `InSchema.multiline_fields`.
MULTILINE_FIELDS = frozenset(
    {"description", "note", "address", "payment_terms", "platform_public_keys"}
)


def control_character(value: Any, *, multiline: bool = False) -> str | None:
    """The first control character in `value` (a string, or any inside a list or dict; a
    dict's keys are always single-line), or None."""
    if isinstance(value, str):
        found = (CONTROL_MULTILINE if multiline else CONTROL).search(value)
        return found.group() if found else None
    if isinstance(value, list | tuple | set | frozenset):
        return next((c for v in value if (c := control_character(v, multiline=multiline))), None)
    if isinstance(value, dict):
        for k, v in value.items():
            c = control_character(k) or control_character(v, multiline=multiline)
            if c:
                return c
    return None


def control_error(char: str, *, multiline: bool) -> PydanticCustomError:
    if char == "\x00":
        return PydanticCustomError("nul_character", "must not contain NUL (\\x00) characters")
    allowed = " other than tab and line breaks" if multiline else ""
    return PydanticCustomError(
        "control_character",
        "must not contain control characters{allowed} (found {char})",
        {"allowed": allowed, "char": repr(char)},
    )


_NUMBERS = (int, float)


def _number_kind(annotation: Any) -> str:
    """How a field's type takes numbers: "number" when it admits int or float and nothing a
    JSON string or boolean belongs to; "decimal" for a Decimal, whose schema admits a numeric
    string; "items" for a list/set/tuple of numbers; "" otherwise."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _number_kind(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        kinds = {_number_kind(a) for a in members}
        return kinds.pop() if len(kinds) == 1 else ""
    if origin in (list, set, frozenset, tuple):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        return "items" if len(args) == 1 and _number_kind(args[0]) == "number" else ""
    if origin is Literal:
        return ""
    if annotation is Decimal:
        return "decimal"
    if isinstance(annotation, type) and issubclass(annotation, _NUMBERS):
        return "" if issubclass(annotation, bool) else "number"
    return ""


_NUMBER_FIELDS: dict[type[BaseModel], tuple[tuple[str, str], ...]] = {}


def _number_fields(model: type[BaseModel]) -> tuple[tuple[str, str], ...]:
    """(key in the input, kind) of each field of `model` that takes numbers, worked out once
    per model: request bodies pass here on every request, the terminals' orders included."""
    found = _NUMBER_FIELDS.get(model)
    if found is None:
        kinds = ((f.alias or n, _number_kind(f.annotation)) for n, f in model.model_fields.items())
        found = _NUMBER_FIELDS[model] = tuple((key, kind) for key, kind in kinds if kind)
    return found


_LAX = PydanticCustomError("number_type", "must be a number, not a boolean or a string")


def _lax_number(value: Any) -> bool:
    """A JSON boolean or string where a number belongs: pydantic's lax mode would take
    `true` as 1 and "5" as 5; a request body is refused instead."""
    return isinstance(value, bool | str)


class InSchema(BaseModel):
    """Request bodies: unknown fields are refused with a 422 naming them, and so is a
    control character in any text (NUL: PostgreSQL cannot store one; the others break
    exports and screens; tab and line breaks are let through in `multiline_fields`), and a
    boolean or a string where a number belongs."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    #: True for a model read from the query string, where every value arrives as text.
    numbers_from_text: ClassVar[bool] = False
    #: Fields (by name) whose text may span lines.
    multiline_fields: ClassVar[frozenset[str]] = MULTILINE_FIELDS
    #: Fields checked for NUL only: a password typed to match one set before control
    #: characters were refused (it is hashed, never shown or exported).
    opaque_fields: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _refuse_lax_numbers(cls, data: Any) -> Any:
        if cls.numbers_from_text or not isinstance(data, dict):
            return data
        errors: list[InitErrorDetails] = []
        for key, kind in _number_fields(cls):
            value = data.get(key)
            if kind == "number" and _lax_number(value):
                bad: list[tuple[tuple[str | int, ...], Any]] = [((key,), value)]
            elif kind == "decimal" and isinstance(value, bool):
                bad = [((key,), value)]
            elif kind == "items" and isinstance(value, list | tuple):
                bad = [((key, i), v) for i, v in enumerate(value) if _lax_number(v)]
            else:
                continue
            errors += [InitErrorDetails(type=_LAX, loc=loc, input=v) for loc, v in bad]
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return data

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_control_characters(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name in cls.opaque_fields:
            char = "\x00" if contains_nul(value) else None
            multiline = False
        else:
            multiline = info.field_name in cls.multiline_fields
            char = control_character(value, multiline=multiline)
        if char is not None:
            raise control_error(char, multiline=multiline)
        return value

"""The private cattrs converter that turns AWS's PascalCase payloads into safegen's types.

It is strict where cattrs is lenient by default: a string is not a number and a float is not
an integer here, because a response that bends its own model must fail the check, not pass it.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, TypeVar

import cattrs
from cattrs.gen import make_dict_structure_fn, override

from safegen.errors import InvalidLabelError, MalformedResponseError
from safegen.generate import GeneratedImage
from safegen.labels import ContentType, ModerationLabel
from safegen.preflight import sniff_format

T = TypeVar("T")


def _strict_float(value: object, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _strict_int(value: object, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _strict_str(value: object, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def strict_converter() -> cattrs.Converter:
    """Build a converter whose numbers and strings must already be numbers and strings."""
    converter = cattrs.Converter(forbid_extra_keys=False)
    converter.register_structure_hook(float, _strict_float)
    converter.register_structure_hook(int, _strict_int)
    converter.register_structure_hook(str, _strict_str)
    return converter


def renamed(converter: cattrs.Converter, cls: type[Any], **renames: str) -> None:
    """Teach *converter* to read *cls* from a PascalCase payload (field -> wire name)."""
    overrides: dict[str, Any] = {field: override(rename=wire) for field, wire in renames.items()}
    converter.register_structure_hook(cls, make_dict_structure_fn(cls, converter, **overrides))


def make_converter() -> cattrs.Converter:
    """Build a converter that reads Rekognition's label shapes into safegen's."""
    converter = strict_converter()
    converter.register_structure_hook(
        ModerationLabel,
        make_dict_structure_fn(
            ModerationLabel,
            converter,
            name=override(rename="Name"),
            confidence=override(rename="Confidence"),
            parent=override(rename="ParentName"),
            level=override(rename="TaxonomyLevel"),
        ),
    )
    converter.register_structure_hook(
        ContentType,
        make_dict_structure_fn(
            ContentType,
            converter,
            name=override(rename="Name"),
            confidence=override(rename="Confidence"),
        ),
    )
    return converter


def structure(converter: cattrs.Converter, data: Any, cls: type[T], what: str) -> T:
    """Structure *data* as *cls*, turning every failure into a :class:`MalformedResponseError`."""
    try:
        return converter.structure(data, cls)
    except (cattrs.BaseValidationError, InvalidLabelError, TypeError, ValueError) as e:
        detail = "; ".join(_leaf_messages(e))
        raise MalformedResponseError(f"{what}: {detail}") from e


def _leaf_messages(error: BaseException) -> list[str]:
    if isinstance(error, cattrs.BaseValidationError):
        return [m for sub in error.exceptions for m in _leaf_messages(sub)]
    return [f"{type(error).__name__}: {error}"]


def image_from_base64(encoded: object, seed: int | None) -> GeneratedImage:
    """Decode a generated image sent as base64, checking it is the JPEG or PNG it claims."""
    if not isinstance(encoded, str):
        raise MalformedResponseError("an image is not a base64 string")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise MalformedResponseError(f"an image is not valid base64: {error}") from None
    fmt = sniff_format(data)
    if fmt not in ("JPEG", "PNG"):
        raise MalformedResponseError(f"an image is not a JPEG or PNG (looks like {fmt})")
    return GeneratedImage(data, fmt, seed)


def json_body(raw: bytes, operation: str) -> Any:
    """Parse a response body a model endpoint returned; refuse one that is not JSON."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedResponseError(f"{operation}: the body is not JSON: {error}") from None

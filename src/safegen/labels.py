"""What an image moderation backend reports: labels and content types, on a 0-100 scale."""

from __future__ import annotations

import math
from typing import Any

import attrs

from safegen.errors import InvalidLabelError

__all__ = ["ContentType", "ModerationLabel"]


def _check_name(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidLabelError(
            f"{type(instance).__name__}.{attribute.name} must be a non-empty string, got {value!r}"
        )


def _check_confidence(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # bool is an int, but True is not a confidence; NaN compares false with everything.
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or not 0 <= value <= 100
    ):
        raise InvalidLabelError(
            f"{type(instance).__name__}.{attribute.name} must be a number from 0 to 100, "
            f"got {value!r}"
        )


def _check_parent(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidLabelError(f"ModerationLabel.parent must be a string or None, got {value!r}")


def _check_level(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidLabelError(
            f"ModerationLabel.level must be a positive integer or None, got {value!r}"
        )


def _empty_to_none(value: str | None) -> str | None:
    # Rekognition reports a top-level label's ParentName as "": that means "no parent".
    return value or None


@attrs.frozen
class ModerationLabel:
    """One moderation label a backend reported for an image.

    :param name: the label's name, as the backend spells it (e.g. ``"Exposed Female Nipple"``).
    :param confidence: how sure the backend is, from 0 to 100.
    :param parent: the name of the label's parent in the taxonomy; ``None`` (or ``""``, as
        Rekognition writes it) for a top-level label or when the backend does not say.
    :param level: the label's depth in the taxonomy (1, 2 or 3 for Rekognition v7), if known.

    >>> ModerationLabel("Weapons", 87.5, parent="Violence", level=2)
    ModerationLabel(name='Weapons', confidence=87.5, parent='Violence', level=2)
    """

    name: str = attrs.field(validator=_check_name)
    confidence: float = attrs.field(validator=_check_confidence)
    parent: str | None = attrs.field(
        default=None, converter=_empty_to_none, validator=_check_parent
    )
    level: int | None = attrs.field(default=None, validator=_check_level)

    def to_dict(self) -> dict[str, Any]:
        """Return the label as plain JSON-ready data."""
        return {
            "name": self.name,
            "confidence": self.confidence,
            "parent": self.parent,
            "level": self.level,
        }


@attrs.frozen
class ContentType:
    """A kind of content a backend recognised in an image, e.g. ``Animated`` or ``Illustrated``.

    :param name: the content type's name, as the backend spells it.
    :param confidence: how sure the backend is, from 0 to 100.
    """

    name: str = attrs.field(validator=_check_name)
    confidence: float = attrs.field(validator=_check_confidence)

    def to_dict(self) -> dict[str, Any]:
        """Return the content type as plain JSON-ready data."""
        return {"name": self.name, "confidence": self.confidence}

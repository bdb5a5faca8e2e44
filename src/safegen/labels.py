"""What an image moderation backend reports: labels and content types, on a 0-100 scale."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from safegen._numbers import finite, show
from safegen.errors import InvalidImageError, InvalidLabelError

__all__ = ["Box", "ContentType", "ModerationLabel"]


def _check_name(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidLabelError(
            f"{type(instance).__name__}.{attribute.name} must be a non-empty string, got {value!r}"
        )


def _check_confidence(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # bool is an int, but True is not a confidence; NaN, infinities and ints too large for a
    # float are not numbers here either.
    number = finite(value)
    if number is None or not 0 <= number <= 100:
        raise InvalidLabelError(
            f"{type(instance).__name__}.{attribute.name} must be a number from 0 to 100, "
            f"got {show(value)}"
        )


def _check_parent(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidLabelError(f"ModerationLabel.parent must be a string or None, got {value!r}")


def _check_level(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidLabelError(
            f"ModerationLabel.level must be a positive integer or None, got {value!r}"
        )


def _ratio(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    number = finite(value)
    if number is None or not 0 <= number <= 1:
        raise InvalidImageError(
            f"Box.{attribute.name} must be a fraction from 0 to 1, got {show(value)}", limit="box"
        )


@attrs.frozen
class Box:
    """A region of an image, as fractions of its width and height (Rekognition's convention).

    :param left: the left edge, 0 to 1.
    :param top: the top edge, 0 to 1.
    :param width: 0 to 1.
    :param height: 0 to 1.
    """

    left: float = attrs.field(validator=_ratio)
    top: float = attrs.field(validator=_ratio)
    width: float = attrs.field(validator=_ratio)
    height: float = attrs.field(validator=_ratio)

    def pixels(self, size: tuple[int, int]) -> tuple[int, int, int, int]:
        """Return ``(left, top, right, bottom)`` in pixels for an image of *size*, clipped."""
        w, h = size
        left, top = round(self.left * w), round(self.top * h)
        right = min(w, round((self.left + self.width) * w))
        bottom = min(h, round((self.top + self.height) * h))
        return left, top, max(left, right), max(top, bottom)

    def to_dict(self) -> dict[str, float]:
        """Return the box as plain JSON-ready data."""
        return {"left": self.left, "top": self.top, "width": self.width, "height": self.height}


def _boxes(value: Iterable[Box]) -> tuple[Box, ...]:
    return tuple(value)


def _check_boxes(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple) or not all(isinstance(box, Box) for box in value):
        raise InvalidLabelError(f"ModerationLabel.boxes must hold Box objects, got {value!r}")


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
    :param boxes: where in the image the backend saw it, for region-level redaction; empty
        when the backend does not say (Rekognition's moderation labels carry no boxes).

    >>> ModerationLabel("Weapons", 87.5, parent="Violence", level=2)
    ModerationLabel(name='Weapons', confidence=87.5, parent='Violence', level=2, boxes=())
    """

    name: str = attrs.field(validator=_check_name)
    confidence: float = attrs.field(validator=_check_confidence)
    parent: str | None = attrs.field(
        default=None, converter=_empty_to_none, validator=_check_parent
    )
    level: int | None = attrs.field(default=None, validator=_check_level)
    boxes: tuple[Box, ...] = attrs.field(default=(), converter=_boxes, validator=_check_boxes)

    def to_dict(self) -> dict[str, Any]:
        """Return the label as plain JSON-ready data."""
        return {
            "name": self.name,
            "confidence": self.confidence,
            "parent": self.parent,
            "level": self.level,
            "boxes": [box.to_dict() for box in self.boxes],
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

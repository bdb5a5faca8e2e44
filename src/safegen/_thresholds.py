"""A label entry's thresholds, shared by the image policy and its prompt section.

A leaf below :mod:`safegen.policy` and :mod:`safegen.prompt_policy`, so that the policy can hold
its prompt section and the section can use the same entries without importing back up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import attrs

from safegen import _settings
from safegen.errors import PolicyError

__all__ = [
    "Thresholds",
    "ThresholdsLike",
    "optional_block_at",
    "read_thresholds",
    "review_at_setting",
    "review_not_above_block",
]

#: How a label entry may be written: a number (``block_at``), a table, or :class:`Thresholds`.
ThresholdsLike: TypeAlias = "Thresholds | float | Mapping[str, float | None]"


def optional_block_at(value: float | None) -> float | None:
    """Check a ``block_at`` that may be left unset."""
    return _settings.optional_score(value, "block_at")


def review_at_setting(value: float | None) -> float | None:
    """Check a ``review_at`` that may be left unset."""
    return _settings.optional_score(value, "review_at")


def review_not_above_block(instance: Any, attribute: attrs.Attribute[Any], review: Any) -> None:
    """Refuse a ``review_at`` above the same object's ``block_at``."""
    block = instance.block_at
    if review is not None and block is not None and review > block:
        raise PolicyError(f"review_at ({review:g}) must not be above block_at ({block:g})")


def _thresholds_set(instance: Thresholds, attribute: attrs.Attribute[Any], review: Any) -> None:
    block = instance.block_at
    if block is None and review is None:
        raise PolicyError("a label entry must set block_at, review_at or both")
    review_not_above_block(instance, attribute, review)


@attrs.frozen
class Thresholds:
    """The thresholds one policy entry sets; a setting left as ``None`` is inherited.

    :param block_at: confidence at or above which the label blocks the content.
    :param review_at: confidence at or above which (and below ``block_at``) the label sends
        the content to review.
    :raises PolicyError: a value is not a number from 0 to 100, neither is set, or
        ``review_at`` is above ``block_at``.
    """

    block_at: float | None = attrs.field(default=None, converter=optional_block_at)
    review_at: float | None = attrs.field(
        default=None, converter=review_at_setting, validator=_thresholds_set
    )

    def to_mapping(self) -> float | dict[str, float]:
        """Return the entry as written in a policy file: a bare number when only block_at."""
        if self.review_at is None and self.block_at is not None:
            return self.block_at
        settings = {"block_at": self.block_at, "review_at": self.review_at}
        return {setting: value for setting, value in settings.items() if value is not None}


def read_thresholds(value: ThresholdsLike, where: str) -> Thresholds:
    """Read one label entry: a number (``block_at``), a table, or :class:`Thresholds`."""
    if isinstance(value, Thresholds):
        return value
    if isinstance(value, Mapping):
        _settings.reject_unknown_keys(value, ("block_at", "review_at"), where)
    try:
        if isinstance(value, Mapping):
            return Thresholds(block_at=value.get("block_at"), review_at=value.get("review_at"))
        return Thresholds(block_at=value)
    except PolicyError as e:
        raise PolicyError(f"{where}: {e}") from None

"""Field validators for the settings of service objects: each names the setting it refuses.

Service objects (moderators, the pipeline, the cascade, the ensemble) are frozen attrs classes;
these validators run when one is built and again on :func:`attrs.evolve`, so a setting is
never used unchecked. Every refusal is a :class:`~safegen.errors.ConfigurationError` whose
message starts with the setting's name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import attrs

from safegen._numbers import finite, show
from safegen.decision import Action
from safegen.errors import ConfigurationError

_T = TypeVar("_T")
Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def refuse(attribute: attrs.Attribute[Any], message: str) -> ConfigurationError:
    """Return the error for a refused setting, its name first."""
    return ConfigurationError(f"{attribute.name}: {message}")


def kind(value: object) -> str:
    """Name *value*'s type for a message (never its content, which may be sensitive)."""
    return type(value).__name__


def instance_of(*types: type, what: str) -> Validator:
    """Refuse a value that is not one of *types* (described as *what*)."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise refuse(attribute, f"expected {what}, got {kind(value)}")

    return check


def port(protocol: type, what: str) -> Validator:
    """Refuse what does not satisfy *protocol* (described as *what*) or has no usable name.

    A port's ``name`` appears in verdicts and logs, so it must be a non-empty string.
    """

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, protocol):
            raise refuse(attribute, f"expected {what}, got {kind(value)}")
        name: object = getattr(value, "name", None)
        if not isinstance(name, str) or not name:
            raise refuse(attribute, "its name must be a non-empty string")

    return check


def optional(validator: Validator) -> Validator:
    """Accept ``None``, else apply *validator*."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None:
            validator(instance, attribute, value)

    return check


def one_of(*choices: str) -> Validator:
    """Refuse anything but one of the strings *choices*."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, str) or value not in choices:
            allowed = ", ".join(f'"{c}"' for c in choices)
            shown = repr(value) if isinstance(value, str) and len(value) < 40 else kind(value)
            raise refuse(attribute, f"must be one of {allowed}, got {shown}")

    return check


def flag(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Refuse anything but ``True`` or ``False`` (a truthy string is not a yes)."""
    if not isinstance(value, bool):
        raise refuse(attribute, f"expected True or False, got {kind(value)}")


def number(value: object) -> str:
    """Show a refused number in a message; anything else only by its type."""
    return show(value) if isinstance(value, int | float) else kind(value)


def positive_int(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Refuse anything but a whole number of at least 1 (a bool is not a number)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise refuse(attribute, f"must be a whole number of at least 1, got {number(value)}")


def score(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Refuse anything but a finite number from 0 to 100 (a bool is not a number)."""
    checked = finite(value)
    if checked is None or not 0 <= checked <= 100:
        raise refuse(attribute, f"must be a number from 0 to 100, got {number(value)}")


def not_allow(hint: str) -> Validator:
    """Refuse anything but ``REVIEW`` or ``BLOCK``; *hint* says what to do instead of ALLOW."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, Action):
            raise refuse(attribute, f"expected Action.REVIEW or Action.BLOCK, got {kind(value)}")
        if value is Action.ALLOW:
            raise refuse(attribute, f"ALLOW would fail open; {hint}")

    return check


def to_tuple(value: Iterable[_T], name: str) -> tuple[_T, ...]:
    """Return *value* as a tuple; a string or a non-iterable is refused (naming *name*)."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ConfigurationError(f"{name}: expected a collection, got {kind(value)}")
    return tuple(value)

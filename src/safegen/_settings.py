"""Checking what a policy says: scores, names, tables. Every failure is a located PolicyError."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from safegen._numbers import finite, show
from safegen.decision import Action
from safegen.errors import PolicyError
from safegen.taxonomy import Category, Taxonomy


def score(value: object, where: str) -> float:
    """Check a 0-100 score written in a policy, returning it as a float."""
    number = finite(value)
    if number is None or not 0 <= number <= 100:
        raise PolicyError(f"{where}: must be a number from 0 to 100, got {show(value)}")
    return number


def optional_score(value: object, where: str) -> float | None:
    """Check a score that may be left unset."""
    return None if value is None else score(value, where)


def table(value: object, where: str) -> Mapping[Any, Any]:
    """Check that a setting is a table (a mapping)."""
    if not isinstance(value, Mapping):
        raise PolicyError(f"{where}: must be a table (mapping), got {type(value).__name__}")
    return value


def reject_unknown_keys(mapping: Mapping[Any, Any], allowed: Iterable[str], where: str) -> None:
    """Refuse a key that is not a known setting, suggesting the closest one."""
    allowed = tuple(allowed)
    for key in mapping:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1) if isinstance(key, str) else ()
            hint = f"; did you mean {close[0]!r}?" if close else f"; expected one of {allowed}"
            raise PolicyError(f"{where}: unknown setting {show(key)}{hint}")


def category(key: object, taxonomy: Taxonomy, where: str) -> Category:
    """Resolve a label name, path or :class:`Category` in *taxonomy*."""
    if isinstance(key, Category):
        if key not in taxonomy:
            raise PolicyError(f"{where}: {key} is not in the taxonomy")
        return key
    if not isinstance(key, str):
        raise PolicyError(f"{where}: a label name must be a string, got {show(key)}")
    return taxonomy.lookup(key, where=where)


def categories(value: object, taxonomy: Taxonomy, where: str) -> frozenset[Category]:
    """Resolve a list of label names (a lone name counts as a list of one)."""
    if isinstance(value, str | Category):
        value = (value,)  # a lone name is a one-element list, not its characters
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise PolicyError(f"{where}: must be a list of label names, got {show(value)}")
    resolved = set()
    for name in value:
        if not isinstance(name, str | Category):
            raise PolicyError(f"{where}: must be a list of label names, got {show(name)}")
        resolved.add(category(name, taxonomy, where))
    return frozenset(resolved)


def action(value: object, where: str) -> Action | None:
    """Check an outright action: ``"block"``, ``"review"``, ``"allow"`` or unset."""
    if value is None or isinstance(value, Action):
        return value
    if isinstance(value, str):
        try:
            return Action(value.lower())
        except ValueError:
            pass
    raise PolicyError(f'{where}: must be "block", "review" or "allow", got {show(value)}')

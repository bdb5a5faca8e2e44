"""The default forbidden-term lists, one data file per category, shipped in the package.

Each ``CATEGORY.txt`` holds one term a line; ``#`` starts a comment. The header of each file
says how it was curated. Use them through :meth:`safegen.text.RuleFilter.default`.

This package is data: it imports nothing from the rule engine, which reads it (one way).
"""

from __future__ import annotations

import functools
from importlib import resources

__all__ = ["CATEGORIES", "default_terms"]

CATEGORIES = ("sexual", "violence", "hate", "drugs", "self_harm")


@functools.cache
def default_terms() -> tuple[tuple[str, str], ...]:
    """Read the shipped term lists (once), in category order, as ``(term, category)`` pairs."""
    terms = []
    for category in CATEGORIES:
        text = resources.files(__name__).joinpath(f"{category}.txt").read_text(encoding="utf-8")
        for line in text.splitlines():
            term = line.split("#", 1)[0].strip()
            if term:
                terms.append((term, category))
    return tuple(terms)

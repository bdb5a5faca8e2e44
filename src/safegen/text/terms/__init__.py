"""The default forbidden-term lists, one data file per category, shipped in the package.

Each ``CATEGORY.txt`` holds one term a line; ``#`` starts a comment. The header of each file
says how it was curated. Terms are severe unless a ``[mild]`` line precedes them (``[severe]``
switches back): a category may mix terms that call for different actions. Use them through
:meth:`safegen.text.RuleFilter.default`.

``innocent.txt`` is no category: it holds the innocent senses of listed words (``naked eye``,
``sex ratio``, ``Al Gore``), one word or phrase a line, which :meth:`RuleFilter.default
<safegen.text.RuleFilter.default>` allows by default.

This package is data: it imports nothing from the rule engine, which reads it (one way).
"""

from __future__ import annotations

import functools
from importlib import resources

__all__ = ["CATEGORIES", "SEVERITIES", "default_terms", "innocent_phrases"]

CATEGORIES = ("sexual", "suggestive", "violence", "hate", "drugs", "self_harm")
#: How bad a term is within its category, mildest first.
SEVERITIES = ("mild", "severe")


@functools.cache
def default_terms() -> tuple[tuple[str, str, str], ...]:
    """Read the shipped term lists (once), in category order, as ``(term, category, severity)``."""
    terms = []
    for category in CATEGORIES:
        text = resources.files(__name__).joinpath(f"{category}.txt").read_text(encoding="utf-8")
        severity = "severe"
        for line in text.splitlines():
            term = line.split("#", 1)[0].strip()
            if term.startswith("[") and term.endswith("]") and term[1:-1] in SEVERITIES:
                severity = term[1:-1]
            elif term:
                terms.append((term, category, severity))
    return tuple(terms)


@functools.cache
def innocent_phrases() -> tuple[str, ...]:
    """Read the shipped innocent senses of listed words (once): the default allowlist."""
    text = resources.files(__name__).joinpath("innocent.txt").read_text(encoding="utf-8")
    return tuple(p for p in (line.split("#", 1)[0].strip() for line in text.splitlines()) if p)

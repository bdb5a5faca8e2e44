"""Offset-preserving text normalisation: see through obfuscation, remember where each letter was.

:func:`skeleton` turns a prompt into lower-case Latin letters and separators, character by
character, and records for each skeleton character the index of the original character it came
from and what had to be undone to get it (an invisible character dropped, a diacritic removed,
a compatibility form or homoglyph folded). Word-level tricks (leetspeak, spaced-out letters,
stretched letters, inflections) are undone by the rule filter on top of this.

Pure: no I/O; the per-character work is cached, bounded by the number of distinct characters.
"""

from __future__ import annotations

import enum
import functools
import unicodedata

import attrs

__all__ = ["Skeleton", "Transform", "skeleton"]


class Transform(enum.Enum):
    """A trick undone to expose a match, as reported in ``RuleMatch.transforms``."""

    INVISIBLE_REMOVED = "invisible removed"
    """Zero-width and other invisible characters, soft hyphens, stray combining marks."""
    DIACRITIC_REMOVED = "diacritic removed"
    """Accents and other marks on letters (``ñ`` is ``n``)."""
    COMPATIBILITY_FOLDED = "compatibility folded"
    """Fullwidth, mathematical, circled and other compatibility forms (``𝐬``, ``ｓ``, ``ⓢ``)."""
    HOMOGLYPH_FOLDED = "homoglyph folded"
    """Cyrillic and Greek letters that look Latin (Cyrillic ``а`` for ``a``)."""
    LEETSPEAK = "leetspeak"
    """Digits and symbols standing for letters (``4`` for ``a``, ``$`` for ``s``)."""
    SEPARATORS_COLLAPSED = "separators collapsed"
    """Letters spaced out with spaces, dots, dashes, underscores or asterisks."""
    REPEATS_SQUEEZED = "repeated letters squeezed"
    """Letters stretched by repetition (``naaaked``)."""
    INFLECTION = "inflection"
    """A plural or verb ending on the term (``-s``, ``-es``, ``-ing``, ``-ed``, ``-er``)."""


# Cyrillic and Greek letters that render like Latin ones, lower case (casefold comes first).
_HOMOGLYPHS = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "з": "3", "и": "u", "і": "i", "ї": "i", "ј": "j",
    "к": "k", "м": "m", "н": "h", "о": "o", "п": "n", "р": "p", "с": "c", "т": "t", "у": "y",
    "х": "x", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ү": "y", "һ": "h", "ӏ": "l", "ь": "b",
    # Greek
    "α": "a", "β": "b", "γ": "y", "δ": "d", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v",
    "ο": "o", "ρ": "p", "σ": "o", "ς": "c", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "μ": "u",
    "ϲ": "c", "ϳ": "j",
}  # fmt: skip
# Capitals whose lower case looks like another letter (Greek Ν is N, but ν looks like v).
_CAPITAL_HOMOGLYPHS = {
    "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n",
    "Ο": "o", "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x",
    "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m", "Н": "h", "О": "o", "Р": "p", "С": "c",
    "Т": "t", "Х": "x", "Ѕ": "s", "І": "i", "Ј": "j",
}  # fmt: skip

# Characters that render as nothing; some are not in category Cf, so they are listed too.
_INVISIBLE = frozenset("\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u3164\uffa0")


@attrs.frozen
class Skeleton:
    """A normalised view of a text and the way back to it.

    :param text: the original text.
    :param chars: the normalised text: lower-case, folded, invisible characters dropped.
    :param origins: for each character of :attr:`chars`, the index in :attr:`text` it came from.
    :param transforms: for each character of :attr:`chars`, what was undone to get it.
    """

    text: str
    chars: str
    origins: tuple[int, ...]
    transforms: tuple[frozenset[Transform], ...]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map the skeleton slice ``[start, end)`` back to a slice of the original text."""
        first = self.origins[start]
        last = self.origins[end - 1]
        # An original character can expand into several (``ﬁ`` is ``fi``): end after all of it.
        return first, last + 1

    def transforms_in(self, start: int, end: int) -> frozenset[Transform]:
        """Return what was undone anywhere in the skeleton slice ``[start, end)``."""
        if self.is_plain:
            return frozenset()
        return frozenset().union(*self.transforms[start:end])

    @property
    def is_plain(self) -> bool:
        """Whether nothing but case was changed (every original character kept, one for one)."""
        return len(self.chars) == len(self.text) and not any(self.transforms)


_NOTHING: frozenset[Transform] = frozenset()


# Enclosed Latin letters with no compatibility mapping of their own: squared, negative
# circled and negative squared capitals, and regional indicators (first code point of each).
_ENCLOSED_BLOCKS = (0x1F130, 0x1F150, 0x1F170, 0x1F1E6)


def _enclosed_letter(code: int) -> str | None:
    for first in _ENCLOSED_BLOCKS:
        if first <= code < first + 26:
            return chr(ord("a") + code - first)
    return None


@functools.lru_cache(maxsize=8192)
def _fold(char: str) -> tuple[str, frozenset[Transform]]:
    """Normalise one character: what it becomes (possibly nothing) and what that undid."""
    if char in _INVISIBLE:
        return "", frozenset({Transform.INVISIBLE_REMOVED})
    category = unicodedata.category(char)
    if category == "Cf":  # zero-width spaces and joiners, directional marks, BOM, ...
        return "", frozenset({Transform.INVISIBLE_REMOVED})
    if category in ("Mn", "Me"):  # a combining mark on its own
        return "", frozenset({Transform.DIACRITIC_REMOVED})
    enclosed = _enclosed_letter(ord(char))
    if enclosed is not None:
        return enclosed, frozenset({Transform.COMPATIBILITY_FOLDED})
    transforms: set[Transform] = set()
    decomposed = unicodedata.normalize("NFKD", char)
    if decomposed != char:
        if unicodedata.normalize("NFD", char) != decomposed:
            transforms.add(Transform.COMPATIBILITY_FOLDED)
        if any(unicodedata.combining(c) for c in decomposed):
            transforms.add(Transform.DIACRITIC_REMOVED)
    out = []
    for base in decomposed:
        if unicodedata.combining(base):
            continue
        capital = _CAPITAL_HOMOGLYPHS.get(base)
        if capital is not None:
            transforms.add(Transform.HOMOGLYPH_FOLDED)
            out.append(capital)
            continue
        for folded in base.casefold():
            latin = _HOMOGLYPHS.get(folded)
            if latin is not None:
                transforms.add(Transform.HOMOGLYPH_FOLDED)
                folded = latin
            out.append(folded)
    return "".join(out), frozenset(transforms)


def skeleton(text: str) -> Skeleton:
    """Normalise *text*, keeping for every character where it came from.

    >>> s = skeleton("ＮＡ\u200bKED")
    >>> s.chars, s.origins
    ('naked', (0, 1, 3, 4, 5))
    >>> sorted(t.name for t in s.transforms_in(0, 5))
    ['COMPATIBILITY_FOLDED', 'INVISIBLE_REMOVED']
    """
    if text.isascii():  # the common case: only case changes, one character for one
        lowered = text.lower()
        return Skeleton(text, lowered, tuple(range(len(text))), (_NOTHING,) * len(text))
    chars: list[str] = []
    origins: list[int] = []
    transforms: list[frozenset[Transform]] = []
    pending = _NOTHING  # what a dropped character undid, carried to the next kept one
    for index, char in enumerate(text):
        if char.isascii():
            folded, undone = char.lower(), _NOTHING
        else:
            folded, undone = _fold(char)
        if not folded:
            pending = pending | undone
            continue
        undone = undone | pending if pending else undone
        pending = _NOTHING
        for piece in folded:
            chars.append(piece)
            origins.append(index)
            transforms.append(undone)
    if pending and transforms:  # dropped characters at the very end belong to the last kept
        transforms[-1] = transforms[-1] | pending
    return Skeleton(text, "".join(chars), tuple(origins), tuple(transforms))

"""Offset-preserving text normalisation: see through obfuscation, remember where each letter was.

:func:`skeleton` turns a prompt into lower-case Latin letters and separators, character by
character, and records for each skeleton character the index of the original character it came
from and what had to be undone to get it. Word-level tricks (leetspeak, spaced-out letters,
stretched letters, inflections, generators' prompt syntax) are undone by the rule filter on top.

What one character becomes, first rule that applies:

1. **Invisible**: format characters (category ``Cf``: zero-width space, ZWJ, ZWNJ, U+2060, BOM,
   bidi controls, tag characters), variation selectors, the soft hyphen, CGJ and the Hangul
   fillers are dropped.
2. **Combining marks** (``Mn``, ``Me``) are dropped: accents, and marks stacked on any letter.
3. **Compatibility forms** are unfolded with Unicode's NFKD: fullwidth, mathematical
   alphanumerics, circled and parenthesized letters (``ⓐ``, ``⒜``), superscripts, ligatures.
4. **Cyrillic and Greek look-alikes** (``а``, ``ѕ``, ``ο``, capital ``Η``) are folded by a small
   vetted visual table: for these scripts a transliteration (``р`` is "r") would not be what the
   reader sees (``p``).
5. **Other Latin letters and symbols** are transliterated by ``anyascii`` (PyPI, ISC licence),
   a maintained Unicode-to-ASCII table: letters with strokes, bars and hooks (``ø``, ``đ``, ``ł``,
   ``ħ``, ``ƀ``, ``ɨ``), dotless ``ı`` and ``ȷ``, IPA letters and small capitals (``ɑ``, ``ɡ``,
   ``ᴀ``, ``ʙ``, ``ɴ``), squared and negative enclosed letters (``🄰``, ``🅰``, ``🅐``), regional
   indicators, and punctuation look-alikes such as the whole dash family (``−``, ``⁃``, ``﹘``,
   ``⸺``). A letter is transliterated only when its Unicode name says it is Latin, and a symbol
   only when it becomes one ASCII character, so that other scripts (CJK, kana) never turn into
   Latin words. Three Latin click letters that look like ``!`` and ``|`` are read by their look.

Not handled (limits): look-alikes from scripts other than Latin, Cyrillic and Greek (Cherokee
``Ꭺ``, Lisu ``ꓮ``, Armenian ``օ``), and pictures of letters (emoji, ASCII art). A character the
rules above leave alone stays as it is: the rule filter treats it as a separator when it is no
letter or digit, and as part of a foreign word when it is.

Pure: no I/O beyond reading the transliteration table shipped in its package; the
per-character work is cached, bounded by the number of distinct characters.
"""

from __future__ import annotations

import bisect
import enum
import functools
import itertools
import re
import unicodedata

import attrs
from anyascii import anyascii

__all__ = ["Skeleton", "Transform", "skeleton"]


class Transform(enum.Enum):
    """A trick undone to expose a match, as reported in ``RuleMatch.transforms``."""

    INVISIBLE_REMOVED = "invisible removed"
    """Zero-width and other invisible characters, soft hyphens, variation selectors, tags."""
    DIACRITIC_REMOVED = "diacritic removed"
    """Accents, strokes, bars and hooks on letters (``ñ``, ``ø``, ``ł`` and dotless ``ı``)."""
    COMPATIBILITY_FOLDED = "compatibility folded"
    """Fullwidth, mathematical, circled, squared and other enclosed forms (``𝐬``, ``ｓ``, ``ⓢ``)."""
    HOMOGLYPH_FOLDED = "homoglyph folded"
    """Letters that look Latin: Cyrillic ``а``, Greek ``ο``, small capitals and IPA ``ɑ``."""
    LEETSPEAK = "leetspeak"
    """Digits and symbols standing for letters (``4`` for ``a``, ``$`` for ``s``)."""
    SEPARATORS_COLLAPSED = "separators collapsed"
    """Letters spaced out with spaces, punctuation, dashes, symbols or emoji."""
    REPEATS_SQUEEZED = "repeated letters squeezed"
    """Letters stretched by repetition (``naaaked``)."""
    INFLECTION = "inflection"
    """A plural or verb ending on the term (``-s``, ``-es``, ``-ing``, ``-ed``, ``-er``)."""
    PROMPT_SYNTAX = "prompt syntax read"
    """Generators' syntax read as separators, not letters: ``{a|b}``, ``word++``, ``@word``."""


# Cyrillic and Greek letters that render like Latin ones, lower case (casefold comes first),
# and the Latin click letters, whose transliteration is not their look.
_HOMOGLYPHS = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "з": "3", "и": "u", "і": "i", "ї": "i", "ј": "j",
    "к": "k", "м": "m", "н": "h", "о": "o", "п": "n", "р": "p", "с": "c", "т": "t", "у": "y",
    "х": "x", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ү": "y", "һ": "h", "ӏ": "l", "ь": "b",
    # Greek
    "α": "a", "β": "b", "γ": "y", "δ": "d", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v",
    "ο": "o", "ρ": "p", "σ": "o", "ς": "c", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "μ": "u",
    "ϲ": "c", "ϳ": "j",
    # Latin clicks: ǀ ǁ ǃ look like | || !
    "ǀ": "|", "ǁ": "||", "ǃ": "!",
}  # fmt: skip
# Capitals whose lower case looks like another letter (Greek Ν is N, but ν looks like v).
_CAPITAL_HOMOGLYPHS = {
    "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n",
    "Ο": "o", "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x",
    "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m", "Н": "h", "О": "o", "Р": "p", "С": "c",
    "Т": "t", "Х": "x", "Ѕ": "s", "І": "i", "Ј": "j",
}  # fmt: skip

# Characters that render as nothing but are not in category Cf (Unicode's
# Default_Ignorable_Code_Point, less what Cf already covers).
_INVISIBLE = frozenset("\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u3164\uffa0")
_INVISIBLE_RANGES = (
    (0x180B, 0x180F),  # Mongolian free variation selectors
    (0xFE00, 0xFE0F),  # variation selectors
    (0xE0100, 0xE01EF),  # variation selectors supplement
)


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
    # For each transform that occurs, the sorted skeleton positions where it does: what
    # was undone in a slice is then a few binary searches, whatever the slice's length.
    _where: dict[Transform, list[int]] = attrs.field(
        init=False,
        repr=False,
        eq=False,
        default=attrs.Factory(lambda self: _positions(self.transforms), takes_self=True),
    )

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map the skeleton slice ``[start, end)`` back to a slice of the original text."""
        first = self.origins[start]
        last = self.origins[end - 1]
        # An original character can expand into several (``ﬁ`` is ``fi``): end after all of it.
        return first, last + 1

    def transforms_in(self, start: int, end: int) -> frozenset[Transform]:
        """Return what was undone anywhere in the skeleton slice ``[start, end)``.

        Costs a binary search per kind of transform present, not a walk over the slice.
        """
        found = []
        for transform, positions in self._where.items():
            at = bisect.bisect_left(positions, start)
            if at < len(positions) and positions[at] < end:
                found.append(transform)
        return frozenset(found)

    @property
    def is_plain(self) -> bool:
        """Whether nothing but case was changed (every original character kept, one for one)."""
        return len(self.chars) == len(self.text) and not self._where


def _positions(transforms: tuple[frozenset[Transform], ...]) -> dict[Transform, list[int]]:
    where: dict[Transform, list[int]] = {}
    for index, undone in enumerate(transforms):
        for transform in undone:
            where.setdefault(transform, []).append(index)
    return where


_NOTHING: frozenset[Transform] = frozenset()
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _invisible(char: str, category: str) -> bool:
    if category == "Cf" or char in _INVISIBLE:  # zero-width, joiners, bidi, BOM, tags, ...
        return True
    code = ord(char)
    return any(first <= code <= last for first, last in _INVISIBLE_RANGES)


def _look_alike(char: str) -> tuple[str, Transform] | None:
    """Read a character NFKD left alone through the transliteration table, where that is safe.

    A letter only when Unicode names it Latin (a transliterated CJK or Cyrillic letter would
    make Latin words out of foreign ones); a symbol, number or punctuation mark only when it
    becomes a single ASCII character (an emoji becomes ``:name:``, which is no look-alike).
    """
    category = unicodedata.category(char)
    ascii_ = anyascii(char)
    if category[0] == "L":
        name = unicodedata.name(char, "")
        if not name.startswith("LATIN "):
            return None
        letters = "".join(c for c in ascii_ if c.isalnum())
        if not 1 <= len(letters) <= 2:
            return None
        if " WITH " in name or "DOTLESS" in name:
            return letters.lower(), Transform.DIACRITIC_REMOVED
        return letters.lower(), Transform.HOMOGLYPH_FOLDED
    if category[0] in "SPN":
        inner = ascii_[1:-1] if len(ascii_) == 3 and ascii_[0] + ascii_[-1] == "()" else ascii_
        if len(inner) == 1:
            return inner.lower(), Transform.COMPATIBILITY_FOLDED
    return None


@functools.lru_cache(maxsize=8192)
def _fold(char: str) -> tuple[str, frozenset[Transform]]:
    """Normalise one character: what it becomes (possibly nothing) and what that undid."""
    category = unicodedata.category(char)
    if _invisible(char, category):
        return "", frozenset({Transform.INVISIBLE_REMOVED})
    if category in ("Mn", "Me"):  # a combining mark on its own
        return "", frozenset({Transform.DIACRITIC_REMOVED})
    transforms: set[Transform] = set()
    decomposed = unicodedata.normalize("NFKD", char)
    if decomposed != char:
        if unicodedata.normalize("NFD", char) != decomposed:
            transforms.add(Transform.COMPATIBILITY_FOLDED)
        if any(unicodedata.combining(c) for c in decomposed):
            transforms.add(Transform.DIACRITIC_REMOVED)
    bases = "".join(c for c in decomposed if not unicodedata.combining(c))
    if category[0] == "L" and decomposed != char:  # a Latin letter stays letters: ŀ is l, not l·
        bases = "".join(c for c in bases if c.isascii() and c.isalnum()) or bases
    if len(bases) == 3 and bases[0] + bases[-1] == "()" and bases != char:
        bases = bases[1]  # a parenthesized letter or digit: ⒜ is a, ⑴ is 1
    out = []
    for base in bases:
        # Before casefolding, which would turn the final sigma ς (a c) into σ (an o).
        capital = _CAPITAL_HOMOGLYPHS.get(base) or _HOMOGLYPHS.get(base)
        if capital is not None:
            transforms.add(Transform.HOMOGLYPH_FOLDED)
            out.append(capital)
            continue
        for folded in base.casefold():
            latin = _HOMOGLYPHS.get(folded)
            if latin is not None:
                transforms.add(Transform.HOMOGLYPH_FOLDED)
                out.append(latin)
                continue
            if not folded.isascii():
                looks = _look_alike(folded)
                if looks is not None:
                    transforms.add(looks[1])
                    out.append(looks[0])
                    continue
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
    position = 0
    for run in _NON_ASCII.finditer(text):
        if run.start() > position:  # ASCII between: only case changes, one character for one
            chars.append(text[position : run.start()].lower())
            origins.extend(range(position, run.start()))
            transforms.append(pending)
            transforms.extend(itertools.repeat(_NOTHING, run.start() - position - 1))
            pending = _NOTHING
        for index in range(run.start(), run.end()):
            folded, undone = _fold(text[index])
            if not folded:
                pending = pending | undone
                continue
            undone = undone | pending if pending else undone
            pending = _NOTHING
            chars.append(folded)
            origins.extend(itertools.repeat(index, len(folded)))
            transforms.extend(itertools.repeat(undone, len(folded)))
        position = run.end()
    if position < len(text):
        chars.append(text[position:].lower())
        origins.extend(range(position, len(text)))
        transforms.append(pending)
        transforms.extend(itertools.repeat(_NOTHING, len(text) - position - 1))
        pending = _NOTHING
    if pending and transforms:  # dropped characters at the very end belong to the last kept
        transforms[-1] = transforms[-1] | pending
    return Skeleton(text, "".join(chars), tuple(origins), tuple(transforms))

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
4. **Letters of other scripts drawn like Latin ones** (Cyrillic, Greek, Coptic, Armenian,
   Cherokee: ``а``, ``ѕ``, ``ο``, capital ``Η``, ``օ``, ``Ꭺ``) are folded by their look, not
   by a transliteration (``р`` is "r" but looks like ``p``): a small vetted table first, then
   Unicode's confusables table (``confusables.txt``, as shipped by the ``confusable-homoglyphs``
   package, MIT licence), then the letter's Unicode name: a letter with a descender, hook,
   tail or stroke, or with a shape-keeping qualifier (``BASHKIR``, ``TALL``), is read as its base
   letter (``ҳ`` "HA WITH DESCENDER" and ``ӽ`` "HA WITH HOOK" are ``х``, an x; ``ҡ`` "BASHKIR
   KA" is ``к``). Mirrored and turned letters are not read as their base, nor letters whose
   name qualifies the base with a language (``ҩ`` "ABKHASIAN HA" is no x). Accented Greek letters
   (tonos, dialytika) are unfolded by rule 3 first.
5. **Other Latin letters and symbols** are transliterated by ``anyascii`` (PyPI, ISC licence),
   a maintained Unicode-to-ASCII table: letters with strokes, bars and hooks (``ø``, ``đ``, ``ł``,
   ``ħ``, ``ƀ``, ``ɨ``), dotless ``ı`` and ``ȷ``, IPA letters and small capitals (``ɑ``, ``ɡ``,
   ``ᴀ``, ``ʙ``, ``ɴ``), squared and negative enclosed letters (``🄰``, ``🅰``, ``🅐``), regional
   indicators, and punctuation look-alikes such as the whole dash family (``−``, ``⁃``, ``﹘``,
   ``⸺``). A letter is transliterated only when its Unicode name says it is Latin, and a symbol
   only when it becomes one ASCII character, so that other scripts (CJK, kana) never turn into
   Latin words. Three Latin click letters that look like ``!`` and ``|`` are read by their look.
6. **Symbols drawn as an x** (``×``, ``⨯``, ``✕``, ``✖``, ``╳``, ``⤫``, ``⤬``, saltires:
   any symbol whose name says it multiplies, or that either table reads as x) are the
   letter x when a letter stands by them and no digit does, looking past a few spaces,
   separators and invisible characters: ``se×`` is "sex", ``1920×1080`` and ``4×4`` keep
   the sign, which the rule filter reads as a separator. A times sign read as x is also
   read as a separator by the rule filter (``n×a×k×e×d``, ``nu×de``): it tries both.

Not handled (limits): look-alikes from other scripts (Lisu ``ꓮ``, Canadian syllabics,
Tifinagh), mirrored or turned letters (``ԑ``, ``ꙅ``), letters that Unicode's confusables
table reads as a digit or punctuation (``б`` as 6), letters whose look is two Latin letters,
and pictures of letters (emoji, ASCII art). Folding is by look, so a word wholly written in
those scripts whose letters all look Latin reads as that Latin word. A character the rules
above leave alone stays as it is: the rule filter treats it as a separator when it is no
letter or digit, and as part of a foreign word when it is.

Pure: no I/O beyond reading the transliteration and confusables tables shipped in their
packages; the per-character work is cached, bounded by the number of distinct characters,
and a times sign looks at a bounded number of neighbours.
"""

from __future__ import annotations

import bisect
import enum
import functools
import importlib.resources
import itertools
import json
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
    """An ending on the term, plural, verb or informal (``-s``, ``-ing``, ``-y``, ``-ish``)."""
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

    def positions(self, transform: Transform) -> list[int]:
        """Return the sorted skeleton positions where *transform* was undone (do not modify)."""
        return self._where.get(transform, [])

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


# Scripts whose letters are read by their look: Unicode's confusables table first, then a
# letter's name stripped of its modifiers ("... HA WITH DESCENDER" is a form of "... HA").
_LOOK_SCRIPTS = ("CYRILLIC", "GREEK", "COPTIC", "ARMENIAN", "CHEROKEE")
_SCRIPT_LETTER = re.compile(
    r"^(?P<script>CYRILLIC|GREEK|COPTIC|ARMENIAN|CHEROKEE) (?P<case>(?:SMALL |CAPITAL )?)"
    r"LETTER (?P<base>[A-Z -]+?)(?P<modifier> WITH [A-Z -]+)?$"
)
# Names whose letter is drawn mirrored or turned: the base letter is not what the reader sees.
_MIRRORED = ("REVERSED", "TURNED", "INVERTED", "SIDEWAYS")
# Qualifiers in a letter's name that keep its base's shape: ``ҡ`` BASHKIR KA is a k.
_SHAPE_KEEPING = frozenset({"BASHKIR", "TALL", "NARROW", "ROUNDED", "MONOCULAR", "BINOCULAR"})
_HOMOGLYPH_ONLY = frozenset({Transform.HOMOGLYPH_FOLDED})
_HOMOGLYPH_MARKED = frozenset({Transform.HOMOGLYPH_FOLDED, Transform.DIACRITIC_REMOVED})


@functools.cache
def _confusables() -> tuple[dict[str, str], frozenset[str]]:
    """Unicode's confusables (``confusables.txt``): what reads as one ASCII letter, and as x.

    First, each letter of the look scripts drawn like one ASCII letter, and that letter;
    second, every character drawn like an x. Read from the ``confusable-homoglyphs``
    package's copy of the table (MIT licence), from the package's own directory only, the
    first time a character needs it.
    """
    data = importlib.resources.files("confusable_homoglyphs").joinpath("confusables.json")
    table: dict[str, list[dict[str, str]]] = json.loads(data.read_text(encoding="utf-8"))
    letters: dict[str, str] = {}
    crosses: set[str] = set()
    for char, glyphs in table.items():
        if len(char) != 1:
            continue
        if any(glyph["c"] in ("x", "X") for glyph in glyphs):
            crosses.add(char)
        if not unicodedata.name(char, "").startswith(_LOOK_SCRIPTS):
            continue
        for glyph in glyphs:
            latin = glyph["c"]
            if len(latin) == 1 and latin.isascii() and latin.isalpha():
                letters[char] = latin.lower()
                break
    return letters, frozenset(crosses)


@functools.lru_cache(maxsize=4096)
def _script_look_alike(char: str, depth: int = 0) -> tuple[str, frozenset[Transform]] | None:
    """Return the Latin letter a Cyrillic, Greek, Coptic, Armenian or Cherokee letter looks like.

    The vetted table first, then Unicode's confusables, then the letter's name: a letter
    with a descender, hook, tail or stroke, or with a qualifier before its name ("BASHKIR
    KA"), looks like its base letter, which is read the same way. Case matters: Greek ``Ν``
    is an N, ``ν`` a v.
    """
    latin = _CAPITAL_HOMOGLYPHS.get(char) or _HOMOGLYPHS.get(char) or _confusables()[0].get(char)
    if latin is not None:
        return latin, _HOMOGLYPH_ONLY
    found = _SCRIPT_LETTER.match(unicodedata.name(char, ""))
    if found is None or depth > 4 or any(m in found["base"] for m in _MIRRORED):
        return None
    words = found["base"].split()
    # The base as named, less modifiers after WITH; then less a qualifier in front that
    # keeps the shape (a language's name or a width can change it: ABKHASIAN HA is no x).
    for start in range(0 if found["modifier"] else 1, len(words)):
        if start and words[start - 1] not in _SHAPE_KEEPING:
            break
        name = f"{found['script']} {found['case']}LETTER {' '.join(words[start:])}"
        try:
            base = unicodedata.lookup(name)
        except KeyError:
            continue
        looks = _script_look_alike(base, depth + 1)
        if looks is not None:
            return looks[0], _HOMOGLYPH_MARKED if found["modifier"] else looks[1]
    return None


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
        script = _script_look_alike(base)
        if script is not None:
            transforms.update(script[1])
            out.append(script[0])
            continue
        for folded in base.casefold():
            script = _script_look_alike(folded)
            if script is not None:
                transforms.update(script[1])
                out.append(script[0])
                continue
            if not folded.isascii():
                looks = _look_alike(folded)
                if looks is not None:
                    transforms.add(looks[1])
                    out.append(looks[0])
                    continue
            out.append(folded)
    return "".join(out), frozenset(transforms)


_TIMES_WINDOW = 3  # how many spaces or separators a times sign looks past for a letter


@functools.lru_cache(maxsize=1024)
def _times_like(char: str) -> bool:
    """Whether *char* is a symbol drawn as an x: a multiplication sign, saltire, diagonal cross.

    From Unicode's data: a symbol (no enclosed letter) that the transliteration table or the
    confusables table reads as x, or whose name says it multiplies.
    """
    if unicodedata.category(char)[0] != "S":
        return False
    name = unicodedata.name(char, "")
    if "LETTER" in name:
        return False
    if "MULTIPLICATION" in name or "SALTIRE" in name:
        return True
    return anyascii(char).lower() == "x" or char in _confusables()[1]


def _times_neighbour(text: str, index: int, step: int) -> tuple[str, bool]:
    """Say what stands by a times sign: ``"letter"``, ``"digit"`` or ``""``, and whether next to it.

    Looks past invisible characters and combining marks, and past at most a few spaces and
    separators, never past another times sign: the work per sign is bounded by the number of
    invisible characters beside it, which no other sign looks past.
    """
    passed = 0
    while passed <= _TIMES_WINDOW:
        index += step
        if not 0 <= index < len(text) or _times_like(text[index]):
            return "", False
        folded = _fold(text[index])[0]
        if folded[:1].isalpha():
            return "letter", passed == 0
        if folded[:1].isdigit():
            return "digit", passed == 0
        if folded:  # a space or separator; invisible characters and marks are not counted
            passed += 1
    return "", False


def _times_as_x(text: str, index: int) -> bool:
    """Whether the times sign at *index* stands for the letter x: a letter by it, no digit.

    A letter may stand a few separators away, a digit vetoes only right next to the sign:
    ``se×``, ``se × y`` and ``(se×:1.3)`` read as "sex"; ``4×4``, ``1920×1080`` and
    ``2× faster`` keep the sign.
    """
    sides = (_times_neighbour(text, index, -1), _times_neighbour(text, index, 1))
    if any(kind == "digit" and next_to for kind, next_to in sides):
        return False
    return any(kind == "letter" for kind, _ in sides)


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
            if _times_like(text[index]):
                times = _times_as_x(text, index)
                folded, undone = ("x", _HOMOGLYPH_ONLY) if times else (text[index], _NOTHING)
            else:
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

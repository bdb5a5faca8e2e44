"""The forbidden-term filter: whole-word matching that sees through obfuscation and explains itself.

How a prompt is read (each step is reported in :attr:`RuleMatch.transforms` when it mattered):

1. :func:`~safegen.text.normalize.skeleton` folds case, diacritics, compatibility forms and
   look-alike letters and drops invisible characters, remembering where each letter came from
   (its docstring lists what it sees through, and its limits).
2. Generators' prompt syntax is read as syntax: a weight after a colon (``(word:1.3)``,
   ``<lora:name:0.8>``, ``[from:to:0.5]``) is no digits that could stand for letters, and
   ``|`` inside a closed ``{...}`` or ``[...]`` separates alternatives (``{a|b}``) rather than
   standing for ``i``. Brackets, parentheses, ``<>`` and colons are separators anyway.
3. Words are runs of letters and the digits and symbols leetspeak uses for letters (``n4k3d``);
   in a word with at least one letter, those stand for their letters. ``l`` and ``1`` and ``!``
   and ``|`` all read as ``i``, in terms and text alike, so either spelling matches. The text
   is read a second time with the symbols (``! | + @ $``) as separators, so that syntax around
   a word (``word++``, ``@word``, ``a|b``, ``n!u!d!e``) hides nothing. A times sign the
   skeleton read as an x (``se×``) is read once more as a separator (``n×a×k×e×d``,
   ``nu×de``): both readings are tried, each at most once.
4. Single letters spaced out by anything that is no letter or digit (spaces, punctuation, the
   dash family, symbols, emoji) are joined (``s.e.x``, ``n—u—d—e``), and so are longer pieces
   split by such separators without whitespace (``na-ked``, ``nu.de``). Pieces apart by
   whitespace are joined only when they are single letters: joining real words
   (``bass exercise``) would invent terms. Each word of a multi-word term may be written
   either way (``blow j o b``).
5. A word matches a term when it *is* the term, allowing each letter to be repeated
   (``naaaked``, never ``nked``) and a plural or verb ending (``-s``, ``-es``, ``-ing``,
   ``-ed``, ``-er``). A term inside a longer word does not match: ``classic``, ``Scunthorpe``,
   ``cocktail`` and ``therapist`` are innocent.

The allowlist holds words and phrases. A match is dropped only when every word of it lies in an
occurrence of an allowed entry: allowing ``"job"`` leaves the term ``"blow job"`` in force
(``blow`` is not allowed), allowing the phrase ``"blow job"`` drops it, and allowing the phrase
``"pussy willow"`` does not allow ``pussy`` anywhere else. An occurrence counts only as the
generator renders it, its words together: any generator syntax (``| : ( ) [ ] { } < >``)
from its first letter to its last voids it (``{pussy|willow}``, ``[pussy:willow:0.5]``,
``pussy (willow:0)``, ``pussy::5 willow::-5``), while a phrase written plainly or wholly
inside one group (``(pussy willow:1.2)``) is allowed. This errs towards flagging: an allowed
phrase spelled with ``|`` for ``i`` no longer counts.

Not handled (limits): a term split by whitespace into pieces longer than one letter
(``na ked``), a term glued to other letters (``nakedgirl``, ``naked69``), misspellings that
are not stretches (``nakd``), other languages, and the skeleton's own limits. Within
``{...}`` and ``[...]``, ``|`` separates alternatives the generator never joins, so a term
split across them (``{na|ked}``) is not one either.

Matching looks each word up in a table keyed by the terms' squeezed spellings, so its cost
does not grow with the number of terms; every step is linear in the length of the text (a
match costs a few binary searches, never a walk over the text). Pure: no I/O.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from typing import Any

import attrs

from safegen.errors import InvalidPromptError, PolicyError
from safegen.text._reading import (
    _CLASSES,
    _HAS_LETTER,
    _NOTHING,
    _RUN_OF_ONE,
    _SUFFIXES,
    _SYMBOLS,
    _WORD,
    _Lattice,
    _Pattern,
    _read_syntax,
    _squeeze,
    _stems,
    _Token,
)
from safegen.text.normalize import Skeleton, Transform, _times_like, skeleton
from safegen.text.terms import SEVERITIES, default_terms

__all__ = ["RuleFilter", "RuleMatch", "Term"]

# Generators' syntax: alternation, prompt editing and weights, groups, tags. An allowed phrase
# with one of these between (or inside) its words is not rendered as the phrase.
_SYNTAX_MARKS = re.compile(r"[|:()\[\]{}<>]")
_X = re.compile("x")


def _text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or (attribute.name == "category" and not value):
        kind = "a non-empty string" if attribute.name == "category" else "a string"
        raise PolicyError(f"term {attribute.name}: expected {kind}, got {type(value).__name__}")


def _severity(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in SEVERITIES:
        raise PolicyError(f"term severity: expected one of {SEVERITIES}, got {value!r}")


def _strings(value: object, where: str) -> tuple[Any, ...]:
    """Read a list of terms or phrases: any iterable but a single string (a common slip)."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise PolicyError(f"{where}: expected a list of strings, got {type(value).__name__}")
    return tuple(value)


@attrs.frozen
class Term:
    """A forbidden word or phrase and the category it belongs to.

    :param text: the term as written, e.g. ``"naked"`` or ``"blow job"``.
    :param category: what kind of harm it names, e.g. ``"sexual"``; ``"custom"`` by default.
    :param severity: ``"severe"`` (the default) or ``"mild"``, for a category that mixes terms
        calling for different actions (a policy may review mild terms and block severe ones).
    :raises PolicyError: *text* is not a string, *category* not a non-empty string, or
        *severity* not one of :data:`~safegen.text.terms.SEVERITIES`.
    """

    text: str = attrs.field(validator=_text)
    category: str = attrs.field(default="custom", validator=_text)
    severity: str = attrs.field(default="severe", kw_only=True, validator=_severity)


@attrs.frozen
class RuleMatch:
    """Where a forbidden term was found, and what had been done to hide it.

    :param term: the term that matched, as written in the term list.
    :param category: the term's category.
    :param start: where the match starts in the original text.
    :param end: where it ends (exclusive), so ``text[start:end]`` is ``matched``.
    :param matched: the original text that matched, obfuscation and all.
    :param transforms: what was undone to expose it; empty for a plain match.
    :param severity: the term's severity (``"severe"`` or ``"mild"``).
    :param negated: whether the prompt negates the term (``"no nudity"``): a signal for
        review rather than proof of intent.
    """

    term: str
    category: str
    start: int
    end: int
    matched: str
    transforms: frozenset[Transform] = frozenset()
    severity: str = "severe"
    negated: bool = False

    @property
    def span(self) -> tuple[int, int]:
        """``(start, end)``: the slice of the original text to highlight."""
        return self.start, self.end

    def to_dict(self) -> dict[str, Any]:
        """Return the match as plain JSON-ready data."""
        return {
            "term": self.term,
            "category": self.category,
            "span": [self.start, self.end],
            "matched": self.matched,
            "transforms": sorted(t.value for t in self.transforms),
            "severity": self.severity,
            "negated": self.negated,
        }


@attrs.frozen
class _Compiled:
    term: Term
    words: tuple[_Pattern, ...]


def _term_words(text: str, where: str) -> tuple[str, ...]:
    words = tuple(
        w.translate(_CLASSES) for w in _WORD.findall(skeleton(text).chars) if _HAS_LETTER.search(w)
    )
    if not words:
        raise PolicyError(f"{where}: {text!r} has no letters to match")
    return words


class RuleFilter:
    """A forbidden-term filter that sees through obfuscation and says what it found where.

    :param terms: the forbidden words and phrases: strings (category ``"custom"``) or
        :class:`Term` objects. Exactly these are used; see :meth:`default` for the shipped list.
    :param allow: words and phrases that never count, in any inflection, even when a term
        matches them. A match is dropped only when each of its words lies in an occurrence of
        an allowed entry: allowing one word of a multi-word term leaves the term in force, and
        allowing a phrase allows its words only where they stand together.
    :raises PolicyError: a term has no letters.

    >>> rules = RuleFilter(["naked"])
    >>> [(m.term, m.matched) for m in rules.scan("a n4k3d man")]
    [('naked', 'n4k3d')]
    >>> rules.scan("a classic painting")
    ()
    """

    def __init__(self, terms: Iterable[str | Term] = (), allow: Iterable[str] = ()) -> None:
        self._terms = tuple(t if isinstance(t, Term) else Term(t) for t in _strings(terms, "terms"))
        self._allow = _strings(allow, "allow")
        self._index: dict[str, list[_Compiled]] = {}
        spellings: list[str] = []
        seen: set[tuple[str, ...]] = set()
        for term in self._terms:
            if not isinstance(term.text, str):
                raise PolicyError(f"terms: expected a string, got {term.text!r}")
            words = _term_words(term.text, "terms")
            if (term.category, *words) in seen:
                continue  # the same term twice (or two spellings of it): one is enough
            seen.add((term.category, *words))
            spellings.extend(words)
            compiled = _Compiled(term, tuple(_Pattern.compile(w) for w in words))
            self._index.setdefault(compiled.words[0].key, []).append(compiled)
        # The most times any term repeats a letter: beyond that, a longer stretch of the same
        # spaced-out letter cannot make a new match.
        self._longest_run = max(
            (len(run.group()) for word in spellings for run in _RUN_OF_ONE.finditer(word)),
            default=1,
        )
        # Allowed entries (words or phrases) by the key of their first word.
        self._allowed: dict[str, list[tuple[_Pattern, ...]]] = {}
        for entry in self._allow:
            if not isinstance(entry, str):
                raise PolicyError(f"allow: expected a string, got {entry!r}")
            phrase = tuple(_Pattern.compile(w) for w in _term_words(entry, "allow"))
            self._allowed.setdefault(phrase[0].key, []).append(phrase)
        # Every squeezed beginning of a (possibly inflected) word of a term or allowed entry:
        # pieces split by separators are joined only while they could still spell one.
        keys = {
            pattern.key
            for patterns in (
                *(c.words for entries in self._index.values() for c in entries),
                *(p for phrases in self._allowed.values() for p in phrases),
            )
            for pattern in patterns
        }
        self._prefixes = {
            spelled[:n]
            for key in keys
            for spelled in (key, *(_squeeze(key + s) for s in _SUFFIXES))
            for n in range(1, len(spelled) + 1)
        }

    @classmethod
    def default(
        cls,
        *,
        add: Iterable[str | Term] = (),
        remove: Iterable[str] = (),
        allow: Iterable[str] = (),
    ) -> RuleFilter:
        """Build a filter from the shipped, curated term list, adjusted to your platform.

        :param add: terms to use as well as the defaults.
        :param remove: default terms not to use, as written in the list.
        :param allow: words and phrases that never count.
        :raises PolicyError: a term in *remove* is not in the default list, or an argument is
            not a list of strings.
        """
        defaults = [Term(text, category, severity=sev) for text, category, sev in default_terms()]
        removing = set()
        for entry in _strings(remove, "remove"):
            if not isinstance(entry, str):
                raise PolicyError(f"remove: expected a string, got {type(entry).__name__}")
            removing.add(entry.casefold())
        unknown = removing - {t.text.casefold() for t in defaults}
        if unknown:
            raise PolicyError(f"remove: not in the default term list: {sorted(unknown)}")
        kept = [t for t in defaults if t.text.casefold() not in removing]
        return cls([*kept, *_strings(add, "add")], allow=allow)

    @property
    def terms(self) -> tuple[Term, ...]:
        """The terms in use."""
        return self._terms

    @property
    def allow(self) -> tuple[str, ...]:
        """The words and phrases that never count."""
        return self._allow

    def __repr__(self) -> str:
        return f"<RuleFilter terms={len(self._terms)} allow={len(self._allow)}>"

    def scan(self, text: str) -> tuple[RuleMatch, ...]:
        """Find every forbidden term in *text*, in order of position.

        Linear in the length of *text*, whatever it holds.

        :raises InvalidPromptError: *text* is not a string.
        """
        if not isinstance(text, str):
            raise InvalidPromptError(f"expected a string, got {type(text).__name__}")
        if not self._index:
            return ()
        sk = skeleton(text)
        found: dict[tuple[str, str, int, int], RuleMatch] = {}
        syntax = _read_syntax(sk.chars)
        readings = [(syntax, _NOTHING)]
        split = syntax.translate(_SYMBOLS)
        if split != syntax:  # symbols read as separators: found only this way, it says so
            readings.append((split, frozenset({Transform.PROMPT_SYNTAX})))
        times = _times_read_as_x(sk)
        if times:  # times signs read as separators too: at most four readings in all
            readings += [(_as_separators(chars, times), read) for chars, read in readings]
        as_x = [True] * (len(readings) // 2 if times else len(readings))
        as_x += [False] * (len(readings) - len(as_x))
        marks = [m.start() for m in _SYNTAX_MARKS.finditer(sk.chars)] if self._allowed else []
        for (chars, read), x_read in zip(readings, as_x, strict=True):
            separated = [] if x_read else times
            lattice = _Lattice.build(chars, self._prefixes, self._longest_run)
            covered = self._covered(lattice, marks)
            for at in range(len(lattice.words)):
                for token in lattice.tokens(at):
                    for key in _stems(_squeeze(token.word.classes)):
                        for compiled in self._index.get(key, ()):
                            for last, undone in lattice.follow(compiled.words, token):
                                if lattice.allowed(covered, token.first, last.last):
                                    continue
                                self._record(
                                    found, sk, compiled.term, token, last, undone | read, separated
                                )
        return _outermost(found.values())

    def _covered(self, lattice: _Lattice, marks: list[int]) -> list[bool]:
        """For each word, whether it lies in an occurrence of an allowed word or phrase.

        An occurrence counts only as the generator renders it, its words together: any
        syntax mark (*marks*: sorted skeleton positions) from its first letter to its last
        splits it (``{pussy|willow}``, ``[pussy:willow:0.5]``, ``pussy (willow:0)``), so it
        allows nothing. A phrase wholly inside one group (``(pussy willow:1.2)``) counts.
        """
        covered = [False] * len(lattice.words)
        if not self._allowed:
            return covered
        reach = 0  # the first word not covered by any allowed occurrence starting so far
        for at in range(len(lattice.words)):
            for token in lattice.tokens(at):
                for key in _stems(_squeeze(token.word.classes)):
                    for phrase in self._allowed.get(key, ()):
                        for last, _ in lattice.follow(phrase, token):
                            start = lattice.words[token.first].start
                            end = lattice.words[last.last].end
                            inside = bisect.bisect_left(marks, start)
                            if inside < len(marks) and marks[inside] < end:
                                continue  # split by syntax: not the phrase as rendered
                            reach = max(reach, last.last + 1)
            covered[at] = at < reach
        return covered

    @staticmethod
    def _record(
        found: dict[tuple[str, str, int, int], RuleMatch],
        sk: Skeleton,
        term: Term,
        first: _Token,
        last: _Token,
        undone: frozenset[Transform],
        separated: list[int],
    ) -> None:
        start, end = sk.span(first.word.start, last.word.end)
        key = (term.text, term.category, start, end)
        if key in found:
            return
        transforms = undone | sk.transforms_in(first.word.start, last.word.end)
        if separated and Transform.HOMOGLYPH_FOLDED in transforms:
            # Times signs read as separators here: no look-alike unless another letter is one.
            signs = _count_in(separated, first.word.start, last.word.end)
            folded = sk.positions(Transform.HOMOGLYPH_FOLDED)
            if _count_in(folded, first.word.start, last.word.end) == signs:
                transforms = transforms - {Transform.HOMOGLYPH_FOLDED}
        found[key] = RuleMatch(
            term.text,
            term.category,
            start,
            end,
            sk.text[start:end],
            frozenset(transforms),
            severity=term.severity,
        )


def _times_read_as_x(sk: Skeleton) -> list[int]:
    """Return the skeleton positions of times signs the skeleton read as the letter x."""
    if sk.text.isascii():
        return []
    return [
        m.start()
        for m in _X.finditer(sk.chars)
        if sk.text[sk.origins[m.start()]] != "x" and _times_like(sk.text[sk.origins[m.start()]])
    ]


def _count_in(positions: list[int], start: int, end: int) -> int:
    """Count the sorted *positions* in ``[start, end)``: two binary searches."""
    return bisect.bisect_left(positions, end) - bisect.bisect_left(positions, start)


def _as_separators(chars: str, positions: list[int]) -> str:
    """Return *chars* with the characters at *positions* read as tight separators."""
    out = list(chars)
    for at in positions:
        out[at] = "-"
    return "".join(out)


def _outermost(matches: Iterable[RuleMatch]) -> tuple[RuleMatch, ...]:
    """Sort matches by position, dropping any that lies inside a longer one.

    (``s-e-x`` inside ``s-e-x-y``, ``sex`` inside ``sex toy``): the longer match explains it.
    """
    kept: list[RuleMatch] = []
    reach, reach_start = -1, -1  # the furthest end kept so far, and where that match starts
    for match in sorted(matches, key=lambda m: (m.start, -m.end, m.term)):
        # Everything kept starts at or before this match: it is inside one of them exactly
        # when it ends within the furthest reach, unless it is that very span (another term).
        if match.end < reach or (match.end == reach and match.start != reach_start):
            continue
        if match.end > reach:
            reach, reach_start = match.end, match.start
        kept.append(match)
    return tuple(sorted(kept, key=lambda m: (m.start, m.end, m.term)))

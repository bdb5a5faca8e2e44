"""The forbidden-term filter: whole-word matching that sees through obfuscation and explains itself.

How a prompt is read (each step is reported in :attr:`RuleMatch.transforms` when it mattered):

1. :func:`~safegen.text.normalize.skeleton` folds case, diacritics, compatibility forms and
   homoglyphs and drops invisible characters, remembering where each letter came from.
2. Words are runs of letters and the digits and symbols leetspeak uses for letters (``n4k3d``);
   in a word with at least one letter, those stand for their letters. ``l`` and ``1`` and ``!``
   and ``|`` all read as ``i``, in terms and text alike, so either spelling matches.
3. Single letters spaced out with spaces, dots, dashes, underscores or asterisks are joined
   (``s.e.x``). Only single letters: joining real words (``bass exercise``) would invent terms.
4. A word matches a term when it *is* the term, allowing each letter to be repeated
   (``naaaked``, never ``nked``) and a plural or verb ending (``-s``, ``-es``, ``-ing``,
   ``-ed``, ``-er``). A term inside a longer word does not match: ``classic``, ``Scunthorpe``,
   ``cocktail`` and ``therapist`` are innocent.

Matching looks each word up in a table keyed by the terms' squeezed spellings, so its cost
does not grow with the number of terms. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import attrs

from safegen.errors import InvalidPromptError, PolicyError
from safegen.text.normalize import Skeleton, Transform, skeleton

__all__ = ["RuleFilter", "RuleMatch", "Term"]

# Leetspeak digits and symbols, and the one letter folded for everyone: l and i look alike.
_LEET = {"0": "o", "1": "i", "!": "i", "|": "i", "3": "e", "4": "a", "@": "a", "5": "s",
         "$": "s", "7": "t", "+": "t", "8": "b", "9": "g"}  # fmt: skip
_CLASSES = str.maketrans({**_LEET, "l": "i"})
_LEET_CHARS = frozenset(_LEET)
# A word: letters and leet characters; "!" only between two of them, where it is no punctuation.
_WORD = re.compile(r"(?:[a-z0-9@$|+]|(?<=[a-z0-9@$|+])!+(?=[a-z0-9@$|+]))+")
_HAS_LETTER = re.compile(r"[a-z]")
# What may stand between spaced-out letters.
_SEPARATORS = re.compile(r"[\s.\-_*~·•/\\]+")
_RUNS = re.compile(r"(.)\1+")
_RUN_OF_ONE = re.compile(r"(.)\1*")
_SUFFIXES = ("s", "es", "ing", "ed", "er", "ers")
_MAX_JOINED = 24  # the longest spaced-out word looked at, in letters


def _squeeze(word: str) -> str:
    return _RUNS.sub(r"\1", word)


@attrs.frozen
class Term:
    """A forbidden word or phrase and the category it belongs to.

    :param text: the term as written, e.g. ``"naked"`` or ``"blow job"``.
    :param category: what kind of harm it names, e.g. ``"sexual"``; ``"custom"`` by default.
    """

    text: str
    category: str = "custom"


@attrs.frozen
class RuleMatch:
    """Where a forbidden term was found, and what had been done to hide it.

    :param term: the term that matched, as written in the term list.
    :param category: the term's category.
    :param start: where the match starts in the original text.
    :param end: where it ends (exclusive), so ``text[start:end]`` is ``matched``.
    :param matched: the original text that matched, obfuscation and all.
    :param transforms: what was undone to expose it; empty for a plain match.
    """

    term: str
    category: str
    start: int
    end: int
    matched: str
    transforms: frozenset[Transform] = frozenset()

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
        }


@attrs.frozen
class _Word:
    """A word of the text, in skeleton coordinates, read as letter classes.

    A lone digit or symbol (``4``) is kept as a word without letters: it is no word on its
    own, but it may be a letter of a spaced-out one (``n 4 k 3 d``).
    """

    start: int
    end: int
    classes: str
    transforms: frozenset[Transform]
    has_letter: bool = True


_ENDINGS = "|".join(_SUFFIXES)


@attrs.frozen
class _Pattern:
    """One word of a compiled term: its squeezed key and how a text word must spell it.

    Each letter run of the term may be longer in the text, never shorter; an inflection may
    follow. A term ending in a single ``e`` may drop it before ``-ing``, ``-er`` or ``-ed``.
    """

    key: str
    length: int
    whole: re.Pattern[str]
    e_dropped: re.Pattern[str] | None

    @classmethod
    def compile(cls, word: str) -> _Pattern:
        runs = [m.group() for m in _RUN_OF_ONE.finditer(word)]
        pieces = [f"{re.escape(run[0])}{{{len(run)},}}" for run in runs]
        whole = re.compile(f"(?P<body>{''.join(pieces)})(?P<suffix>{_ENDINGS})?")
        e_dropped = None
        if len(runs) > 1 and runs[-1] == "e":
            e_dropped = re.compile(f"(?P<body>{''.join(pieces[:-1])})(?P<suffix>ing|er|ers|ed)")
        return cls(_squeeze(word), len(word), whole, e_dropped)

    def match(self, word: str) -> frozenset[Transform] | None:
        """Return what was undone if *word* spells this pattern's word, else ``None``."""
        found, length = self.whole.fullmatch(word), self.length
        if found is None and self.e_dropped is not None:
            found, length = self.e_dropped.fullmatch(word), self.length - 1
        if found is None:
            return None
        undone = set()
        if found["suffix"]:
            undone.add(Transform.INFLECTION)
        if len(found["body"]) > length:
            undone.add(Transform.REPEATS_SQUEEZED)
        return frozenset(undone)


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
    :param allow: words that never count, in any inflection, even when a term matches them
        (a match made only of allowed words is dropped).
    :raises PolicyError: a term has no letters.

    >>> rules = RuleFilter(["naked"])
    >>> [(m.term, m.matched) for m in rules.scan("a n4k3d man")]
    [('naked', 'n4k3d')]
    >>> rules.scan("a classic painting")
    ()
    """

    def __init__(self, terms: Iterable[str | Term] = (), allow: Iterable[str] = ()) -> None:
        self._terms = tuple(t if isinstance(t, Term) else Term(t) for t in terms)
        self._allow = tuple(allow)
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
        # Every squeezed beginning of a (possibly inflected) single-word term: spaced-out
        # letters are joined only while they could still spell one.
        self._prefixes = {
            spelled[:n]
            for key, entries in self._index.items()
            if any(len(c.words) == 1 for c in entries)
            for spelled in (key, *(_squeeze(key + s) for s in _SUFFIXES))
            for n in range(1, len(spelled) + 1)
        }
        self._allowed: dict[str, list[_Pattern]] = {}
        for word in self._allow:
            for piece in _term_words(word, "allow"):
                pattern = _Pattern.compile(piece)
                self._allowed.setdefault(pattern.key, []).append(pattern)

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
        :param allow: words that never count.
        :raises PolicyError: a term in *remove* is not in the default list.
        """
        from safegen.text.terms import default_terms  # reads the package's data files

        defaults = default_terms()
        removing = {r.casefold() for r in remove}
        unknown = removing - {t.text.casefold() for t in defaults}
        if unknown:
            raise PolicyError(f"remove: not in the default term list: {sorted(unknown)}")
        kept = [t for t in defaults if t.text.casefold() not in removing]
        return cls([*kept, *add], allow=allow)

    @property
    def terms(self) -> tuple[Term, ...]:
        """The terms in use."""
        return self._terms

    @property
    def allow(self) -> tuple[str, ...]:
        """The words that never count."""
        return self._allow

    def __repr__(self) -> str:
        return f"<RuleFilter terms={len(self._terms)} allow={len(self._allow)}>"

    def scan(self, text: str) -> tuple[RuleMatch, ...]:
        """Find every forbidden term in *text*, in order of position.

        :raises InvalidPromptError: *text* is not a string.
        """
        if not isinstance(text, str):
            raise InvalidPromptError(f"expected a string, got {type(text).__name__}")
        if not self._index:
            return ()
        sk = skeleton(text)
        words = _words(sk)
        found: dict[tuple[str, str, int, int], RuleMatch] = {}
        real = [w for w in words if w.has_letter]
        for i, word in enumerate(real):
            for compiled, end, undone in self._matches_at(real, i, word):
                self._record(found, sk, compiled.term, real[i : end + 1], undone)
        for joined in _spaced_out(sk, words, self._prefixes, self._longest_run):
            for compiled, _, undone in self._matches_at([joined], 0, joined):
                undone = undone | {Transform.SEPARATORS_COLLAPSED}
                self._record(found, sk, compiled.term, [joined], undone)
        return _outermost(found.values())

    def _matches_at(
        self, words: list[_Word], i: int, word: _Word
    ) -> Iterable[tuple[_Compiled, int, frozenset[Transform]]]:
        for key in _stems(_squeeze(word.classes)):
            for compiled in self._index.get(key, ()):
                first = compiled.words[0].match(word.classes)
                if first is None:
                    continue
                undone, end = first, i
                for offset, pattern in enumerate(compiled.words[1:], start=1):
                    if i + offset >= len(words):
                        break
                    more = pattern.match(words[i + offset].classes)
                    if more is None:
                        break
                    undone, end = undone | more, i + offset
                else:
                    if not self._all_allowed(words[i : end + 1]):
                        yield compiled, end, undone

    def _all_allowed(self, words: list[_Word]) -> bool:
        if not self._allowed:
            return False
        for word in words:
            squeezed = _squeeze(word.classes)
            if not any(
                pattern.match(word.classes) is not None
                for key in _stems(squeezed)
                for pattern in self._allowed.get(key, ())
            ):
                return False
        return True

    @staticmethod
    def _record(
        found: dict[tuple[str, str, int, int], RuleMatch],
        sk: Skeleton,
        term: Term,
        words: list[_Word],
        undone: frozenset[Transform],
    ) -> None:
        first, last = words[0], words[-1]
        start, end = sk.span(first.start, last.end)
        transforms = undone | sk.transforms_in(first.start, last.end)
        for word in words:
            transforms |= word.transforms
        key = (term.text, term.category, start, end)
        if key not in found:
            found[key] = RuleMatch(
                term.text, term.category, start, end, sk.text[start:end], frozenset(transforms)
            )


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


def _stems(squeezed: str) -> Iterable[str]:
    """Yield the squeezed spellings a word could be an inflection of (itself first).

    A stem may come twice; looking it up again is cheaper than de-duplicating every word
    (measured with benchmarks/bench_rules.py).
    """
    yield squeezed
    for suffix in _SUFFIXES:
        if squeezed.endswith(suffix) and len(squeezed) > len(suffix):
            stem = squeezed[: -len(suffix)]
            yield stem
            # Squeezing may have merged the suffix's first letter into the term's last run:
            # kill+ing reads k-i-i-i-i-n-g, squeezed "king", so the term is "ki".
            yield squeezed[: -len(suffix) + 1]
            if suffix in ("ing", "er", "ers", "ed"):
                yield stem + "e"  # nuding -> nude
    if squeezed.endswith("d") and len(squeezed) > 2:
        yield squeezed[:-1]  # nuded -> nude (the e of -ed is the term's own)


def _words(sk: Skeleton) -> list[_Word]:
    words = []
    for found in _WORD.finditer(sk.chars):
        raw = found.group()
        has_letter = _HAS_LETTER.search(raw) is not None
        if not has_letter and len(raw) > 1:
            continue  # a number or a run of symbols is not a word, nor a letter of one
        leet = _LEET_CHARS.intersection(raw)
        words.append(
            _Word(
                found.start(),
                found.end(),
                raw.translate(_CLASSES),
                frozenset({Transform.LEETSPEAK}) if leet else frozenset(),
                has_letter,
            )
        )
    return words


def _spaced_out(
    sk: Skeleton, words: list[_Word], prefixes: set[str], longest_run: int
) -> Iterable[_Word]:
    """Join single letters spaced out by separators: each stretch that could spell a term.

    A repeated spaced-out letter (``x x x x``) is taken as one stretched letter: any match
    starting inside the repetition also matches from its start, with more repeats.
    """
    i = 0
    while i < len(words):
        if words[i].end - words[i].start != 1:
            i += 1
            continue
        j = i  # extend the run of single letters as far as the separators allow
        while (
            j + 1 < len(words)
            and words[j + 1].end - words[j + 1].start == 1
            and _SEPARATORS.fullmatch(sk.chars[words[j].end : words[j + 1].start])
        ):
            j += 1
        groups = _letter_groups(words[i : j + 1], longest_run)
        for first in range(len(groups)):
            letters = squeezed = ""
            for last in range(first, min(len(groups), first + _MAX_JOINED)):
                letter, repeated, _ = groups[last]
                letters += repeated
                squeezed += letter
                if squeezed not in prefixes:
                    break
                if last > first or len(groups[first][2]) > 1:
                    pieces = [w for group in groups[first : last + 1] for w in group[2]]
                    if any(p.has_letter for p in pieces):
                        yield _Word(
                            pieces[0].start,
                            pieces[-1].end,
                            letters,
                            frozenset().union(*(p.transforms for p in pieces)),
                        )
        i = j + 1


def _letter_groups(run: list[_Word], longest_run: int) -> list[tuple[str, str, list[_Word]]]:
    """Group a run of single letters into (letter, letter repeated up to longest_run, words)."""
    groups: list[tuple[str, str, list[_Word]]] = []
    for word in run:
        if groups and groups[-1][0] == word.classes:
            letter, repeated, members = groups[-1]
            members.append(word)
            if len(repeated) < longest_run + 1:  # one more than any term needs: still a stretch
                groups[-1] = (letter, repeated + letter, members)
        else:
            groups.append((word.classes, word.classes, [word]))
    return groups

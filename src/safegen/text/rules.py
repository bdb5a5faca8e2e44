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
   a word (``word++``, ``@word``, ``a|b``, ``n!u!d!e``) hides nothing.
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
``"pussy willow"`` does not allow ``pussy`` anywhere else.

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

import collections
import functools
import itertools
import re
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import attrs

from safegen.errors import InvalidPromptError, PolicyError
from safegen.text.normalize import Skeleton, Transform, skeleton
from safegen.text.terms import default_terms

__all__ = ["RuleFilter", "RuleMatch", "Term"]

# Leetspeak digits and symbols, and the one letter folded for everyone: l and i look alike.
_LEET = {"0": "o", "1": "i", "!": "i", "|": "i", "3": "e", "4": "a", "@": "a", "5": "s",
         "$": "s", "7": "t", "+": "t", "8": "b", "9": "g"}  # fmt: skip
_CLASSES = str.maketrans({**_LEET, "l": "i"})
_LEET_CHARS = frozenset(_LEET)
# A word: letters and leet characters; "!" only between two of them, where it is no punctuation.
_WORD = re.compile(r"(?:[a-z0-9@$|+]|(?<=[a-z0-9@$|+])!+(?=[a-z0-9@$|+]))+")
_HAS_LETTER = re.compile(r"[a-z]")
# A letter or digit of any script: a gap holding one is text, not a separator.
_GAP_TEXT = re.compile(r"[^\W_]")
_GAP_SPACE = re.compile(r"\s")
# Leetspeak symbols that are no letters or digits: the second reading takes them as separators
# (a hyphen: a tight one, so that pieces they split, as in "n|sfw", are joined).
_SYMBOLS = str.maketrans(dict.fromkeys("!|+@$", "-"))
# A prompt weight after a colon: (word:1.3), <lora:name:0.8>, [from:to:0.5].
_WEIGHT = re.compile(r":\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)")
_BRACKETS = re.compile(r"[{}\[\]|]")
_CLOSERS = {"{": "}", "[": "]"}
_RUNS = re.compile(r"(.)\1+")
_RUN_OF_ONE = re.compile(r"(.)\1*")
_SUFFIXES = ("s", "es", "ing", "ed", "er", "ers")
_MAX_JOINED = 24  # the longest word joined from pieces split by separators, in pieces


def _squeeze(word: str) -> str:
    # Words repeat in prompts: remember short ones (a long one is rare, and never pinned).
    return _squeeze_short(word) if len(word) <= 64 else _RUNS.sub(r"\1", word)


@functools.lru_cache(maxsize=4096)
def _squeeze_short(word: str) -> str:
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


class _Word(NamedTuple):
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
        :raises PolicyError: a term in *remove* is not in the default list.
        """
        defaults = [Term(text, category) for text, category in default_terms()]
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
        for chars, read in readings:
            lattice = _Lattice.build(chars, self._prefixes, self._longest_run)
            covered = self._covered(lattice)
            for at in range(len(lattice.words)):
                for token in lattice.tokens(at):
                    for key in _stems(_squeeze(token.word.classes)):
                        for compiled in self._index.get(key, ()):
                            for last, undone in lattice.follow(compiled.words, token):
                                if lattice.allowed(covered, token.first, last.last):
                                    continue
                                self._record(found, sk, compiled.term, token, last, undone | read)
        return _outermost(found.values())

    def _covered(self, lattice: _Lattice) -> list[bool]:
        """For each word, whether it lies in an occurrence of an allowed word or phrase."""
        covered = [False] * len(lattice.words)
        if not self._allowed:
            return covered
        reach = 0  # the first word not covered by any allowed occurrence starting so far
        for at in range(len(lattice.words)):
            for token in lattice.tokens(at):
                for key in _stems(_squeeze(token.word.classes)):
                    for phrase in self._allowed.get(key, ()):
                        for last, _ in lattice.follow(phrase, token):
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
    ) -> None:
        start, end = sk.span(first.word.start, last.word.end)
        key = (term.text, term.category, start, end)
        if key in found:
            return
        transforms = undone | sk.transforms_in(first.word.start, last.word.end)
        found[key] = RuleMatch(
            term.text, term.category, start, end, sk.text[start:end], frozenset(transforms)
        )


_NOTHING: frozenset[Transform] = frozenset()
_COLLAPSED = frozenset({Transform.SEPARATORS_COLLAPSED})


class _Token(NamedTuple):
    """A way to read words ``first`` to ``last`` of the text as one word.

    Either the word itself, or the pieces of a word split by separators, joined.
    """

    first: int
    last: int
    word: _Word
    undone: frozenset[Transform]


@attrs.frozen
class _Lattice:
    """Every way to read the text as a sequence of words, for matching terms and phrases.

    :param words: the words of the text, in order; each with a letter is a token of its own.
    :param joined: the tokens joined from pieces split by separators, by the word they start at.
    :param after: for each word, the next word where a token starts (``-1`` for none).
    """

    words: list[_Word]
    joined: dict[int, list[_Token]]
    after: list[int]

    @classmethod
    def build(cls, chars: str, prefixes: set[str], longest_run: int) -> _Lattice:
        words = _words(chars)
        joined: dict[int, list[_Token]] = {}
        for first, last, word in _spaced_out(chars, words, prefixes, longest_run):
            token = _Token(first, last, word, word.transforms | _COLLAPSED)
            joined.setdefault(first, []).append(token)
        after = [-1] * len(words)
        following = -1
        for at in range(len(words) - 1, -1, -1):
            after[at] = following
            if words[at].has_letter or at in joined:
                following = at
        return cls(words, joined, after)

    def tokens(self, at: int) -> list[_Token]:
        """Return the tokens that start at word *at*: the word itself, then joined ones."""
        word = self.words[at]
        own = [_Token(at, at, word, word.transforms)] if word.has_letter else []
        return own + self.joined[at] if at in self.joined else own

    def follow(
        self, patterns: tuple[_Pattern, ...], token: _Token
    ) -> Iterator[tuple[_Token, frozenset[Transform]]]:
        """Yield the last token and what was undone, for each way *patterns* spell the text.

        One pattern per word, from *token* on, each word right after the last.
        """
        undone = patterns[0].match(token.word.classes)
        if undone is None:
            return
        undone = undone | token.undone
        if len(patterns) == 1:
            yield token, undone
            return
        following = self.after[token.last]
        if following < 0:
            return
        for next_token in self.tokens(following):
            for last, more in self.follow(patterns[1:], next_token):
                yield last, undone | more

    def allowed(self, covered: list[bool], first: int, last: int) -> bool:
        """Whether every word with a letter from *first* to *last* is covered."""
        return all(covered[at] or not self.words[at].has_letter for at in range(first, last + 1))


def _read_syntax(chars: str) -> str:
    """Blank out generators' prompt syntax that would otherwise read as letters.

    Weights after a colon lose their digits; ``|`` inside a closed ``{...}`` or ``[...]`` is
    a separator between alternatives. The result has the same length, position for position.
    """
    if ":" in chars:
        chars = _WEIGHT.sub(lambda m: ":" + " " * (len(m.group()) - 1), chars)
    if "|" not in chars or ("{" not in chars and "[" not in chars):
        return chars
    marks = list(_BRACKETS.finditer(chars))
    depth_change: dict[int, int] = {}
    opened: list[tuple[int, str]] = []
    for mark in marks:
        char = mark.group()
        if char in _CLOSERS:
            opened.append((mark.start(), _CLOSERS[char]))
        elif char != "|" and opened and opened[-1][1] == char:
            start, _ = opened.pop()
            depth_change[start] = depth_change.get(start, 0) + 1
            depth_change[mark.start()] = depth_change.get(mark.start(), 0) - 1
    out = list(chars)
    depth = 0
    for mark in marks:
        depth += depth_change.get(mark.start(), 0)
        if depth > 0 and mark.group() == "|":
            out[mark.start()] = " "
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


def _stems(squeezed: str) -> Iterable[str]:
    """Return the squeezed spellings a word could be an inflection of (itself first).

    Words repeat in prompts: short ones are remembered (a long one never pinned).
    """
    return _short_stems(squeezed) if len(squeezed) <= 64 else tuple(_all_stems(squeezed))


@functools.lru_cache(maxsize=4096)
def _short_stems(squeezed: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_all_stems(squeezed)))


def _all_stems(squeezed: str) -> Iterator[str]:
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


def _words(chars: str) -> list[_Word]:
    words = []
    for found in _WORD.finditer(chars):
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
                frozenset({Transform.LEETSPEAK}) if leet else _NOTHING,
                has_letter,
            )
        )
    return words


class _Part(NamedTuple):
    """A word, a stretch of one spaced-out letter, or either end of such a stretch.

    Holds its letters (a stretched letter repeated only up to what any term needs), the
    words it covers (indices), their skeleton slice, what was undone in them and whether one
    of them is a letter (rather than a digit or symbol standing for one).
    """

    letters: str
    first_word: int
    last_word: int
    start: int
    end: int
    transforms: frozenset[Transform]
    has_letter: bool


class _Piece(NamedTuple):
    """A piece of a word split by separators: a word, or a stretch of one spaced-out letter.

    A stretch can also be read in part, where one word of a phrase ends and the next begins
    (``s n u f f f i l m``): :attr:`heads` are the ways to start a joined word with it, and
    :attr:`tails` the ways to end one with it; the whole piece comes first in each.
    """

    squeezed: str
    whole: _Part
    heads: tuple[_Part, ...]
    tails: tuple[_Part, ...]


def _spaced_out(
    chars: str, words: list[_Word], prefixes: set[str], longest_run: int
) -> Iterator[tuple[int, int, _Word]]:
    """Join the pieces of words split by separators: each stretch that could spell a term.

    A separator is a gap between two words that holds no letter or digit. Single letters are
    joined across any separator (``s e x``); longer pieces only across one without
    whitespace (``na-ked``, ``nu.de``), since joining real words (``bass exercise``) would
    invent terms. A repeated spaced-out letter (``x x x x``) is taken as one stretched letter:
    any match starting inside the repetition also matches from its start, with more repeats.
    """
    i = 0
    while i < len(words):
        j = i  # extend the run of joinable words as far as the separators allow
        while j + 1 < len(words) and _joinable(chars, words[j], words[j + 1]):
            j += 1
        if j == i:
            i += 1
            continue
        # Pieces are made as the windows reach them: only _MAX_JOINED are alive at a time.
        stream = _pieces(words, i, j, longest_run)
        ahead = collections.deque(itertools.islice(stream, _MAX_JOINED))
        while ahead:
            opening = ahead.popleft()
            following = next(stream, None)
            if following is not None:
                ahead.append(following)
            if opening.squeezed not in prefixes:
                continue
            whole = opening.whole
            if whole.last_word > whole.first_word and whole.has_letter:
                yield whole.first_word, whole.last_word, _joined(whole, whole, whole.letters)
            for head in opening.heads:
                letters, squeezed = head.letters, opening.squeezed
                transforms, has_letter = head.transforms, head.has_letter
                for piece in ahead:
                    if squeezed[-1] == piece.squeezed[0]:
                        squeezed += piece.squeezed[1:]
                    else:
                        squeezed += piece.squeezed
                    if squeezed not in prefixes:
                        break
                    for tail in piece.tails:
                        if has_letter or tail.has_letter:
                            joined = _Word(
                                head.start,
                                tail.end,
                                letters + tail.letters,
                                transforms | tail.transforms,
                            )
                            yield head.first_word, tail.last_word, joined
                    letters += piece.whole.letters
                    transforms = transforms | piece.whole.transforms
                    has_letter = has_letter or piece.whole.has_letter
        i = j + 1


def _joined(head: _Part, tail: _Part, letters: str) -> _Word:
    return _Word(head.start, tail.end, letters, head.transforms | tail.transforms)


def _joinable(chars: str, left: _Word, right: _Word) -> bool:
    singles = left.end - left.start == 1 and right.end - right.start == 1
    if not singles and (chars[left.end] == " " or _GAP_SPACE.search(chars, left.end, right.start)):
        return False  # longer pieces join only across tight punctuation
    # A letter or digit between is text, not a separator.
    return _GAP_TEXT.search(chars, left.end, right.start) is None


def _pieces(words: list[_Word], first: int, last: int, longest_run: int) -> Iterator[_Piece]:
    """Make pieces of joinable words *first* to *last*: each word, or a stretch of one letter."""
    i = first
    while i <= last:
        word = words[i]
        j = i  # the stretch of spaced-out copies of a single letter
        if word.end - word.start == 1:
            while (
                j + 1 <= last
                and words[j + 1].end - words[j + 1].start == 1
                and words[j + 1].classes == word.classes
            ):
                j += 1
        if j == i:
            part = _part(words, i, i, word.classes)
            alone = (part,)
            yield _Piece(_squeeze(word.classes), part, alone, alone)
            i += 1
            continue
        # One more than any term needs: a longer stretch is still a stretch.
        most = longest_run + 1
        whole = _part(words, i, j, word.classes * min(j - i + 1, most))
        ends = range(1, min(j - i + 1, most + 1))  # copies at either end, short of all of them
        heads = (whole, *(_part(words, j - n + 1, j, word.classes * n) for n in ends))
        tails = (whole, *(_part(words, i, i + n - 1, word.classes * n) for n in ends))
        yield _Piece(word.classes, whole, heads, tails)
        i = j + 1


def _part(words: list[_Word], first: int, last: int, letters: str) -> _Part:
    covered = words[first : last + 1]
    return _Part(
        letters,
        first,
        last,
        words[first].start,
        words[last].end,
        frozenset().union(*(w.transforms for w in covered)),
        any(w.has_letter for w in covered),
    )

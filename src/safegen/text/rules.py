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
   split by such separators without whitespace (``na-ked``, ``nu.de``) or by a hyphen at the
   end of a line (``mastur-`` then ``bation`` on the next). Pieces apart by whitespace alone
   are joined only when they are single letters: joining real words (``bass exercise``) would
   invent terms. Each word of a multi-word term may be written either way (``blow j o b``). A
   digit ends a joined word only among single characters (``n-u-d-3``): a code such as
   ``LOI-1`` is no leetspeak.
5. A word matches a term when it *is* the term, allowing each letter to be repeated
   (``naaaked``, never ``nked``) and an ending: ``-s``, ``-es``, ``-ing``, ``-ed``, ``-er``,
   ``-est``, ``-ly`` and the informal ``-in`` (``fuckin``), ``-z`` (``nudez``), ``-y``,
   ``-ie``, ``-ies``, ``-ish``, ``-ness``, ``-o``, ``-os`` (``nakedness``, ``porny``,
   ``sluttish``). A final ``e`` may give way to a vowel ending (``nuding``, ``nudish``,
   ``masturbator``), a final ``y`` reads ``i`` before ``-es``, ``-er``, ``-est``, ``-ed``,
   ``-ness`` (``orgies``, ``sexier``) and a long term drops it before ``-er``
   (``pornographer``). A one-word term listed with ``-ing`` stands for its stem with another
   ending (``snorting``: ``snorted``, ``snorts``; never the bare stem). A word that is itself
   a term is that term, not an ending on another (``sexy`` is the mild ``sexy``, not ``sex``
   plus ``-y``), and so is a default term that was removed. In a term of several words, a
   word ending in ``s`` may be singular (``slit wrist``), a reflexive pronoun stands for any
   other, in one word or two (``kill myself``: ``kill yourself``, ``kill ur self``), and a
   possessive for any other (``slit my wrists``: ``slit his wrists``). A word an ending makes
   by chance (``cumin``, ``brain``) is in the innocent list. A term inside a longer word does
   not match: ``classic``, ``Scunthorpe``, ``cocktail`` and ``therapist`` are innocent; the
   one prefix read is a negating ``non`` (``nonnude``, see below). Common glued spellings are
   terms of their own (``childporn``, ``neonazi``, ``sextoy``).

When matches overlap, one inside another that calls for at least as much (same category, a
severity at least as high, not negated unless the inner one is) is dropped: the longer one
explains it. A mild or negated outer match never hides a severe or plain inner one (``nude
beach`` added as mild leaves ``nude`` severe; ``no filter at child porn`` reports ``child
porn`` plain).

Negation: a match is marked ``RuleMatch.negated`` (a signal for review, never a reason to
drop it) when a negator word (``no``, ``not``, ``non``, ``without``, ``never``, ``nor``,
``neither``, ``cannot``, and ``n't``: ``don't``, ``dont``) stands right before it, apart by
whitespace or a hyphen only, perhaps past one of ``any``, ``visible``, ``explicit`` (``no
visible nudity``), with no second negator right before the first (``not without gore`` asks
for gore); when ``non`` is glued to it (``nonnude``); or when ``-free`` is hyphenated after
it (``nudity-free``). A negator governs the word after it and nothing further: in ``no
watermark nude`` and ``non-binary nude`` the nudity is not negated. A negator, a glued
``non`` and ``free`` count only in plain ASCII letters (``n0``, ``n07``, a Cyrillic ``о``
make none). Weak or ambiguous words (``un``, ``anti``, ``free of``) are no negators.
Limits: negation is read from words, not meaning, and errs towards flagging: ``do not show
nudity``, ``gore free`` (no hyphen), ``nothing naked``, ``avoid nudity`` and a negative
prompt's list are not read as negated. A policy should treat a negated match as review,
never as allowed.

The allowlist holds words and phrases. A match is dropped only when one occurrence of an
allowed entry holds all of it: allowing ``"job"`` leaves the term ``"blow job"`` in force,
allowing ``"blow"`` and ``"job"`` apart does too (``same sex`` and ``toy store`` do not cover
``sex toy``), allowing the phrase ``"blow job"`` drops it, and allowing the phrase ``"pussy
willow"`` does not allow ``pussy`` anywhere else. An occurrence counts only as the generator
renders it and a reader reads it, its words together: between them only whitespace within a
line, the dash family and apostrophes (``naked, eye``, ``cum. laude`` and tags one a line
are no occurrences), and no
generator syntax (``| : ( ) [ ] { } < >``) from its first letter to its last
(``{pussy|willow}``, ``[pussy:willow:0.5]``, ``pussy (willow:0)``, ``pussy::5 willow::-5``),
while a phrase written plainly or wholly inside one group (``(pussy willow:1.2)``) is
allowed. A word that is itself a one-word term is read as that term here too: an allowed
word plus an ending never covers it (``blue tit`` does not cover ``blue titties``, nor ``al
gore`` ``al gory``). This errs towards flagging: an allowed phrase spelled with ``|`` for
``i``, or with its words spaced out by other punctuation, no longer counts.
:meth:`RuleFilter.default` allows the shipped innocent senses of listed words this way
(``naked eye``, ``sex ratio``, ``the sexes``, ``Al Gore``, ``Gore-Tex``, ``Boston
Massacre``, ``cum laude``, ``blue tit``, ``nude lipstick``, ``oilseed rape``): an innocent
phrase hides a term only where the whole phrase stands.

Not handled (limits): a term split by whitespace into pieces longer than one letter
(``na ked``), a term glued to other letters (``nakedgirl``, ``naked69``), misspellings that
are not stretches (``nakd``), a stretched ending (``nakedneeess``), other languages, and the
skeleton's own limits. Within ``{...}`` and ``[...]``, ``|`` separates alternatives the
generator never joins, so a term split across them (``{na|ked}``) is not one either. Words
read alike by the folding of ``l`` to ``i`` are one word (``loll`` reads as ``loli``), and an
ending can make an innocent word look like an inflection (``Gordon-Cumming``); the innocent
list holds the common ones, and allowing ``lolling`` allows ``loliing``, which reads the same.
The innocent ``-cum-`` compounds are listed by their first word (``kitchen cum``), so
``kitchen cum`` is allowed however it goes on. A listed word in its real sense is flagged
wherever it is used: prose about history, medicine or crime (``committed suicide``, ``Nazi
Germany``, ``heroin addiction``, ``vaginal delivery``) is flagged as a prompt asking for it
would be.

Matching looks each word up in a table keyed by the terms' squeezed spellings, so its cost
does not grow with the number of terms; every step is linear in the length of the text (a
match costs a few binary searches, never a walk over the text). Pure: no I/O.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from typing import Any

import attrs

from safegen.errors import InvalidPromptError, PolicyError
from safegen.text._reading import (
    _CLASSES,
    _HAS_LETTER,
    _NOTHING,
    _RUN_OF_ONE,
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
from safegen.text.terms import SEVERITIES, default_terms, innocent_phrases

__all__ = ["RuleFilter", "RuleMatch", "Term"]

# Generators' syntax: alternation, prompt editing and weights, groups, tags. An allowed phrase
# with one of these between (or inside) its words is not rendered as the phrase.
_SYNTAX_MARKS = re.compile(r"[|:()\[\]{}<>]")
_X = re.compile("x")

# Negation (see RuleFilter): a negator word right before a match, in plain letters.
_NEGATORS = frozenset(
    {"no", "not", "non", "without", "never", "nor", "neither", "cannot", "dont", "doesnt",
     "didnt", "isnt", "arent", "wasnt", "werent", "wont"}
)  # fmt: skip
# Words that may stand between a negator and what it negates without being its object
# ("no visible nudity", "without any gore", "no explicit nudity"): they only intensify the
# negation and cannot be negated themselves, so they cannot carry it away to another word.
_NEGATION_MODIFIERS = frozenset({"any", "visible", "explicit"})
# What may stand between a negator and its term: whitespace and hyphens (non-nude), no more.
_NEGATION_GAP = re.compile(r"[\s-]+")
# A negator is a word of plain letters: digits read as letters (n0, n07) make none.
_SK_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_PLAIN_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
# A word glued to the negating prefix "non" (nonnude): the letters of the prefix.
_NON = re.compile("n+o+n+")
# What may stand between the words of an allowed phrase's occurrence: whitespace within a
# line, the dash family (folded to "-") and apostrophes. Clause punctuation (", . ; ! ?")
# and line breaks (tags one a line) split it.
_PHRASE_GAP = re.compile(r"(?:[^\S\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]|[\-'’])*")
# Strictness of a severity, for keeping an inner match an outer one cannot stand for.
_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}


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
    :param negated: whether the prompt negates the term (``"no nudity"``, ``"non-nude"``,
        ``"nudity-free"``): a signal for review rather than proof of intent. A negated match
        is still a match: negation never drops one.
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
    # A default term that was removed: it still says that a word spelling it is that word,
    # and no inflection of another term, but it is never reported.
    shadow: bool = False


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
        matches them. A match is dropped only when one occurrence of an allowed entry holds
        all of it: allowing one word of a multi-word term leaves the term in force, and
        allowing a phrase allows its words only where they stand together (apart by
        whitespace or dashes, not by a comma or full stop).
    :raises PolicyError: a term has no letters.

    Each match carries its term's severity and whether the prompt negates it
    (``RuleMatch.negated``: ``no nudity``, ``non-nude``, ``nudity-free``); the module's
    docstring says what is read as negation, what is seen through, and the limits.

    >>> rules = RuleFilter(["naked"])
    >>> [(m.term, m.matched) for m in rules.scan("a n4k3d man")]
    [('naked', 'n4k3d')]
    >>> rules.scan("a classic painting")
    ()
    >>> [(m.term, m.negated) for m in rules.scan("not naked, naked")]
    [('naked', True), ('naked', False)]
    """

    def __init__(self, terms: Iterable[str | Term] = (), allow: Iterable[str] = ()) -> None:
        self._terms = tuple(t if isinstance(t, Term) else Term(t) for t in _strings(terms, "terms"))
        self._allow = _strings(allow, "allow")
        self._index: dict[str, list[_Compiled]] = {}
        self._spellings: list[str] = []
        self._seen: set[tuple[str, ...]] = set()
        # The squeezed spellings of one-word terms (shadows too): in the allowlist, a word
        # spelling one is that term, never an allowed word plus an ending (blue titties).
        self._exact: set[str] = set()
        for term in self._terms:
            if not isinstance(term.text, str):
                raise PolicyError(f"terms: expected a string, got {term.text!r}")
            self._compile(term, shadow=False)
        # Allowed entries (words or phrases) by the key of their first word.
        self._allowed: dict[str, list[tuple[_Pattern, ...]]] = {}
        for entry in self._allow:
            if not isinstance(entry, str):
                raise PolicyError(f"allow: expected a string, got {entry!r}")
            phrase = tuple(_Pattern.compile(w) for w in _term_words(entry, "allow"))
            self._allowed.setdefault(phrase[0].key, []).append(phrase)
        self._finish()

    def _finish(self) -> None:
        """Work out, from the compiled terms and allowed entries, how to join pieces."""
        # The most times any term repeats a letter: beyond that, a longer stretch of the same
        # spaced-out letter cannot make a new match.
        self._longest_run = max(
            (len(run.group()) for word in self._spellings for run in _RUN_OF_ONE.finditer(word)),
            default=1,
        )
        # Every squeezed beginning of a (possibly inflected) word of a term or allowed entry:
        # pieces split by separators are joined only while they could still spell one.
        spelled = {
            spelling
            for patterns in (
                *(c.words for entries in self._index.values() for c in entries),
                *(p for phrases in self._allowed.values() for p in phrases),
            )
            for pattern in patterns
            for spelling in pattern.spellings
        }
        self._prefixes = {word[:n] for word in spelled for n in range(1, len(word) + 1)}

    def _compile(self, term: Term, *, shadow: bool) -> None:
        words = _term_words(term.text, "terms")
        if (term.category, *words) in self._seen:
            return  # the same term twice (or two spellings of it): one is enough
        self._seen.add((term.category, *words))
        self._spellings.extend(words)
        phrase = len(words) > 1
        if not phrase:
            self._exact.add(_squeeze(words[0]))
        patterns = tuple(_Pattern.compile(w, in_phrase=phrase, term=True) for w in words)
        compiled = _Compiled(term, patterns, shadow)
        for key in compiled.words[0].keys:
            self._index.setdefault(key, []).append(compiled)

    @classmethod
    def default(
        cls,
        *,
        add: Iterable[str | Term] = (),
        remove: Iterable[str] = (),
        allow: Iterable[str] = (),
        innocent: bool = True,
    ) -> RuleFilter:
        """Build a filter from the shipped, curated term list, adjusted to your platform.

        :param add: terms to use as well as the defaults.
        :param remove: default terms not to use, as written in the list. A word spelling a
            removed term is no longer flagged as an inflection of another one either
            (removing ``"sexy"`` does not leave it flagged as ``"sex"`` plus ``-y``).
        :param allow: words and phrases that never count, as well as the shipped ones.
        :param innocent: whether to allow the shipped innocent senses of listed words
            (``safegen.text.terms.innocent_phrases()``: ``naked eye``, ``sex ratio``,
            ``Al Gore``); each allows its words only where they stand together.
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
        allowed = (*innocent_phrases(), *_strings(allow, "allow")) if innocent else allow
        rules = cls([*kept, *_strings(add, "add")], allow=allowed)
        for term in defaults:
            if term.text.casefold() in removing:
                rules._compile(term, shadow=True)
        if removing:
            rules._finish()
        return rules

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
        found: dict[tuple[str, str, int, int], _Found] = {}
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
            covered: list[int] | None = None  # worked out at the first match: most have none
            for at in range(len(lattice.words)):
                for whole in lattice.tokens(at):
                    # Only a word starting "non" is read a second time, without it.
                    prefixes: Iterable[tuple[_Token, bool]] = (
                        _unprefixed(whole, sk)
                        if whole.word.classes.startswith("non")
                        else ((whole, False),)
                    )
                    for token, prefixed in prefixes:
                        for key in _stems(_squeeze(token.word.classes)):
                            for compiled in self._index.get(key, ()):
                                for last, undone in lattice.follow(compiled.words, token):
                                    if covered is None:
                                        covered = self._covered(lattice, chars, marks)
                                    if covered[token.first] > last.last:
                                        continue  # one allowed occurrence holds it all
                                    self._record(
                                        found,
                                        sk,
                                        compiled,
                                        (token, last),
                                        undone | read,
                                        separated,
                                        prefixed,
                                    )
        if not found:
            return ()
        return _outermost(_negations(sk, _spelled_out(found.values())))

    def _covered(self, lattice: _Lattice, chars: str, marks: list[int]) -> list[int]:
        """For each word, how far the allowed occurrences starting at or before it reach.

        ``covered[i] > j`` exactly when one occurrence of an allowed word or phrase holds
        words ``i`` to ``j``: a prefix maximum of the occurrences' ends, so linear. An
        occurrence counts only as the generator renders it and a reader reads it, its words
        together: between them only whitespace within a line, the dash family and
        apostrophes (a comma, full stop or line break splits ``naked, eyes``), and no syntax
        mark (*marks*: sorted skeleton positions) from its first letter to its last
        (``{pussy|willow}``, ``[pussy:willow:0.5]``). A phrase wholly inside one group
        (``(pussy willow:1.2)``) counts. A word that is
        itself a term is that term here too: an allowed word plus an ending never covers it.
        """
        words = lattice.words
        covered = [0] * len(words)
        if not self._allowed:
            return covered
        # split[k]: how many gaps before word k hold more than whitespace, dashes, apostrophes.
        split = [0] * len(words)
        for k in range(1, len(words)):
            gap = _PHRASE_GAP.fullmatch(chars, words[k - 1].end, words[k].start) is None
            split[k] = split[k - 1] + gap
        refuse = frozenset(self._exact)
        reach = 0  # one past the last word of the furthest occurrence starting so far
        for at in range(len(words)):
            for token in lattice.tokens(at):
                for key in _stems(_squeeze(token.word.classes)):
                    for phrase in self._allowed.get(key, ()):
                        for last, _ in lattice.follow(phrase, token, refuse):
                            if last.last + 1 <= reach or split[last.last] != split[token.first]:
                                continue  # nothing new, or split by punctuation
                            start = words[token.first].start
                            inside = bisect.bisect_left(marks, start)
                            if inside < len(marks) and marks[inside] < words[last.last].end:
                                continue  # split by syntax: not the phrase as rendered
                            reach = last.last + 1
            covered[at] = reach
        return covered

    @staticmethod
    def _record(
        found: dict[tuple[str, str, int, int], _Found],
        sk: Skeleton,
        compiled: _Compiled,
        tokens: tuple[_Token, _Token],
        undone: frozenset[Transform],
        separated: list[int],
        prefixed: bool,
    ) -> None:
        first, last = tokens
        term = compiled.term
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
        match = RuleMatch(
            term.text,
            term.category,
            start,
            end,
            sk.text[start:end],
            frozenset(transforms),
            severity=term.severity,
            negated=prefixed,
        )
        found[key] = _Found(match, first.word.start, last.word.end, compiled.shadow)


@attrs.frozen
class _Found:
    """A match, where it lies in the skeleton, and whether it is a removed term's shadow."""

    match: RuleMatch
    start: int
    end: int
    shadow: bool


def _unprefixed(token: _Token, sk: Skeleton) -> Iterator[tuple[_Token, bool]]:
    """Yield *token*, then its reading without a glued ``non`` (``nonnude``).

    The second reading is marked negated only when the prefix is written in plain letters in
    a word of its own (``n0nnude`` is no negation: it is read as ``nude``).
    """
    yield token, False
    classes = token.word.classes
    prefix = _NON.match(classes)
    if prefix is None:
        return
    start = token.word.start
    plain = token.first == token.last and _plain(sk, start, start + prefix.end())
    # The prefix's last n may be the word's own first letter: nonnude, nonude.
    for cut in (prefix.end(), prefix.end() - 1):
        if len(classes) - cut >= 3:
            yield token._replace(word=token.word._replace(classes=classes[cut:])), plain


def _plain(sk: Skeleton, start: int, end: int) -> bool:
    """Whether the skeleton slice ``[start, end)`` is written in plain ASCII letters."""
    return (
        all(
            sk.chars[at].isalpha() and sk.text[sk.origins[at]].lower() == sk.chars[at]
            for at in range(start, end)
        )
        and sk.text[sk.origins[start] : sk.origins[end - 1] + 1].isascii()
    )


def _spelled_out(found: Iterable[_Found]) -> list[_Found]:
    """Keep, at each span, the terms that spell it, dropping inflections of other terms there.

    A word that *is* a term (or a default term that was removed) is that term, not another
    one with an ending: ``sexy`` is not ``sex`` plus ``-y``, ``nudes`` not ``nude`` plus
    ``-s``. Shadows of removed terms go too, once they have said so.
    """
    spans: dict[tuple[int, int], list[_Found]] = {}
    for item in found:
        spans.setdefault(item.match.span, []).append(item)
    kept = []
    for items in spans.values():
        exact = any(Transform.INFLECTION not in i.match.transforms for i in items)
        kept += [
            i
            for i in items
            if not i.shadow and not (exact and Transform.INFLECTION in i.match.transforms)
        ]
    return kept


def _negations(sk: Skeleton, found: list[_Found]) -> list[_Found]:
    """Return the matches, each marked negated when the prompt negates it (see RuleFilter)."""
    words = list(_SK_WORD.finditer(sk.chars))
    ends = [w.end() for w in words]
    marked = []
    for item in found:
        if not item.match.negated and _negated(sk, words, ends, item.start, item.end):
            item = attrs.evolve(item, match=attrs.evolve(item.match, negated=True))
        marked.append(item)
    return marked


def _negator(sk: Skeleton, found: re.Match[str]) -> bool:
    """Whether a word of the skeleton is a negator written in plain letters."""
    word = found.group()
    return (
        (word in _NEGATORS or word.endswith("n't"))
        and _PLAIN_WORD.fullmatch(word) is not None
        and _plain(sk, found.start(), found.start() + len(word.split("'")[0]))
    )


def _negated(
    sk: Skeleton, words: list[re.Match[str]], ends: list[int], start: int, end: int
) -> bool:
    """Whether a negator governs the match at skeleton ``[start, end)``.

    A negator word (``no``, ``not``, ``non``, ``without``, ``n't``...) in plain letters right
    before it, apart only by whitespace or a hyphen, perhaps with one of
    :data:`_NEGATION_MODIFIERS` between (``no visible nudity``), and no second negator right
    before the first (``not without gore`` asks for gore); or ``-free`` glued after it by a
    hyphen (``nudity-free``).
    """
    chars = sk.chars
    at = bisect.bisect_right(ends, start)  # the words before the match: words[:at]
    right, k = start, at - 1
    for _ in range(2):  # the word before, and once more past a modifier
        if k < 0 or _NEGATION_GAP.fullmatch(chars, words[k].end(), right) is None:
            break
        if _negator(sk, words[k]):
            before = words[k - 1] if k > 0 else None
            # Two negators in a row cancel out: "not without gore" asks for gore.
            return not (
                before is not None
                and _NEGATION_GAP.fullmatch(chars, before.end(), words[k].start()) is not None
                and _negator(sk, before)
            )
        if words[k].group() not in _NEGATION_MODIFIERS:
            break
        right, k = words[k].start(), k - 1
    follows = at
    while follows < len(words) and words[follows].start() < end:
        follows += 1
    if follows < len(words):
        after = words[follows]
        glued = (
            chars[end : after.start()] == "-"
            and after.group() == "free"
            and _plain(sk, after.start(), after.end())
        )
        return glued and (after.end() == len(chars) or chars[after.end()] != "-")
    return False


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


def _outermost(found: Iterable[_Found]) -> tuple[RuleMatch, ...]:
    """Sort matches by position, dropping any inside a longer one that is at least as strict.

    (``s-e-x`` inside ``s-e-x-y``, ``sex`` inside ``sex toy``): the longer match explains
    it, when it calls for at least as much: same category, severity at least the inner's,
    and not negated unless the inner one is too. A mild or negated outer match never hides a
    severe or plain inner one (``nude beach`` reviewed, ``nude`` blocked; ``no filter at
    child porn``). Linear after the sort: the furthest reach is kept per kind of match.
    """
    kept: list[RuleMatch] = []
    # (category, severity, negated) -> the furthest end kept so far, and where it starts.
    reach: dict[tuple[str, str, bool], tuple[int, int]] = {}
    for item in sorted(found, key=lambda f: (f.match.start, -f.match.end, f.match.term)):
        match = item.match
        rank = _RANK[match.severity]
        inside = False
        for severity in SEVERITIES[rank:]:
            for negated in (False, True) if match.negated else (False,):
                end, start = reach.get((match.category, severity, negated), (-1, -1))
                # Everything kept starts at or before this match: it is inside one of them
                # exactly when it ends within the reach, unless it is that very span.
                if match.end < end or (match.end == end and match.start != start):
                    inside = True
        if inside:
            continue
        kind = (match.category, match.severity, match.negated)
        if match.end > reach.get(kind, (-1, -1))[0]:
            reach[kind] = (match.end, match.start)
        kept.append(match)
    return tuple(sorted(kept, key=lambda m: (m.start, m.end, m.term)))

# ruff: noqa: RUF001  (look-alike characters are the subject of these tests)
"""Fuzzing the rule filter: generated disguises of every default term, and generated worst cases.

Class 5 of issue 11: every term of the default list, disguised by any mix of the tricks the
filter documents (look-alike letters from Unicode's own families, case, separators between
letters, invisible characters, generators' prompt syntax around it), is still found, and its
span covers the disguised word in the original text.

Class 8: ``RuleFilter.scan`` is linear in the length of its input. Not timed: the work a scan
does (Python operations in the text package, plus every read of the skeleton's per-character
tables, where a hidden walk over the whole text would show) is counted for an input and for
the same input four times over, and must grow about four times, not sixteen.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any, SupportsIndex, overload
from unittest import mock

import attrs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from safegen.text import RuleFilter, Term, rules
from safegen.text.normalize import Skeleton, skeleton

DEFAULT = RuleFilter.default()
TERMS: list[Term] = list(DEFAULT.terms)

# --- class 5: disguises ----------------------------------------------------------------------

# Unicode names the letter each of these characters is a form of. The families are read from
# the Unicode database here, independently of how the filter folds them.
_FORM = re.compile(
    r"^(?:(?:NEGATIVE )?(?:CIRCLED|SQUARED|PARENTHESIZED) )?"
    r"(?:MATHEMATICAL [A-Z -]*?|FULLWIDTH )?"
    r"LATIN (?:SMALL |CAPITAL )?LETTER (?:SMALL CAPITAL |DOTLESS )?([A-Z])"
    r"(?: WITH (?!.*LETTER)[A-Z -]+)?$"
    r"|^MATHEMATICAL [A-Z -]*?(?:SMALL|CAPITAL) ([A-Z])$"
    r"|^REGIONAL INDICATOR SYMBOL LETTER ([A-Z])$"
)
# Cyrillic, Greek, Armenian, Cherokee and Coptic letters drawn like Latin ones.
_SCRIPT_LOOKALIKES = {
    "a": "аαᎪ", "c": "сϲⲥ", "d": "ԁ", "e": "еε", "h": "һհ", "i": "іι", "j": "ј", "k": "кκҡ",
    "o": "оοσօⲟ", "p": "рρⲣ", "s": "ѕ", "t": "т", "u": "ս", "v": "ѵ", "w": "ԝѡ", "x": "хχ",
    "y": "уү",
}  # fmt: skip


@functools.cache
def confusable_families() -> dict[str, tuple[str, ...]]:
    """For each letter a-z, the characters Unicode names as a form of it, and script look-alikes."""
    families: dict[str, list[str]] = {chr(c): [] for c in range(ord("a"), ord("z") + 1)}
    for code in range(0x80, 0x20000):
        name = unicodedata.name(chr(code), "")
        if any(odd in name for odd in ("TURNED", "REVERSED", "INVERTED", "SIDEWAYS", "BROKEN")):
            continue
        found = _FORM.match(name)
        if found:
            letter = next(g for g in found.groups() if g).lower()
            families[letter].append(chr(code))
    for letter, lookalikes in _SCRIPT_LOOKALIKES.items():
        families[letter].extend(lookalikes)
    for char, letter in script_variants().items():
        families[letter].append(char)
    return {letter: tuple(chars) for letter, chars in families.items()}


# A letter of these scripts named as a marked form of another: "CYRILLIC SMALL LETTER HA WITH
# DESCENDER" is a form of "CYRILLIC SMALL LETTER HA".
_SCRIPT_FORM = re.compile(
    r"^(CYRILLIC|GREEK|COPTIC|ARMENIAN|CHEROKEE) ((?:SMALL |CAPITAL )?)LETTER ([A-Z ]+?) WITH "
)


@functools.cache
def script_variants() -> dict[str, str]:
    """Map letters Unicode names as a marked form of a script look-alike to the base's letter.

    Read from names alone: descenders, hooks, strokes, tails, tonos, dialytika.
    """
    bases = {char: letter for letter, chars in _SCRIPT_LOOKALIKES.items() for char in chars}
    variants: dict[str, str] = {}
    for code in range(0x370, 0x20000):
        name = unicodedata.name(chr(code), "")
        found = _SCRIPT_FORM.match(name)
        if found is None or any(odd in name for odd in ("TURNED", "REVERSED", "INVERTED")):
            continue
        script, case, base_name = found.groups()
        try:
            base = unicodedata.lookup(f"{script} {case}LETTER {base_name}")
        except KeyError:
            continue
        letter = bases.get(base) or bases.get(base.lower())
        if letter is not None and (case != "CAPITAL " or base.lower() != base):
            variants[chr(code)] = letter
    return variants


SPACING = [" ", "  ", ".", " . ", "-", "_", "*", "/", "\\", "~", ",", ";", "·", "•", "'", "\n",
           "\u3000", "\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2015", "\u2212",
           "\u2043", "\ufe58", "\ufe63", "\uff0d", "\u2e3a", "\u2e3b", "\u301c", "\u30fb",
           "|", "+", "!", "@", "$", "\N{FIRE}", "\N{HEAVY BLACK HEART}\ufe0f", "\u2605",
           "\u2026", "\u00d7", "\u2715", "\u2a2f", "\u2716", "\u2573"]  # fmt: skip
TIGHT = [s for s in SPACING if not s.isspace() and " " not in s and s != "\n"]
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u034f", "\ufe0f",
             "\U000e0020", "\U000e0041", "\u202a", "\u202c", "\u202e", "\u2066", "\u2069",
             "\u180e", "\u3164", "\U000e0100"]  # fmt: skip
MARKS = ["\u0301", "\u0308", "\u0323", "\u0336", "\u0338", "\u20dd", "\u0489"]
SYNTAX = ["{}", "{{}|cat}", "{cat|{}}", "[{}|cat]", "({}:1.3)", "(({}))", "{}++", "{}--",
          "@{}", "<lora:{}:0.8>", "[{}:0.5]", "[cat:{}:10]", "({})", "[[{}]]", "({}:.5)",
          "{{cat|{}|dog}}", "{}+", "(({}:1.2)), masterpiece"]  # fmt: skip


@attrs.frozen
class Disguise:
    """A disguised text and where, in it, the term's letters are."""

    text: str
    first: int  # index of the first letter of the term
    last: int  # index of the last letter of the term


@st.composite
def disguised_word(draw: st.DrawFn, word: str, alternation: bool = False) -> tuple[str, list[int]]:
    """One word, each letter maybe swapped for a look-alike, re-cased, marked, spaced out.

    Inside ``{...}`` or ``[...]`` a ``|`` separates alternatives (``{a|b}``), so it spaces out
    nothing there: the generator never joins the pieces either.
    """
    families = confusable_families()
    mode = draw(st.sampled_from(["none", "every letter", "tight"]))
    spacers = [
        s for s in (SPACING if mode == "every letter" else TIGHT) if s != "|" or not alternation
    ]
    spacer = draw(st.sampled_from(spacers))
    out: list[str] = []
    where: list[int] = []
    for index, letter in enumerate(word):
        if index and (mode == "every letter" or (mode == "tight" and draw(st.booleans()))):
            out.append(spacer)
        if draw(st.booleans()):
            out.append(draw(st.sampled_from(INVISIBLE)))
        char = letter
        if letter in families and draw(st.booleans()):
            char = draw(st.sampled_from(families[letter]))
        elif draw(st.booleans()):
            char = letter.upper()
        where.append(len("".join(out)))
        out.append(char)
        if draw(st.integers(0, 4)) == 0:
            out.append(draw(st.sampled_from(MARKS)))
    return "".join(out), where


@st.composite
def disguises(draw: st.DrawFn, term: str) -> Disguise:
    """A default term disguised word by word, wrapped in generator syntax, inside a prompt."""
    template = draw(st.sampled_from(SYNTAX))
    pieces: list[str] = []
    letters: list[int] = []
    for word in term.split():
        if pieces:
            pieces.append(" ")
        offset = len("".join(pieces))
        text, where = draw(disguised_word(word, alternation=any(b in template for b in "{[")))
        letters.extend(offset + w for w in where)
        pieces.append(text)
    core = "".join(pieces)
    prefix = "a photo of " + template[: template.index("{}")]
    text = prefix + core + template[template.index("{}") + 2 :] + " today"
    return Disguise(text, len(prefix) + letters[0], len(prefix) + letters[-1])


def test_the_families_hold_every_kind_of_form() -> None:
    """The generated families are wide: strokes, dotless, small capitals, enclosed, maths."""
    families = confusable_families()
    for char in "øđłħƀɨıȷᴀʙɴⓐⒶ⒜🄰🅰🅐𝐚ａаα":
        assert any(char in chars for chars in families.values()), char
    assert sum(map(len, families.values())) > 1500
    # and the hooked, stroked and qualified forms of the script look-alikes, from their names
    for char in "ҳӽӿҫҝҟӄҭұ":
        assert char in script_variants(), char


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_default_term_is_found_through_any_disguise(data: st.DataObject) -> None:
    """Look-alikes, case, marks, invisibles, separators and syntax never hide a default term."""
    term = data.draw(st.sampled_from(TERMS))
    disguise = data.draw(disguises(term.text))
    covering = [
        m
        for m in DEFAULT.scan(disguise.text)
        if m.start <= disguise.first and m.end > disguise.last
    ]
    assert covering, (term.text, disguise.text)
    # The span covers the disguised word and nothing of the prompt around the syntax.
    assert all(m.start >= len("a photo of ") for m in covering)
    assert all(m.end <= len(disguise.text) - len(" today") for m in covering)
    assert all(m.matched == disguise.text[m.start : m.end] for m in covering)


# --- class 8: linear work --------------------------------------------------------------------

TEXT_PACKAGE = str(Path(rules.__file__).parent)


class Counted(tuple[Any, ...]):
    """A tuple that counts every element read from it, one by one or by slice."""

    reads = 0

    def __iter__(self) -> Iterator[Any]:
        for item in tuple.__iter__(self):
            Counted.reads += 1
            yield item

    @overload
    def __getitem__(self, index: SupportsIndex) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Any, ...]: ...
    def __getitem__(self, index: SupportsIndex | slice) -> Any:
        found = tuple.__getitem__(self, index)
        Counted.reads += len(found) if isinstance(index, slice) else 1
        return found


def counted_skeleton(text: str) -> Skeleton:
    sk = skeleton(text)
    return attrs.evolve(sk, origins=Counted(sk.origins), transforms=Counted(sk.transforms))


def work(filter_: RuleFilter, text: str) -> int:
    """Python operations run in the text package, plus reads of per-character tables."""
    operations = 0

    def count(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal operations
        if event == "opcode":
            operations += 1
        return count

    def calls(frame: FrameType, event: str, arg: object) -> Any:
        if not frame.f_code.co_filename.startswith(TEXT_PACKAGE):
            return None
        frame.f_trace_opcodes = True
        return count

    with mock.patch.object(rules, "skeleton", counted_skeleton):
        filter_.scan(text)  # warm the per-character and per-word caches
        Counted.reads = 0
        previous = sys.gettrace()
        sys.settrace(calls)
        try:
            filter_.scan(text)
        finally:
            sys.settrace(previous)
    return operations + Counted.reads


def growth(filter_: RuleFilter, unit: str, length: int) -> float:
    """How much more work four times the text costs (about 4 when linear, 16 when quadratic)."""
    small = (unit * (length // len(unit) + 1))[:length]
    large = (unit * (4 * length // len(unit) + 1))[: 4 * length]
    return work(filter_, large) / max(work(filter_, small), 1)


# Worst cases of each kind: the repeated match that made scanning quadratic, spaced and
# stretched letters, separator runs, partial matches, alternating look-alikes, syntax.
WORST_CASES = {
    "a term repeated": "nude ",
    "a spaced-out term repeated": "n u d e ",
    "a hyphenated term repeated": "na-ked-",
    "spaced single letters": "a ",
    "one spaced letter": "x ",
    "one letter": "a",
    "separators only": " -.",
    "partial matches": "nud ",
    "overlapping spaced prefixes": "s e x s e ",
    "alternating look-alikes": "nаkеd ",
    "zero-width between letters": "n\u200ba\u200bk\u200be\u200bd ",
    "alternations": "{nude|sexy} ",
    "weights": "(nude:1.3) ",
    "open brackets": "{[",
    "pipes": "|",
    "symbols": "a!",
    "colons and spaces": ":    ",
    "a multi-word term": "blow job ",
    "enclosed letters": "🅽🆄🅳🅴 ",
    "hooked script letters": "naӄed seҳ ",
    "times signs between letters": "se×y ×",
    "times signs and invisibles": "×\u200b\u200b",
    "times signs between digits": "4×4 ",
    "times signs as separators": "n×a×k×e×d×",
    "many times signs": "××a×",
    "times signs and allowed phrases": "nu×de×lipstick ×",
}


@pytest.mark.parametrize("unit", WORST_CASES.values(), ids=WORST_CASES.keys())
def test_scan_work_grows_linearly_on_worst_cases(unit: str) -> None:
    """Four times the text costs at most about four times the work, on every worst case."""
    assert growth(DEFAULT, unit, 1000) < 5.0


def test_allowlist_work_grows_linearly() -> None:
    """Checking allowed phrases is linear too, even when every word starts one."""
    allowing = RuleFilter(["blow job", "nude"], allow=["blow up", "nude beach", "job"])
    assert growth(allowing, "blow blow job nude ", 1000) < 5.0


@pytest.mark.parametrize("unit", ["{nude|beach} photo, ", "(nude:0) beach ", "n×u×d×e×beach×"])
def test_allowlist_work_grows_linearly_through_syntax(unit: str) -> None:
    """Voiding allowed phrases split by syntax or times signs stays linear."""
    allowing = RuleFilter(["nude"], allow=["nude beach"])
    assert growth(allowing, unit, 1000) < 5.0


PIECES = ["n", "u", "d", "e", "s", "x", "a", "k", " ", "-", ".", "|", "{", "}", "[", "]", ":",
          "1", "3", "@", "+", "!", "$", "а", "е", "\u200b", "🅽", "ⓤ", "ı", "ø", "(",
          ")", "×", "✕"]  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=12).map("".join))
def test_scan_work_grows_linearly_on_any_repeated_pattern(unit: str) -> None:
    """Whatever pattern of letters, separators, look-alikes and syntax repeats, work is linear."""
    assert growth(DEFAULT, unit, 600) < 5.0


# --- issue 12: negation, phrase context, recall ------------------------------------------------

from safegen.text._reading import _REFLEXIVES, _SUFFIXES  # noqa: E402
from safegen.text.terms import innocent_phrases  # noqa: E402

NO_CONTEXT = RuleFilter.default(innocent=False)
NEGATIONS = ["no", "not", "non", "non-", "without", "never", "don't", "no explicit", "no visible",
             "NO", "without any"]  # fmt: skip
ONE_WORD = sorted({t.text for t in TERMS if " " not in t.text and len(t.text) >= 3})
FILLER = ["a", "photo", "of", "the", "beach", "red", "dress", "woman", "at", "night"]


def covering(rules: RuleFilter, text: str, start: int, end: int) -> bool:
    """Whether some match of *text* covers ``text[start:end]``."""
    return any(m.start <= start and m.end >= end for m in rules.scan(text))


prompts_with_terms = st.lists(
    st.sampled_from([t.text for t in TERMS] + FILLER), min_size=1, max_size=6
).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(prompts_with_terms, st.sampled_from(NEGATIONS))
def test_negation_never_removes_a_match(text: str, negation: str) -> None:
    """Whatever a negator marks, every term found without it is still found with it."""
    before = {(m.term, m.matched) for m in DEFAULT.scan(text)}
    after = {(m.term, m.matched) for m in DEFAULT.scan(f"{negation} {text}")}
    assert before <= after


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(ONE_WORD), st.sampled_from(NEGATIONS))
def test_a_negated_term_is_found_and_marked(term: str, negation: str) -> None:
    """A term right after a negator is reported, marked negated."""
    text = f"{negation} {term}"
    matches = [m for m in DEFAULT.scan(text) if m.end == len(text)]
    assert matches, text
    assert all(m.negated for m in matches), text


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(innocent_phrases()),
    st.sampled_from([t.text for t in TERMS]),
    st.sampled_from([", ", ". ", " and ", " ", "\n"]),
    st.booleans(),
)
def test_an_innocent_phrase_never_hides_a_term_outside_it(
    phrase: str, term: str, separator: str, term_first: bool
) -> None:
    """A term next to (not inside) an occurrence of an innocent phrase is still flagged."""
    text = f"{term}{separator}{phrase}" if term_first else f"{phrase}{separator}{term}"
    start = 0 if term_first else len(phrase) + len(separator)
    # Across the seam the words may form another innocent phrase that is the term's own
    # innocent sense ("pin up" + " " + "the sex of" reads "pin up the ..."): not this case.
    assume(not _innocent_across(text, start, start + len(term), phrase))
    assert covering(DEFAULT, text, start, start + len(term)), text


def _innocent_across(text: str, start: int, end: int, placed: str) -> bool:
    """Whether an innocent phrase other than *placed* occurs over the span start:end."""
    lowered = text.lower()
    for other in innocent_phrases():
        if other == placed:
            continue
        at = lowered.find(other.lower())
        while at != -1:
            if at < end and at + len(other) > start:
                return True
            at = lowered.find(other.lower(), at + 1)
    return False


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(innocent_phrases()),
    st.sampled_from([str.lower, str.upper, str.title, lambda p: p.replace(" ", "-")]),
    st.sampled_from(["{}", "a photo of {}, 4k", "({}:1.2)", "{}s", "the {} today"]),
)
def test_every_shipped_innocent_phrase_does_not_flag(phrase: str, case: Any, template: str) -> None:
    """A shipped innocent sense, in any case, plural or inside prompt syntax, flags nothing."""
    # A plural that is itself a term is that term, never the phrase plus -s ("great tits").
    assume(template != "{}s" or phrase.split()[-1] + "s" not in {t.text for t in TERMS})
    text = template.format(case(phrase))
    assert DEFAULT.scan(text) == (), text


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ONE_WORD), st.sampled_from(_SUFFIXES))
def test_a_term_with_any_ending_is_found_as_a_whole_word(term: str, suffix: str) -> None:
    """A one-word term plus any documented ending is found, the match covering the word."""
    text = f"a {term}{suffix} photo"
    assert covering(NO_CONTEXT, text, 2, 2 + len(term) + len(suffix)), text


SELF_PHRASES = sorted({t.text for t in TERMS if "myself" in t.text.split()})


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(SELF_PHRASES), st.sampled_from(_REFLEXIVES))
def test_any_reflexive_pronoun_stands_for_myself(term: str, pronoun: str) -> None:
    """A self-harm phrase with any reflexive pronoun is found as that phrase."""
    text = term.replace("myself", pronoun)
    assert term in {m.term for m in DEFAULT.scan(f"how to {text}")}, text


# -- issue 12, red-team round: the rules' mechanisms, each as a property -------------------

from tests.strategies import PROMPT_WORDS, clause_marks, plain_words  # noqa: E402

_INVENTED = st.sampled_from(PROMPT_WORDS)


@settings(max_examples=200, deadline=None)
@given(st.lists(plain_words, min_size=2, max_size=4, unique=True), st.data(), clause_marks)
def test_clause_punctuation_voids_an_allowed_phrase(
    phrase: list[str], data: st.DataObject, mark: str
) -> None:
    """An allowed phrase split by punctuation between its words allows nothing (red team 1)."""
    term = data.draw(st.sampled_from(phrase))
    assume(all(w == term or term not in w for w in phrase))
    rules = RuleFilter([term], allow=[" ".join(phrase)])
    cut = data.draw(st.integers(1, len(phrase) - 1))
    text = " ".join(phrase[:cut]) + mark + " ".join(phrase[cut:])
    assert term in {m.term for m in rules.scan(text)}, text
    assert rules.scan(" ".join(phrase)) == ()  # written plainly, the phrase allows it
    assert rules.scan("-".join(phrase)) == ()  # and with the dash family between


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(ONE_WORD),
    st.sampled_from(["no", "not", "non", "without", "never", "don't", "no visible"]),
    st.sampled_from(["watermark", "makeup", "binary", "1", "regrets", "text", "blurry"]),
)
def test_a_negator_negates_only_the_word_right_after_it(
    term: str, negator: str, other: str
) -> None:
    """A negator's object is the word after it: a term after that word is not negated (2)."""
    text = f"{negator} {other} {term}"
    matches = [m for m in DEFAULT.scan(text) if m.end == len(text)]
    assert matches, text
    assert not any(m.negated for m in matches), text


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(ONE_WORD),
    st.sampled_from(["n0", "n07", "n0t", "n0n", "nо", "un", "anti", "free of", "f0r"]),
    st.sampled_from([" ", "-"]),
)
def test_no_look_alike_or_weak_word_negates(term: str, negator: str, gap: str) -> None:
    """Digits read as letters, other scripts and weak words ("un", "free of") negate nothing."""
    text = f"{negator}{gap}{term}"
    matches = [m for m in DEFAULT.scan(text) if m.end == len(text)]
    assert matches, text
    assert not any(m.negated for m in matches), text


@settings(max_examples=300, deadline=None)
@given(
    _INVENTED,
    st.lists(_INVENTED, min_size=1, max_size=2),
    st.lists(_INVENTED, max_size=2),
    st.sampled_from(["mild", "severe"]),
    st.booleans(),
)
def test_an_outer_match_hides_only_what_it_is_at_least_as_strict_as(
    inner: str, before: list[str], after: list[str], outer_severity: str, negate: bool
) -> None:
    """A longer match that is milder or negated never hides a shorter one (red team 3, 4)."""
    outer = " ".join([*before, inner, *after])
    rules = RuleFilter([Term(outer, severity=outer_severity), Term(inner)])
    text = f"no {outer}" if negate else outer
    found = rules.scan(text)
    strict = [m for m in found if m.severity == "severe" and not m.negated]
    as_strict = outer_severity == "severe" and not negate
    # The inner term (severe, not negated: it does not start the outer one) is reported
    # unless an outer match at least as strict stands for it.
    assert strict, text
    assert as_strict or any(m.term == inner for m in strict), text


@settings(max_examples=300, deadline=None)
@given(_INVENTED, _INVENTED, st.sampled_from(["s", "es", "y", "ies", "ing", "er"]))
def test_a_word_that_is_a_term_is_never_an_allowed_word_plus_an_ending(
    first: str, word: str, ending: str
) -> None:
    """An allowed phrase's word plus an ending never covers a term spelled so (red team 6)."""
    term = word + ending
    assume(first != word)
    rules = RuleFilter([term], allow=[f"{first} {word}"])
    text = f"{first} {term}"
    assert term in {m.term for m in rules.scan(text)}, text


@settings(max_examples=300, deadline=None)
@given(st.lists(_INVENTED, min_size=4, max_size=4, unique=True))
def test_a_match_is_allowed_only_when_one_occurrence_holds_it(words: list[str]) -> None:
    """Two allowed phrases that each cover part of a match do not allow it (red team 7)."""
    a, b, c, d = words
    rules = RuleFilter([f"{b} {c}"], allow=[f"{a} {b}", f"{c} {d}"])
    assert [m.term for m in rules.scan(f"{a} {b} {c} {d}")] == [f"{b} {c}"]
    assert RuleFilter([f"{b} {c}"], allow=[f"{a} {b} {c}"]).scan(f"{a} {b} {c} {d}") == ()


_POSSESSIVE_WORDS = ["my", "your", "his", "her", "their", "our", "ur"]


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["kill", "hang", "killing", "killin", "cut"]),
    st.sampled_from(["my", "your", "ur", "him", "her", "them", "our", "one", "it"]),
    st.sampled_from(["self", "selves", "SELF", "s e l f"]),
)
def test_a_reflexive_pronoun_in_two_words_is_found(verb: str, pronoun: str, self_: str) -> None:
    """``kill my self``, ``hang ur self``: the reflexive split in two is still one (8)."""
    assert DEFAULT.scan(f"{verb} {pronoun} {self_}"), (verb, pronoun, self_)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["slit", "slitting", "cut", "cutting", "slash", "slashed"]),
    st.sampled_from(_POSSESSIVE_WORDS),
    st.sampled_from(["wrists", "wrist"]),
)
def test_a_possessive_in_a_self_harm_phrase_is_found(verb: str, owner: str, wrist: str) -> None:
    """``slit his wrists``, ``cut your wrist``: any possessive stands for any other (8)."""
    text = f"{verb} {owner} {wrist}"
    assert {m.category for m in DEFAULT.scan(text)} == {"self_harm"}, text


_ING_TERMS = sorted({t.text for t in TERMS if t.text.endswith("ing") and " " not in t.text})


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_ING_TERMS), st.sampled_from(["s", "ed", "er", "ers", "es"]))
def test_a_term_listed_with_ing_is_found_in_its_other_forms(term: str, ending: str) -> None:
    """``snorting`` stands for ``snorted`` and ``snorts`` (8), never for its bare stem."""
    word = term[:-3] + ending
    text = f"a {word} b"
    assert covering(NO_CONTEXT, text, 2, 2 + len(word)), text  # this term, or the word's own
    assert not covering(RuleFilter([term]), f"a {term[:-3]} b", 2, len(term) - 1)

"""Tests of RuleFilter: what it must catch, what it must not flag, and how it explains matches."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from safegen import InvalidPromptError, PolicyError
from safegen.text import RuleFilter, RuleMatch, Term, Transform
from tests.strategies import ZERO_WIDTH, plain_words, with_invisible

TERMS = ["naked", "nude", "sex", "sexy", "kill", "ass", "blow job", "heil hitler", "self harm"]
RULES = RuleFilter(TERMS)
DEFAULT = RuleFilter.default()


def squeeze(word: str) -> str:
    return re.sub(r"(.)\1+", r"\1", word)


def terms_found(rules: RuleFilter, text: str) -> set[str]:
    return {m.term for m in rules.scan(text)}


def only(rules: RuleFilter, text: str) -> RuleMatch:
    (match,) = rules.scan(text)
    return match


# Each kind of obfuscation, with many examples: (text, term, transform that exposed it).
CAUGHT = [
    # case and diacritics
    ("NAKED", "naked", None),
    ("NaKeD", "naked", None),
    ("näkéd", "naked", Transform.DIACRITIC_REMOVED),
    ("nüde", "nude", Transform.DIACRITIC_REMOVED),
    ("séx", "sex", Transform.DIACRITIC_REMOVED),
    ("n\u0303aked", "naked", Transform.DIACRITIC_REMOVED),
    # compatibility forms
    ("ｎａｋｅｄ", "naked", Transform.COMPATIBILITY_FOLDED),
    ("𝐧𝐚𝐤𝐞𝐝", "naked", Transform.COMPATIBILITY_FOLDED),
    ("𝔫𝔞𝔨𝔢𝔡", "naked", Transform.COMPATIBILITY_FOLDED),
    ("𝕟𝕒𝕜𝕖𝕕", "naked", Transform.COMPATIBILITY_FOLDED),
    ("ⓝⓤⓓⓔ", "nude", Transform.COMPATIBILITY_FOLDED),
    ("🅽🆄🅳🅴", "nude", None),  # negative squared letters have no compatibility form
    # homoglyphs
    ("nаkеd", "naked", Transform.HOMOGLYPH_FOLDED),  # Cyrillic а, е
    ("ѕех", "sex", Transform.HOMOGLYPH_FOLDED),  # Cyrillic ѕ, е, х
    ("ΝΑΚΕD", "naked", Transform.HOMOGLYPH_FOLDED),  # Greek capitals
    ("nαkεd", "naked", Transform.HOMOGLYPH_FOLDED),  # Greek small alpha, epsilon
    # invisible characters
    ("na\u200bked", "naked", Transform.INVISIBLE_REMOVED),
    ("n\u200ca\u200dk\u2060e\ufeffd", "naked", Transform.INVISIBLE_REMOVED),
    ("nu\u00adde", "nude", Transform.INVISIBLE_REMOVED),
    ("s\u200bex", "sex", Transform.INVISIBLE_REMOVED),
    # leetspeak
    ("n4k3d", "naked", Transform.LEETSPEAK),
    ("n@ked", "naked", Transform.LEETSPEAK),
    ("nud3", "nude", Transform.LEETSPEAK),
    ("s3x", "sex", Transform.LEETSPEAK),
    ("$ex", "sex", Transform.LEETSPEAK),
    ("5exy", "sexy", Transform.LEETSPEAK),
    ("a$$", "ass", Transform.LEETSPEAK),
    ("ki11", "kill", Transform.LEETSPEAK),
    ("k!ll", "kill", Transform.LEETSPEAK),
    ("ki||", "kill", Transform.LEETSPEAK),
    # separators between single letters
    ("n a k e d", "naked", Transform.SEPARATORS_COLLAPSED),
    ("n.a.k.e.d", "naked", Transform.SEPARATORS_COLLAPSED),
    ("n-a-k-e-d", "naked", Transform.SEPARATORS_COLLAPSED),
    ("n_a_k_e_d", "naked", Transform.SEPARATORS_COLLAPSED),
    ("n*a*k*e*d", "naked", Transform.SEPARATORS_COLLAPSED),
    ("s . e . x", "sex", Transform.SEPARATORS_COLLAPSED),
    ("a photo, s e x y!", "sexy", Transform.SEPARATORS_COLLAPSED),
    ("n 4 k 3 d", "naked", Transform.SEPARATORS_COLLAPSED),
    # stretched letters
    ("naaaked", "naked", Transform.REPEATS_SQUEEZED),
    ("nuuuuude", "nude", Transform.REPEATS_SQUEEZED),
    ("sexxxx", "sex", Transform.REPEATS_SQUEEZED),
    ("seeeexy", "sexy", Transform.REPEATS_SQUEEZED),
    # inflections
    ("nudes", "nude", Transform.INFLECTION),
    ("killing", "kill", Transform.INFLECTION),
    ("killed", "kill", Transform.INFLECTION),
    ("killers", "kill", Transform.INFLECTION),
    ("asses", "ass", Transform.INFLECTION),
    ("nuding", "nude", Transform.INFLECTION),
    # phrases, with any separators between their words
    ("a blow job", "blow job", None),
    ("blow-jobs", "blow job", Transform.INFLECTION),
    ("h3il   hitl3r", "heil hitler", Transform.LEETSPEAK),
    ("self-harm", "self harm", None),
    ("self_harm", "self harm", None),
]


@pytest.mark.parametrize(("text", "term", "transform"), CAUGHT)
def test_obfuscations_are_caught_and_explained(
    text: str, term: str, transform: Transform | None
) -> None:
    """Each trick still matches, and the match names the trick that was undone."""
    match = only(RULES, f"a picture of {text} today")
    assert match.term == term
    if transform is not None:
        assert transform in match.transforms
    assert match.matched.strip() != ""


INNOCENT = [
    "Scunthorpe",
    "classic",
    "classical music",
    "cocktail",
    "analysis",
    "Dickens",
    "therapist",
    "shiitake",
    "cockpit",
    "Sussex",
    "Essex",
    "bass exercise",
    "glass elevator",
    "a killer whale",  # only with the default list, where "kill" is not a term
    "assassin's creed",
    "skills",
    "assume",
    "passage",
    "sextant",
    "Middlesex",
    "nudibranch",
    "sexton",
    "a hand of cards",
    "a blow to the head",
    "the job market",
    "s e a shells",
    "n a t u r e",
    "as",
]


@pytest.mark.parametrize("text", INNOCENT)
def test_innocent_words_are_not_flagged(text: str) -> None:
    """Words that merely contain a term, and real words joined by separators, are clean."""
    rules = DEFAULT if "killer" in text else RULES
    assert rules.scan(text) == (), text


@pytest.mark.parametrize(
    "text",
    [
        "Scunthorpe United",
        "a classic car",
        "a cocktail bar",
        "data analysis",
        "Charles Dickens",
        "my therapist",
        "shiitake mushrooms",
        "a cockpit",
        "Sussex",
        "Essex",
        "Middlesex",
        "bass exercise",
        "a killer whale",
        "an assassin",
        "a hand grenade museum",
        "cockatoo",
        "pussy willow",
        "a wet rooster",
        "shoot a photo",
        "cross-hatching",
        "Hancock",
        "Titicaca",
        "cumulus clouds",
        "a scumbag",
        "documents",
        "spicy cucumber",
        "analog synth",
        "grape",
        "therapists",
        "Lake Titicaca at dawn",
        "a nudibranch",
        "a sextant",
        "the sexton",
    ],
)
def test_the_default_list_leaves_everyday_prompts_alone(text: str) -> None:
    """The shipped list is curated for precision on ordinary image prompts."""
    assert DEFAULT.scan(text) == (), text


def test_a_match_reports_its_span_in_the_original_text() -> None:
    """The span indexes the original string, so an application can highlight it."""
    text = "Ａ pic: n\u200ba\u200bk\u200be\u200bd, please"
    match = only(RULES, text)
    assert text[match.start : match.end] == match.matched == "n\u200ba\u200bk\u200be\u200bd"
    assert match.span == (match.start, match.end)
    assert match.to_dict() == {
        "term": "naked",
        "category": "custom",
        "span": [match.start, match.end],
        "matched": match.matched,
        "transforms": ["invisible removed"],
    }


def test_matches_come_in_order_with_their_categories() -> None:
    """Several matches are listed by position, each with its term's category."""
    rules = RuleFilter([Term("naked", "sexual"), Term("gore", "violence")])
    matches = rules.scan("gore and naked and more gore")
    assert [(m.term, m.category, m.start) for m in matches] == [
        ("gore", "violence", 0),
        ("naked", "sexual", 9),
        ("gore", "violence", 24),
    ]


def test_the_allowlist_wins_over_a_term() -> None:
    """An allowed word never counts, in any inflection; other matches are unaffected."""
    rules = RuleFilter(["ass"], allow=["ass"])
    assert rules.scan("an ass and two asses") == ()
    rules = RuleFilter(["ass", "naked"], allow=["asses"])
    assert terms_found(rules, "two asses, naked") == {"naked"}


@given(st.lists(plain_words, min_size=1, max_size=5), st.lists(plain_words, max_size=8))
def test_a_prompt_made_only_of_allowlisted_words_never_matches(
    allowed: list[str], extra_terms: list[str]
) -> None:
    """Whatever the terms, text made of allowed words alone is clean."""
    rules = RuleFilter([*allowed, *extra_terms, " ".join(allowed)], allow=allowed)
    assert rules.scan(" ".join(allowed)) == ()


@given(plain_words, st.data())
def test_invisible_characters_anywhere_in_a_term_still_match(
    word: str, data: st.DataObject
) -> None:
    """Zero-width characters and soft hyphens inserted anywhere never hide a term."""
    hidden = data.draw(with_invisible(word))
    match = only(RuleFilter([word]), f"x {hidden} y")
    assert match.term == word
    # Invisible characters at either edge lie outside the word; inside it, they are matched.
    inner = hidden.strip("".join(ZERO_WIDTH))
    assert match.matched == inner
    if inner != word:
        assert Transform.INVISIBLE_REMOVED in match.transforms


@given(plain_words, st.sampled_from([" ", ".", "-", "_", "*", " . "]))
def test_spacing_out_a_term_letter_by_letter_still_matches(word: str, separator: str) -> None:
    """Any term spelled out with separators between its letters is found."""
    assert word in terms_found(RuleFilter([word]), separator.join(word))


@given(plain_words, plain_words)
def test_a_term_inside_a_longer_word_does_not_match(term: str, other: str) -> None:
    """Whole words only: a term glued to other letters is a different word."""
    glued = other + term
    assume(RuleFilter([term]).scan(other) == ())
    # The glued word could still be the term stretched (aaa+aab is aab with a long a) or
    # inflected: leave those out, they are the term.
    assume(not squeeze(glued).startswith(squeeze(term)))
    assert RuleFilter([term]).scan(glued) == ()


def test_scanning_cost_does_not_grow_with_the_number_of_terms() -> None:
    """A word is looked up, not compared with each term: 20,000 terms scan like 20."""
    import string

    few = RuleFilter(["naked", "gore"])
    many = RuleFilter(
        ["naked", "gore", *("".join(p) for p in zip(*(string.ascii_lowercase,) * 4, strict=False))]
        + [
            f"zz{a}{b}{c}"
            for a in string.ascii_lowercase
            for b in "abcdefghij"
            for c in "abcdefghij"
        ]
    )
    assert len(many.terms) > 2000
    prompt = "a naked man in a field of gore " * 20
    assert few.scan(prompt) == many.scan(prompt)
    # Structure, not timing: the index has one entry per distinct first word key.
    assert len(many._index) > 2000


class TestTerms:
    def test_default_has_the_five_categories(self) -> None:
        """The shipped list is categorised, every category non-empty."""
        categories = {t.category for t in DEFAULT.terms}
        assert categories == {"sexual", "violence", "hate", "drugs", "self_harm"}

    def test_default_can_be_added_to_and_removed_from(self) -> None:
        """Users extend or trim the defaults without replacing them."""
        rules = RuleFilter.default(add=["goblin"], remove=["sexy"])
        assert terms_found(rules, "a sexy goblin") == {"goblin"}
        assert len(rules.terms) == len(DEFAULT.terms)

    def test_removing_an_unknown_default_is_refused(self) -> None:
        """A typo in remove= would silently keep a term the user meant to drop."""
        with pytest.raises(PolicyError, match="not in the default term list"):
            RuleFilter.default(remove=["sexxy"])

    @pytest.mark.parametrize("term", ["", "   ", "123", "!!!"])
    def test_a_term_without_letters_is_refused(self, term: str) -> None:
        """A term that could never match is a mistake, said at construction."""
        with pytest.raises(PolicyError, match="has no letters"):
            RuleFilter([term])

    def test_an_empty_filter_matches_nothing(self) -> None:
        """No terms, no matches."""
        assert RuleFilter().scan("naked gore") == ()


@pytest.mark.parametrize(
    "text",
    ["", "   ", "\x00\x01\x02", "\ud800 lone surrogate", "🙂" * 50, "a" * 100_000, "a " * 50_000],
)
def test_odd_input_is_scanned_without_error(text: str) -> None:
    """Empty, control characters, lone surrogates, emoji and long input all scan."""
    assert isinstance(DEFAULT.scan(text), tuple)


def test_a_non_string_is_an_invalid_prompt() -> None:
    """Bytes or None are a clear error, not a crash deep inside."""
    with pytest.raises(InvalidPromptError, match="expected a string, got bytes"):
        DEFAULT.scan(b"naked")  # type: ignore[arg-type]


def test_a_spaced_out_repetition_is_one_stretched_letter() -> None:
    """A spaced-out repeated letter is one match over the whole stretch, like "xxxx"."""
    rules = RuleFilter(["xxx", "sex"])
    (match,) = rules.scan("x " * 1000)
    assert (match.term, match.span) == ("xxx", (0, 1999))
    assert Transform.REPEATS_SQUEEZED in match.transforms
    assert [m.term for m in rules.scan("s s e e x x")] == ["sex"]


def test_matches_nested_in_longer_ones_are_dropped() -> None:
    """Where one match lies inside another, the longer one explains the text."""
    rules = RuleFilter(["sex", "sexy", "sex toy"])
    assert [m.term for m in rules.scan("s-e-x-y")] == ["sexy"]
    assert [m.term for m in rules.scan("a sex toy")] == ["sex toy"]
    both = RuleFilter([Term("gore", "violence"), Term("gore", "custom")]).scan("gore")
    assert sorted(m.category for m in both) == ["custom", "violence"]  # same span: both kept

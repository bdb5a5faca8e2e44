"""Tests of RuleFilter: what it must catch, what it must not flag, and how it explains matches."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from safegen import Action, InvalidPromptError, PolicyError, PromptModerator
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
        "severity": "severe",
        "negated": False,
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
    """Whatever the terms, text made of allowed words (and allowed as a whole) is clean."""
    rules = RuleFilter(
        [*allowed, *extra_terms, " ".join(allowed)], allow=[*allowed, " ".join(allowed)]
    )
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
    assume(not other.startswith("non"))  # the one prefix read: a negating non (nonnude)
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
    def test_default_has_the_six_categories(self) -> None:
        """The shipped list is categorised, every category non-empty."""
        categories = {t.category for t in DEFAULT.terms}
        assert categories == {"sexual", "suggestive", "violence", "hate", "drugs", "self_harm"}

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


# Disguises of class 5 (issue 11): (text, term, transform that exposed it).
DISGUISED = [
    # the dash family and other punctuation between letters
    ("n\u2212a\u2212k\u2212e\u2212d", "naked", Transform.SEPARATORS_COLLAPSED),  # minus sign
    ("n\u2043u\u2043d\u2043e", "nude", Transform.SEPARATORS_COLLAPSED),  # hyphen bullet
    ("n\ufe58u\ufe58d\ufe58e", "nude", Transform.SEPARATORS_COLLAPSED),  # small em dash
    ("n\uff0du\uff0dd\uff0de", "nude", Transform.SEPARATORS_COLLAPSED),  # fullwidth hyphen
    ("n\u2e3au\u2e3ad\u2e3ae", "nude", Transform.SEPARATORS_COLLAPSED),  # two-em dash
    ("s\u2014e\u2014x", "sex", Transform.SEPARATORS_COLLAPSED),  # em dash
    ("s,e,x", "sex", Transform.SEPARATORS_COLLAPSED),
    ("s\N{FIRE}e\N{FIRE}x", "sex", Transform.SEPARATORS_COLLAPSED),  # emoji between letters
    ("na-ked", "naked", Transform.SEPARATORS_COLLAPSED),  # pieces longer than one letter
    ("nu.de", "nude", Transform.SEPARATORS_COLLAPSED),
    ("n|aked", "naked", Transform.SEPARATORS_COLLAPSED),
    # enclosed letters
    ("⒩⒰⒟⒠", "nude", Transform.COMPATIBILITY_FOLDED),
    ("ⓃⓊⒹⒺ", "nude", Transform.COMPATIBILITY_FOLDED),
    ("🄽🅄🄳🄴", "nude", Transform.COMPATIBILITY_FOLDED),
    ("🅝🅤🅓🅔", "nude", Transform.COMPATIBILITY_FOLDED),
    # strokes, bars, hooks, dotless, IPA and small capitals
    ("ꞥⱥƙɇđ", "naked", Transform.DIACRITIC_REMOVED),
    ("ƙıłł", "kill", Transform.DIACRITIC_REMOVED),
    ("ɴᴜᴅᴇ", "nude", Transform.HOMOGLYPH_FOLDED),
    ("ɴɑkɛd", "naked", Transform.HOMOGLYPH_FOLDED),
    ("ꜱᴇx", "sex", Transform.HOMOGLYPH_FOLDED),
    # invisible characters of every kind
    ("n\u200du\ufe0fd\U000e0041e", "nude", Transform.INVISIBLE_REMOVED),
    ("n\u202eu\u2066d\u2069e", "nude", Transform.INVISIBLE_REMOVED),
    # generators' prompt syntax around the term
    ("{nude|clothed}", "nude", None),
    ("[clothed|nude]", "nude", None),
    ("(nude:1.3)", "nude", None),
    ("((nude))", "nude", None),
    ("nude++", "nude", Transform.PROMPT_SYNTAX),
    ("nude--", "nude", None),
    ("@nude", "nude", Transform.PROMPT_SYNTAX),
    ("<lora:nude:0.8>", "nude", None),
    ("[nude:0.5]", "nude", None),
    ("[clothed:nude:10]", "nude", None),
    ("n!u!d!e", "nude", Transform.PROMPT_SYNTAX),
    # a multi-word term with a word spaced out
    ("blow j o b", "blow job", Transform.SEPARATORS_COLLAPSED),
    ("h e i l  h i t l e r", "heil hitler", Transform.SEPARATORS_COLLAPSED),
]


@pytest.mark.parametrize(("text", "term", "transform"), DISGUISED)
def test_disguises_are_caught_with_exact_spans(
    text: str, term: str, transform: Transform | None
) -> None:
    """Each disguise still matches; the span is the disguised word, syntax around it excluded."""
    prompt = f"a picture of {text} today"
    match = only(RULES, prompt)
    assert match.term == term
    if transform is not None:
        assert transform in match.transforms
    assert prompt[match.start : match.end] == match.matched
    # Inside the disguise, and neither starting nor ending with syntax or separators.
    assert prompt.index(text) <= match.start
    assert match.end <= prompt.index(text) + len(text)
    edges = match.matched.strip("\u200b\u200d\ufe0f\U000e0041\u202e\u2066\u2069")
    assert edges[0] not in "{}[]()<>:@+-|!. "
    assert edges[-1] not in "{}[]()<>:@+-|!. "


@pytest.mark.parametrize(
    "text",
    ["{ki|ll}", "[ki|ll]", "{k|ill}", "{kil|l}", "(s:3) x", "<lora:s:3> x"],
)
def test_prompt_syntax_never_glues_letters_into_a_term(text: str) -> None:
    """Alternatives and weights are syntax: their pieces and digits never make a term."""
    assert RULES.scan(f"a {text} b") == (), text


@pytest.mark.parametrize("text", ["well-known", "e-mail", "x-ray", "co-op", "a.k.a.", "U.S.A."])
def test_hyphenated_words_stay_innocent(text: str) -> None:
    """Joining pieces across tight punctuation invents no term from everyday words."""
    assert DEFAULT.scan(text) == (), text


class TestAllowlistPhrases:
    """Boundary cases of the allowlist against multi-word terms and phrases (issue 11)."""

    def test_allowing_one_word_of_a_multi_word_term_leaves_the_term(self) -> None:
        """Allowing "job" does not allow "blow job": "blow" is not allowed."""
        rules = RuleFilter(["blow job"], allow=["job"])
        assert [m.term for m in rules.scan("a blow job")] == ["blow job"]
        assert RuleFilter(["job"], allow=["job"]).scan("a blow job") == ()

    def test_allowing_the_whole_phrase_drops_the_term(self) -> None:
        """The allowlist entry that is the whole phrase switches the term off."""
        assert RuleFilter(["blow job"], allow=["blow job"]).scan("a blow job") == ()

    def test_an_allowed_phrase_allows_its_words_only_together(self) -> None:
        """Allowing "pussy willow" keeps "pussy" forbidden everywhere else."""
        rules = RuleFilter(["pussy"], allow=["pussy willow"])
        assert rules.scan("a pussy willow in spring") == ()
        assert [m.term for m in rules.scan("a pussy, a willow")] == ["pussy"]
        assert [m.term for m in rules.scan("a pussy")] == ["pussy"]

    def test_words_allowed_apart_do_not_drop_a_phrase_term(self) -> None:
        """A match is dropped only when one allowed occurrence holds all of it (red team 7)."""
        assert terms_found(RuleFilter(["blow job"], allow=["blow", "job"]), "a blow job") == {
            "blow job"
        }
        rules = RuleFilter(["sex toy"], allow=["same sex", "toy store"])
        assert terms_found(rules, "same sex toy store") == {"sex toy"}
        assert RuleFilter(["sex toy"], allow=["sex toy store"]).scan("sex toy store") == ()

    def test_an_allowed_phrase_only_covers_where_it_stands(self) -> None:
        """A term overlapping an allowed phrase by one word still counts."""
        rules = RuleFilter(["blow job"], allow=["job interview"])
        assert [m.term for m in rules.scan("blow job interview")] == ["blow job"]


def test_the_term_data_imports_nothing_from_the_rule_engine() -> None:
    """The dependency is one-way: rules read the term lists, the term lists know no rules."""
    import ast
    from pathlib import Path

    from safegen.text import terms

    tree = ast.parse(Path(terms.__file__).read_text(encoding="utf-8"))
    imported = {
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert not any(name.startswith("safegen") for name in imported), imported


def test_every_shipped_term_is_a_plain_pair() -> None:
    """The term data is (term, category) pairs that RuleFilter.default turns into terms."""
    from safegen.text.terms import CATEGORIES, default_terms

    assert {category for _, category, _ in default_terms()} == set(CATEGORIES)
    assert [t.text for t in DEFAULT.terms] == [text for text, _, _ in default_terms()]


# The red team's prompts: letters of other scripts with descenders, hooks and strokes, and a
# multiplication sign for an x. The moderator must block each, and the match must cover the word.
RED_TEAM = [
    ("a seх photo", "seх"),
    ("a seҳ photo", "seҳ"),
    ("a seӽ photo", "seӽ"),
    ("a naҝed woman", "naҝed"),
    ("a naӄed woman", "naӄed"),
    ("ҫum shot", "ҫum"),
    ("a ѵagina", "ѵagina"),
    ("se× tape", "se×"),
]


@pytest.mark.parametrize(("prompt", "word"), RED_TEAM)
def test_the_red_team_look_alikes_are_blocked(prompt: str, word: str) -> None:
    """Each red-team prompt is blocked by the default rules, the match spanning the word."""
    assert PromptModerator(rules=RuleFilter.default()).moderate(prompt).action is Action.BLOCK
    assert word in [m.matched for m in RuleFilter.default().scan(prompt)]


@pytest.mark.parametrize(
    "prompt",
    [
        "a 1920×1080 wallpaper",
        "a 4×4 truck",
        "a 2⨯3 grid of tiles",
        "4✕4 off-road",
        "16×9 photo of a sunset",
        "× marks the spot",
        "a 3 × 5 card",
    ],
)
def test_a_times_sign_between_numbers_is_no_false_alarm(prompt: str) -> None:
    """A multiplication sign by digits or alone never makes an x that joins into a term."""
    assert RuleFilter.default().scan(prompt) == ()


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: RuleFilter(None), id="terms None"),  # type: ignore[arg-type]
        pytest.param(lambda: RuleFilter("naked"), id="terms a single string"),
        pytest.param(lambda: RuleFilter(["x"], allow=5), id="allow a number"),  # type: ignore[arg-type]
        pytest.param(lambda: RuleFilter(["x"], allow="nude"), id="allow a single string"),
        pytest.param(lambda: RuleFilter([5]), id="a term that is a number"),  # type: ignore[list-item]
        pytest.param(lambda: RuleFilter([Term("naked", 5)]), id="a category that is a number"),  # type: ignore[arg-type]
        pytest.param(lambda: RuleFilter([Term("naked", "")]), id="an empty category"),
        pytest.param(lambda: RuleFilter.default(add=None), id="add None"),  # type: ignore[arg-type]
        pytest.param(lambda: RuleFilter.default(remove=5), id="remove a number"),  # type: ignore[arg-type]
        pytest.param(lambda: RuleFilter.default(remove=[None]), id="remove a None"),  # type: ignore[list-item]
    ],
)
def test_arguments_of_the_wrong_kind_are_policy_errors(build: Callable[[], object]) -> None:
    """A term list of the wrong kind is a PolicyError naming it, never a bare TypeError."""
    with pytest.raises(PolicyError):
        build()


# --- allowed phrases split by generator syntax (issue 11, third round) ------------------------

# (term, allowed phrase): the term is one word of the phrase, first or last.
ALLOWED_PAIRS = [("pussy", "pussy willow"), ("dick", "moby dick"), ("nude", "nude lipstick")]
# Each renders the two words apart: alternation, prompt editing, weights, groups, tags.
SPLITTING = [
    "{{{a}|{b}}}",
    "[{a}|{b}]",
    "[{a}:{b}:0.5]",
    "[{a}:{b}:10]",
    "{a} ({b}:0)",
    "({a}:0) {b}",
    "{a} [:{b}:0.99]",
    "[{a}::0.5] {b}",
    "{a}::5 {b}::-5",
    "{a}:: {b}",
    "({a}) {b}",
    "{a} (({b}))",
    "{a} [{b}]",
    "({a}:1.4) {b}",
    "{a} <lora:{b}:1>",
    "<{a}> {b}",
    "{{{a}|cat}} {b}",
    "{a} {{{b}|dog}}",
    "{a}:{b}",
]
# Each renders the phrase with its words together.
TOGETHER = [
    "{a} {b}",
    "a {a} {b} in spring",
    "({a} {b}:1.2)",
    "(({a} {b}))",
    "[{a} {b}]",
    "{{{a} {b}|cat}}",
    "[{a} {b}:cat:0.5]",
    "<lora:x:0.5> {a} {b}",
    "{a} {b}, masterpiece",
]

SPLIT_EXAMPLES = [
    "{pussy|willow}",
    "[pussy:willow:0.5]",
    "pussy (willow:0)",
    "pussy [:willow:0.99]",
    "pussy::5 willow::-5",
]


@pytest.mark.parametrize("text", SPLIT_EXAMPLES)
def test_the_red_team_split_phrases_are_flagged(text: str) -> None:
    """Each of the red team's syntax splits of an allowed phrase leaves the lone term flagged."""
    rules = RuleFilter(terms=["pussy"], allow=["pussy willow"])
    assert [m.term for m in rules.scan(text)] == ["pussy"], text


@given(
    st.sampled_from(ALLOWED_PAIRS),
    st.sampled_from(SPLITTING),
    st.sampled_from(["", "a photo of ", "(masterpiece:1.2), "]),
)
def test_an_allowed_phrase_split_by_syntax_allows_nothing(
    pair: tuple[str, str], template: str, prefix: str
) -> None:
    """Any syntax construct between the words of an allowed phrase voids the exemption."""
    term, phrase = pair
    first, second = phrase.split()
    text = prefix + template.format(a=first, b=second)
    assert term in terms_found(RuleFilter([term], allow=[phrase]), text), text


@given(
    st.sampled_from(ALLOWED_PAIRS),
    st.sampled_from(TOGETHER),
    st.sampled_from(["", "a photo of ", "(masterpiece:1.2), "]),
)
def test_an_allowed_phrase_written_together_is_exempt(
    pair: tuple[str, str], template: str, prefix: str
) -> None:
    """Written plainly or wholly inside one group, an allowed phrase still switches the term off."""
    term, phrase = pair
    first, second = phrase.split()
    text = prefix + template.format(a=first, b=second)
    assert RuleFilter([term], allow=[phrase]).scan(text) == (), text


# --- times signs as separators ----------------------------------------------------------------

TIMES_SEPARATED = [
    ("n×a×k×e×d", "naked"),
    ("n✕a✕k✕e✕d", "naked"),
    ("nu×de", "nude"),
    ("a n⨯u⨯d⨯e photo", "nude"),
    ("n × a × k × e × d", "naked"),
    ("s╳e╳x", "sex"),
    ("s✖e✖x✖y", "sexy"),
    ("na☓ked", "naked"),
    ("n×а×k×e×d", "naked"),  # a Cyrillic a as well
]


@pytest.mark.parametrize(("text", "term"), TIMES_SEPARATED)
def test_times_signs_between_letters_hide_no_term(text: str, term: str) -> None:
    """A times sign is tried both as an x and as a separator; the match spans the disguise."""
    matches = [m for m in DEFAULT.scan(text) if m.term == term]
    assert matches, text
    assert all(m.matched == text[m.start : m.end] for m in matches)
    assert any("×" in m.matched or not m.matched.isascii() for m in matches)


def test_a_times_sign_read_as_separator_is_not_reported_as_a_look_alike() -> None:
    """Read as a separator, a times sign says separators were collapsed, not a homoglyph."""
    (match,) = DEFAULT.scan("n×a×k×e×d")
    assert match.transforms == {Transform.SEPARATORS_COLLAPSED}
    (match,) = DEFAULT.scan("se×y")
    assert Transform.HOMOGLYPH_FOLDED in match.transforms


# --- issue 12: the mild category, phrase context, negation, recall -----------------------------

from safegen.text.terms import innocent_phrases  # noqa: E402

NO_CONTEXT = RuleFilter.default(innocent=False)


class TestSeverities:
    """Issue 12: a mild suggestive category, and mild terms marked in the other lists."""

    @pytest.mark.parametrize("text", ["a woman in a lace negligee", "busty pin-up girl", "sultry"])
    def test_suggestive_terms_are_found_as_mild(self, text: str) -> None:
        """A suggestive request is found, in the suggestive category, as mild."""
        matches = DEFAULT.scan(text)
        assert matches
        assert {(m.category, m.severity) for m in matches} == {("suggestive", "mild")}

    def test_every_suggestive_term_is_mild(self) -> None:
        """The suggestive list ships mild terms only: a policy reviews, not blocks, them."""
        suggestive = [t for t in DEFAULT.terms if t.category == "suggestive"]
        assert len(suggestive) >= 30
        assert {t.severity for t in suggestive} == {"mild"}

    @pytest.mark.parametrize(
        ("text", "severity"),
        [("a massacre", "mild"), ("genocide", "mild"), ("a noose", "mild"), ("gore", "severe"),
         ("a severed head", "severe"), ("bondage", "mild"), ("hentai", "severe")],
    )  # fmt: skip
    def test_mixed_categories_mark_each_term(self, text: str, severity: str) -> None:
        """Within one category, named events are mild and graphic terms severe."""
        (match,) = DEFAULT.scan(text)
        assert match.severity == severity

    def test_a_word_that_is_a_term_is_that_term_not_an_inflection(self) -> None:
        """A listed word is that term: sexy is mild, not the severe sex plus -y; nudes is nudes."""
        assert [(m.term, m.severity) for m in DEFAULT.scan("sexy")] == [("sexy", "mild")]
        assert [m.term for m in DEFAULT.scan("nudes")] == ["nudes"]

    def test_a_removed_term_is_not_flagged_as_an_inflection_of_another(self) -> None:
        """Removing "sexy" from the defaults stops "sexy" matching as "sex" plus "-y"."""
        rules = RuleFilter.default(remove=["sexy"])
        assert rules.scan("a sexy elf") == ()
        assert terms_found(rules, "sexy sex") == {"sex"}


class TestPhraseContext:
    """Issue 12: innocent senses of listed words are shipped as the default allowlist."""

    @pytest.mark.parametrize("phrase", innocent_phrases())
    def test_every_shipped_innocent_phrase_is_not_flagged(self, phrase: str) -> None:
        """Each shipped innocent sense, written plainly or capitalised, flags nothing."""
        assert DEFAULT.scan(phrase) == ()
        assert DEFAULT.scan(f"A photo: {phrase.title()}.") == ()

    @pytest.mark.parametrize(
        "text",
        ["seen with the naked eye", "the sex ratio of the herd", "a lecture by Al Gore",
         "a Gore-Tex jacket", "the heroines of the novel", "differences between the sexes",
         "a blue tit on a branch", "a bottomless pit", "magna cum laude"],
    )  # fmt: skip
    def test_innocent_senses_in_a_sentence_are_not_flagged(self, text: str) -> None:
        """An innocent sense inside a sentence flags nothing."""
        assert DEFAULT.scan(text) == ()

    @pytest.mark.parametrize(
        ("text", "term"),
        [("the naked eye sees a naked woman", "naked"), ("Al Gore, gore everywhere", "gore"),
         ("sex ratio and sex", "sex"), ("great tits", "tits"), ("nakedeye", None),
         ("naked (eye:0.1)", "naked"), ("{naked|eye}", "naked")],
    )  # fmt: skip
    def test_an_innocent_phrase_hides_nothing_outside_it(self, text: str, term: str | None) -> None:
        """A term beside, or split from, an innocent phrase is still flagged."""
        if term is None:  # glued letters are no words: nothing to find or hide
            assert DEFAULT.scan(text) == ()
        else:
            assert term in terms_found(DEFAULT, text)

    def test_the_innocent_list_can_be_switched_off_and_added_to(self) -> None:
        """``innocent=False`` leaves the list out; the user's allow adds to it."""
        assert terms_found(NO_CONTEXT, "the naked eye") == {"naked"}
        rules = RuleFilter.default(allow=["nude beach"])
        assert rules.scan("a nude beach seen with the naked eye") == ()
        assert "nude beach" in rules.allow
        assert "naked eye" in rules.allow

    @pytest.mark.parametrize("term", sorted({t.text for t in DEFAULT.terms}))
    def test_no_innocent_phrase_hides_a_term_written_plainly(self, term: str) -> None:
        """Every default term, alone (and a one-word term with -s), is flagged despite the list."""
        assert DEFAULT.scan(term), term
        assert " " in term or DEFAULT.scan(f"{term}s"), term


class TestNegation:
    """Issue 12: a negated match is marked (a review signal), never dropped."""

    @pytest.mark.parametrize(
        "text",
        ["no nudity", "non-nude", "nonnude", "non nude portrait", "not naked", "without gore",
         "nudity-free", "sfw, no nsfw", "don't nudity", "no visible nudity", "without any gore",
         "no explicit nudity", "never n4ked", "NO NUDITY", "no-nudity"],
    )  # fmt: skip
    def test_negated_requests_are_marked(self, text: str) -> None:
        """Each negation form marks the match negated, and the match is still reported."""
        matches = DEFAULT.scan(text)
        assert matches, text
        assert all(m.negated for m in matches), text

    @pytest.mark.parametrize(
        "text",
        ["naked, not clothed", "no, naked", "not only naked", "not clothed but naked",
         "not without gore", "no. naked", "nudity free spirit", "gore-free-spirited",
         "no big red shiny naked", "naked", "a nude without clothes", "never not naked",
         "don't show nudity", "free of gore", "no blood or gore", "anti-nazi poster",
         "no watermark nude", "non-binary nude", "n0 nudity", "n07 nudity",
         "no visible any nudity", "no 1 nude", "nо nudity", "n0nnude", "no, nudity"],
    )  # fmt: skip
    def test_what_is_no_negation_is_not_marked(self, text: str) -> None:
        """Outside a negator's reach (clause, window, contrast, double negation) nothing is."""
        matches = DEFAULT.scan(text)
        assert matches, text
        assert not any(m.negated for m in matches), text

    def test_a_negator_reaches_past_one_modifier_and_no_further(self) -> None:
        """Right before, or past one listed modifier, a negator negates; past another word not."""
        assert only(DEFAULT, "no naked").negated
        assert only(DEFAULT, "no visible naked").negated
        assert not only(DEFAULT, "no red naked").negated
        assert not only(DEFAULT, "no visible red naked").negated

    def test_a_negator_negates_only_the_term_it_stands_by(self) -> None:
        """In "non-nude nude" only the first nude is negated (red team 2)."""
        assert [m.negated for m in DEFAULT.scan("non-nude nude")] == [True, False]

    def test_only_the_negated_match_is_marked(self) -> None:
        """In "no nudity, gore" the nudity is negated and the gore is not."""
        flags = {m.term: m.negated for m in DEFAULT.scan("no nudity, gore")}
        assert flags == {"nudity": True, "gore": False}

    def test_negation_is_reported_in_the_match_data(self) -> None:
        """The negated flag travels in the match's JSON."""
        assert only(DEFAULT, "no nudity").to_dict()["negated"] is True


class TestRecall:
    """Issue 12: inflections, hyphens and pronouns that were missed."""

    @pytest.mark.parametrize(
        ("text", "term"),
        [("orgies", "orgy"), ("sexier", "sexy"), ("sexiest", "sexy"), ("nakedness", "naked"),
         ("sluttish", "slut"), ("nudish", "nude"), ("nudity-ish", "nudity"), ("porny", "porn"),
         ("gorey", "gore"), ("hentais", "hentai"), ("pornos", "porno"), ("bikinis", "bikini"),
         ("nudie", "nudie"), ("whorish", "whore")],
    )  # fmt: skip
    def test_new_inflections_are_found(self, text: str, term: str) -> None:
        """A term plus a common ending, or a final e or y changed before it, is found."""
        assert term in terms_found(DEFAULT, text), text

    @pytest.mark.parametrize(
        ("text", "term"),
        [("kill yourself", "kill myself"), ("killing themselves", "killing myself"),
         ("hang yourself", "hang myself"), ("cut herself", "cut myself"),
         ("kill urself", "kill myself"), ("k i l l y o u r s e l f", "kill myself"),
         ("kill yourselfff", "kill myself"), ("slit wrist", "slit wrists")],
    )  # fmt: skip
    def test_pronoun_and_number_variants_of_phrases_are_found(self, text: str, term: str) -> None:
        """A reflexive pronoun stands for any other; a phrase's plural word may be singular."""
        assert term in terms_found(DEFAULT, text), text

    def test_a_pronoun_alone_is_no_term(self) -> None:
        """The pronoun class widens phrases only: "yourself" or "kill it" flag nothing."""
        assert DEFAULT.scan("be yourself, kill it on stage") == ()

    @pytest.mark.parametrize(
        ("text", "term"),
        [("mastur-\nbation", "masturbation"), ("porno-\n  graphy", "pornography"),
         ("decapi- tation", "decapitation")],
    )  # fmt: skip
    def test_a_word_broken_by_a_hyphen_at_a_line_end_is_joined(self, text: str, term: str) -> None:
        """A hyphen glued to the first piece, then whitespace, joins the pieces."""
        assert term in terms_found(DEFAULT, text)

    def test_a_spaced_dash_joins_nothing(self) -> None:
        """A dash with a space before it is punctuation between words: "mastur - bation"."""
        assert DEFAULT.scan("mastur - bation") == ()

    def test_codes_with_a_number_are_no_leetspeak(self) -> None:
        """A lone digit after a longer piece (LOI-1) is a code; among single letters it counts."""
        assert DEFAULT.scan("the LOI-1 burn") == ()
        assert terms_found(DEFAULT, "n-u-d-3") == {"nude"}


class TestRedTeamRound:
    """Issue 12, red-team round: boundary examples of each mechanism."""

    @pytest.mark.parametrize(
        ("text", "flagged"),
        [("naked eye", False), ("naked-eye", False), ("naked \u2014 eye", False),
         ("naked, eye", True), ("naked. eye", True), ("naked; eye", True), ("naked! eye", True),
         ("naked? eye", True), ("naked... eye", True), ("(naked eye:1.2)", False),
         ("cum laude", False), ("cum, laude", True), ("gore-tex", False), ("gore, tex", True),
         ("naked\neye", True), ("naked\teye", False)],
    )  # fmt: skip
    def test_only_whitespace_and_dashes_keep_an_allowed_phrase_whole(
        self, text: str, flagged: bool
    ) -> None:
        """Whitespace and dashes between an allowed phrase's words keep it; punctuation voids it."""
        assert bool(DEFAULT.scan(text)) is flagged, text

    @pytest.mark.parametrize(
        ("outer", "inner", "negated", "kept"),
        [("severe", "severe", False, False), ("mild", "severe", False, True),
         ("mild", "mild", False, False), ("severe", "mild", False, False),
         ("severe", "severe", True, True)],
    )  # fmt: skip
    def test_an_inner_match_is_dropped_exactly_when_the_outer_is_as_strict(
        self, outer: str, inner: str, negated: bool, kept: bool
    ) -> None:
        """Equal severity drops the inner match; a milder or negated outer one keeps it."""
        rules = RuleFilter([Term("blorp snazzle", severity=outer), Term("snazzle", severity=inner)])
        text = "no blorp snazzle" if negated else "blorp snazzle"
        assert ("snazzle" in {m.term for m in rules.scan(text)}) is kept

    def test_a_negated_inner_match_inside_a_negated_outer_one_is_dropped(self) -> None:
        """Both negated: the outer one stands for the inner (same category and severity)."""
        rules = RuleFilter(["blorp snazzle", "blorp"])
        assert [m.term for m in rules.scan("no blorp snazzle")] == ["blorp snazzle"]

    @pytest.mark.parametrize(
        ("text", "term"),
        [("kill my self", "kill myself"), ("kill ur self", "kill myself"),
         ("kill your self", "kill myself"), ("slit his wrists", "slit my wrists"),
         ("slitting my wrists", "slit my wrists"), ("cut your wrists", "cut my wrists"),
         ("killin myself", "kill myself"), ("boob", "boob"), ("titty", "titty"),
         ("t1tty", "titty"), ("boobies", "boob"), ("pornographers", "pornography"),
         ("nakedly", "naked"), ("vaginal", "vaginal"), ("genital", "genital"),
         ("orgasmic", "orgasmic"), ("masturbator", "masturbate"), ("fuckin", "fuck"),
         ("undressin", "undress"), ("snorted", "snorting"), ("snorts", "snorting"),
         ("nudez", "nude"), ("gang bang", "gang bang"), ("sextoys", "sextoy"),
         ("childporn", "childporn"), ("neonazi", "neonazi"), ("raped", "raped"),
         ("raping", "rape"), ("rapist", "rapist"), ("sex offender raping", "rape")],
    )  # fmt: skip
    def test_red_team_recall_gaps_are_found(self, text: str, term: str) -> None:
        """Each recall gap the red team listed is now found as its term."""
        assert term in terms_found(DEFAULT, text), text

    @pytest.mark.parametrize(
        "text",
        ["a horse snorting steam", "fireworks shooting up", "a cracked pipe leaking",
         "a crack pipe fitting", "a white power bank", "a bottle of meths",
         "the erection of the Berlin Wall", "naked tree branches", "a naked cake",
         "a naked flame", "a naked light bulb", "nude lipstick", "nude heels",
         "a nude-coloured dress", "bottomless brunch", "a silicone nipple on a baby bottle",
         "a grease nipple on a tractor axle", "a studio-cum-bedroom",
         "a kitchen-cum-dining room", "Super Bowl XXX", "XXX Corps",
         "determining the sex of a chick", "sex organs of a flower", "sexing chicks",
         "undress uniform", "Shota Imanaga pitching", "Alan Cumming", "Goring-on-Thames",
         "Hermann Göring", "a bull goring a matador", "Gorée Island", "a six-gore skirt",
         "a dog lolling its tongue", "I cut myself a slice of cake", "a Suicide Squad poster",
         "the suicide king", "high school shooting guard", "tuning the G string",
         "a sports bra", "braes of Balquhidder", "Bras d'Or Lake", "the town of Bra",
         "mica showing perfect cleavage", "embryo cleavage", "pin up the photographs",
         "a wealthy playboy on a yacht", "oilseed rape", "a rapper rapping", "brain",
         "cumin seeds", "blue tits at the feeder", "a great tit", "raps on the door"],
    )  # fmt: skip
    def test_red_team_false_alarms_are_not_blocked(self, text: str) -> None:
        """Innocent senses: nothing severe and plain (a mild term moved to mild may review)."""
        assert not [m for m in DEFAULT.scan(text) if m.severity == "severe"], text

    @pytest.mark.parametrize(
        ("text", "term"),
        [("naked woman with nude lipstick", "naked"), ("nude model, nude heels", "nude"),
         ("a woman with great tits", "tits"), ("woman showing her blue titties", "titties"),
         ("al gory scene", "gory"), ("rape field and a rape", "rape"),
         ("the sex of the chick, having sex", "sex"), ("snorting cocaine", "cocaine")],
    )  # fmt: skip
    def test_innocent_phrases_do_not_hide_real_requests(self, text: str, term: str) -> None:
        """An innocent phrase covers only itself: the real request beside it is flagged."""
        assert term in terms_found(DEFAULT, text), text

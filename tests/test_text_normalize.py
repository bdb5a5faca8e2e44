"""Tests of the offset-preserving skeleton: what each character becomes and where it came from."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from safegen.text.normalize import Transform, skeleton


@pytest.mark.parametrize(
    ("text", "chars", "transforms"),
    [
        ("NAKED", "naked", set()),
        ("ｎａｋｅｄ", "naked", {Transform.COMPATIBILITY_FOLDED}),  # fullwidth
        ("𝐧𝐚𝐤𝐞𝐝", "naked", {Transform.COMPATIBILITY_FOLDED}),  # mathematical bold
        ("𝓷𝓪𝓴𝓮𝓭", "naked", {Transform.COMPATIBILITY_FOLDED}),  # mathematical script
        ("ⓝⓐⓚⓔⓓ", "naked", {Transform.COMPATIBILITY_FOLDED}),  # circled
        ("ﬁre", "fire", {Transform.COMPATIBILITY_FOLDED}),  # ligature: one into two
        ("näkéd", "naked", {Transform.DIACRITIC_REMOVED}),
        ("n\u0301aked", "naked", {Transform.DIACRITIC_REMOVED}),  # combining mark
        ("nаkеd", "naked", {Transform.HOMOGLYPH_FOLDED}),  # Cyrillic а, е
        ("ΝΑΚΕD", "naked", {Transform.HOMOGLYPH_FOLDED}),  # Greek capitals
        ("n\u200bak\u00aded", "naked", {Transform.INVISIBLE_REMOVED}),
        ("naked\u200d", "naked", {Transform.INVISIBLE_REMOVED}),  # at the very end
    ],
)
def test_characters_fold_to_plain_latin(text: str, chars: str, transforms: set[Transform]) -> None:
    """Each trick folds to the plain letters, and says what it undid."""
    sk = skeleton(text)
    assert sk.chars == chars
    assert sk.transforms_in(0, len(sk.chars)) == transforms


def test_spans_map_back_to_the_original_text() -> None:
    """A slice of the skeleton maps to the original characters it came from."""
    text = "a ｎ\u200bａｋｅｄ man"
    sk = skeleton(text)
    start = sk.chars.index("naked")
    first, last = sk.span(start, start + 5)
    assert text[first:last] == "ｎ\u200bａｋｅｄ"


@given(st.text())
def test_any_text_folds_without_error_and_origins_are_ordered(text: str) -> None:
    """Arbitrary Unicode (surrogates, controls, emoji) folds; origins never go backwards."""
    sk = skeleton(text)
    assert len(sk.origins) == len(sk.chars) == len(sk.transforms)
    assert list(sk.origins) == sorted(sk.origins)
    assert all(0 <= i < len(text) for i in sk.origins)


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_is_only_lower_cased(text: str) -> None:
    """ASCII text keeps every character, one for one."""
    sk = skeleton(text)
    assert sk.chars == text.lower()
    assert sk.is_plain


@pytest.mark.parametrize(
    ("text", "chars", "transform"),
    [
        ("øđłħƀɨ", "odlhbi", Transform.DIACRITIC_REMOVED),  # strokes and bars
        ("ɓƈɗƙ", "bcdk", Transform.DIACRITIC_REMOVED),  # hooks
        ("ıȷ", "ij", Transform.DIACRITIC_REMOVED),  # dotless
        ("ᴀʙɴᴜᴅᴇ", "abnude", Transform.HOMOGLYPH_FOLDED),  # small capitals
        ("ɑɡɛ", "age", Transform.HOMOGLYPH_FOLDED),  # IPA letters
        ("⒜⒩⒰", "anu", Transform.COMPATIBILITY_FOLDED),  # parenthesized
        ("ⓐⒶ", "aa", Transform.COMPATIBILITY_FOLDED),  # circled
        ("🄰🅰🅐", "aaa", Transform.COMPATIBILITY_FOLDED),  # squared, negative squared/circled
        ("🇳🇺", "nu", Transform.COMPATIBILITY_FOLDED),  # regional indicators
        ("ŀ", "l", Transform.COMPATIBILITY_FOLDED),  # a letter with a middle dot stays a letter
        ("ẚ", "a", Transform.COMPATIBILITY_FOLDED),  # ... and with a half ring
        ("ϲ", "c", Transform.HOMOGLYPH_FOLDED),  # lunate sigma: c, not the o of σ
        ("ǃǀ", "!|", Transform.HOMOGLYPH_FOLDED),  # Latin clicks read by their look
    ],
)
def test_latin_look_alikes_fold_to_their_letter(
    text: str, chars: str, transform: Transform
) -> None:
    """Strokes, hooks, dotless, small capitals, IPA and every enclosed form read as the letter."""
    sk = skeleton(text)
    assert sk.chars == chars
    assert transform in sk.transforms_in(0, len(sk.chars))


@pytest.mark.parametrize(
    "char",
    [
        "\u200c",
        "\u200d",
        "\u2060",
        "\u00ad",
        "\ufe0f",
        "\U000e0101",
        "\U000e0041",
        "\U000e007f",
        "\u202e",
        "\u2066",
        "\u200f",
        "\u180b",
        "\u034f",
        "\u2064",
    ],
)
def test_invisible_characters_are_dropped(char: str) -> None:
    """Joiners, word joiner, soft hyphen, variation selectors, tags and bidi controls vanish."""
    sk = skeleton(f"nu{char}de")
    assert sk.chars == "nude"
    assert sk.transforms_in(0, 4) == {Transform.INVISIBLE_REMOVED}


@pytest.mark.parametrize(
    "dash", "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\ufe58\ufe63\uff0d\u2e3a\u2e3b\u301c"
)
def test_the_dash_family_never_reads_as_a_letter(dash: str) -> None:
    """Every dash folds to something that is no letter or digit: a separator."""
    assert not any(c.isalnum() for c in skeleton(dash).chars)


@pytest.mark.parametrize(("text", "kept"), [("色情", "色情"), ("裸体", "裸体"), ("🔥", "🔥")])
def test_other_scripts_and_emoji_are_not_transliterated(text: str, kept: str) -> None:
    """CJK and emoji stay themselves: transliterating them would invent Latin words."""
    assert skeleton(text).chars == kept


def test_look_alikes_from_other_scripts_are_a_documented_limit() -> None:
    """Lisu letters are not folded: transliteration gives their sound, not their look."""
    assert skeleton("ꓮꓢ").chars == "ꓮꓢ".casefold()


@given(st.text(alphabet="aé\u200bⓐ ｂ\u0301ﬁ𝐜"), st.data())
def test_transforms_in_is_the_union_over_the_slice(text: str, data: st.DataObject) -> None:
    """The binary-search answer equals walking the slice, for any slice."""
    sk = skeleton(text)
    start = data.draw(st.integers(0, len(sk.chars)))
    end = data.draw(st.integers(start, len(sk.chars)))
    assert sk.transforms_in(start, end) == frozenset().union(*sk.transforms[start:end])


@given(st.text(alphabet=st.sampled_from("aB -é\u200bⓐ🅰ø\u0301ﬁ色\u00ad")))
def test_runs_of_ascii_fold_like_each_character_alone(text: str) -> None:
    """Folding ASCII runs at once gives what folding character by character gives."""
    from safegen.text.normalize import _fold

    chars, origins, transforms = [], [], []
    pending: frozenset[Transform] = frozenset()
    for index, char in enumerate(text):
        folded, undone = _fold(char) if not char.isascii() else (char.lower(), frozenset())
        if not folded:
            pending |= undone
            continue
        chars.append(folded)
        origins += [index] * len(folded)
        transforms += [undone | pending] * len(folded)
        pending = frozenset()
    if pending and transforms:
        transforms[-1] |= pending
    sk = skeleton(text)
    assert (sk.chars, list(sk.origins), list(sk.transforms)) == (
        "".join(chars),
        origins,
        transforms,
    )


@pytest.mark.parametrize(
    ("text", "chars"),
    [
        ("seҳ", "sex"),  # CYRILLIC SMALL LETTER HA WITH DESCENDER
        ("seӽ", "sex"),  # HA WITH HOOK
        ("seӿ", "sex"),  # HA WITH STROKE
        ("ҫum", "cum"),  # ES WITH DESCENDER
        ("naҝed", "naked"),  # KA WITH VERTICAL STROKE
        ("naҟed", "naked"),  # KA WITH STROKE
        ("naҡed", "naked"),  # BASHKIR KA: a qualifier before the base name
        ("naӄed", "naked"),  # KA WITH HOOK
        ("NAӃED", "naked"),  # capital KA WITH HOOK
        ("ѵagina", "vagina"),  # IZHITSA, from Unicode's confusables
        ("ѡ", "w"),  # CYRILLIC OMEGA, from Unicode's confusables
        ("օ", "o"),  # ARMENIAN SMALL LETTER OH
        ("Ꭺ", "a"),  # CHEROKEE LETTER GO
        ("ⲣ", "p"),  # COPTIC SMALL LETTER RO
        ("ά", "a"),  # Greek tonos: NFKD, then the look
    ],
)
def test_derived_script_look_alikes_fold(text: str, chars: str) -> None:
    """Cyrillic letters with descenders, hooks, strokes, and other scripts' look-alikes fold."""
    sk = skeleton(text)
    assert sk.chars == chars
    assert Transform.HOMOGLYPH_FOLDED in sk.transforms_in(0, len(sk.chars))
    assert sk.origins == tuple(range(len(text)))


@pytest.mark.parametrize("text", ["ԑ", "ꙅ", "ы", "ъ", "б"])
def test_mirrored_letters_and_unlike_ones_stay_foreign(text: str) -> None:
    """A reversed letter is not its base, and a letter unlike any Latin one is left alone."""
    assert skeleton(text).chars == text


@pytest.mark.parametrize("sign", "×⨯✕✖╳⤫⤬☓")
def test_a_times_sign_by_letters_is_an_x(sign: str) -> None:
    """Between letters, or by a letter across a space, a times sign reads as the letter x."""
    assert skeleton(f"se{sign} tape").chars == "sex tape"
    assert skeleton(f"s e {sign} y").chars == "s e x y"
    assert skeleton(f"\u200b{sign}\u200bo").chars == "xo"
    assert skeleton(f"(se{sign}:1.3)").chars == "(sex:1.3)"  # a weight's digit is not next to it


@pytest.mark.parametrize("sign", "×⨯✕✖╳⤫⤬☓")
@pytest.mark.parametrize(
    "template", ["1920{}1080", "4{}4", "a 2{}3 grid", "4{}nude", "2{} faster", "{}", " {} "]
)
def test_a_times_sign_by_digits_or_alone_stays_a_sign(sign: str, template: str) -> None:
    """By a digit, or with no letter near, a times sign is kept as the sign, not an x."""
    text = template.format(sign)
    assert skeleton(text).chars == text.lower()

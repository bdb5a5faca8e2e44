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

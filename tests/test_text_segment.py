"""Tests of splitting text for service limits."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from safegen.text.segment import split


@given(st.text(), st.integers(4, 64), st.one_of(st.none(), st.integers(1, 40)))
def test_slices_cover_the_text_in_order_within_both_limits(
    text: str, max_bytes: int, max_chars: int | None
) -> None:
    """Consecutive, non-empty, exact cover; each within the byte and character limits."""
    slices = split(text, max_bytes=max_bytes, max_chars=max_chars)
    assert "".join(text[a:b] for a, b in slices) == text
    assert all(a < b for a, b in slices)
    assert all(b == c for (_, b), (c, _) in itertools.pairwise(slices))
    for a, b in slices:
        assert len(text[a:b].encode("utf-8", "replace")) <= max_bytes
        if max_chars is not None:
            assert b - a <= max_chars


def test_words_are_not_cut_when_they_fit() -> None:
    """Slices end after whitespace, so each word stays whole."""
    text = "alpha beta gamma delta epsilon"
    pieces = [text[a:b] for a, b in split(text, max_bytes=12)]
    assert pieces == ["alpha beta ", "gamma delta ", "epsilon"]


def test_multibyte_characters_count_in_bytes() -> None:
    """Five two-byte letters fill ten bytes."""
    assert [b - a for a, b in split("ééééééé", max_bytes=10)] == [5, 2]


def test_a_limit_below_one_character_is_refused() -> None:
    """Four bytes is the least that fits any character."""
    with pytest.raises(ValueError, match="max_bytes"):
        split("abc", max_bytes=3)

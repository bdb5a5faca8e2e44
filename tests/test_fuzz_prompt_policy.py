"""Fuzzing the ``[prompts]`` section: any data is a policy or a PolicyError naming its place."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safegen import Action, ModerationPolicy, PolicyError
from safegen.prompt_policy import PromptPolicy

_KEYS = [
    "on_failure",
    "fail_open",
    "allow",
    "remove",
    "block_at",
    "review_at",
    "labels",
    "classes",
    "categories",
    "on_failur",
]
_CATEGORY_KEYS = ["action", "mild", "terms", "mild_terms", "mlid"]
_WORDS = ["block", "review", "allow", "BLOCK", "", "sexual", "meth", "acme", "!!", "HATE_SPEECH"]

# What a policy file (TOML) or a caller's dict can hold, and some things neither should.
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(_WORDS),
    st.text(max_size=8),
    st.sampled_from([Action.BLOCK, Action.ALLOW, b"bytes", object()]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from([*_CATEGORY_KEYS, *_WORDS]), inner, max_size=3),
    ),
    max_leaves=12,
)
_tables = st.dictionaries(st.sampled_from(_KEYS), _values, max_size=5)
_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _refusal(table: Any) -> tuple[PromptPolicy | None, str]:
    """Build the section, or return why not (only a PolicyError may say so)."""
    try:
        return PromptPolicy.from_mapping(table), ""
    except PolicyError as error:
        return None, str(error)


def _check(table: Any) -> None:
    prompts, refusal = _refusal(table)
    if prompts is None:
        assert refusal.startswith("prompts")
        return
    # Whatever was accepted is a valid section: it round-trips, hashes, and judges.
    assert PromptPolicy.from_mapping(prompts.to_mapping()) == prompts
    hash(prompts)
    judged = prompts.judge_score("INSULT", 50.0)
    assert isinstance(judged.action, Action)
    assert all(math.isfinite(t.block_at) for t in prompts.labels.values() if t.block_at)


@_FUZZ
@given(_tables)
def test_any_prompts_table_is_a_section_or_a_located_policy_error(table: dict[str, Any]) -> None:
    """No other exception escapes from_mapping, and what it accepts round-trips."""
    _check(table)


@_FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["sexual", "drugs", "brand", "", "sexaul"]),
        st.one_of(_values, st.dictionaries(st.sampled_from(_CATEGORY_KEYS), _values)),
        max_size=3,
    )
)
def test_any_categories_table_is_refused_by_place(categories: dict[str, Any]) -> None:
    """Category tables of any shape: accepted, or a PolicyError under prompts.categories."""
    _check({"categories": categories})


@_FUZZ
@given(_values)
def test_any_value_as_the_section_inside_a_policy(value: Any) -> None:
    """A policy's ``prompts`` of any kind: a section or a PolicyError naming prompts."""
    refusal = ""
    try:
        ModerationPolicy.from_mapping({"prompts": value})
    except PolicyError as error:
        refusal = str(error)
    assert refusal == "" or refusal.startswith("prompts")

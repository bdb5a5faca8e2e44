"""Fuzzing the policy's inputs: a policy, a decision or a PolicyError, never anything else.

Any file, any data and any report give a policy, a decision or a PolicyError (a SafegenError),
never a bare third-party exception, a crash or a RecursionError.

Each test states how many inputs it tries (hypothesis's max_examples), so the total is known.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safegen import (
    ContentType,
    ModerationLabel,
    ModerationPolicy,
    PolicyDecision,
    PolicyError,
)
from tests.strategies import CATEGORIES, policies, reported_places, scores

FILES_TRIED = 300
MAPPINGS_TRIED = 300
REPORTS_TRIED = 200

_SETTINGS = ["block_at", "review_at", "labels", "exclude", "content_types", "not_evaluated"]
_NAMES = [c.name for c in CATEGORIES] + ["Animated", "Illustrated", "min_confidence", "action"]


def _toml_like(body: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    return body.map(lambda text: text.encode("utf-8", "surrogatepass"))


_lines = st.lists(
    st.one_of(
        st.builds(
            "{} = {}".format,
            st.sampled_from(_SETTINGS),
            st.one_of(
                st.integers(-10, 200).map(str),
                st.sampled_from(['"block"', '"review"', "nan", "inf", "[]", "{}", '"x"']),
                st.lists(st.sampled_from(_NAMES), max_size=3).map(
                    lambda names: "[" + ", ".join(f'"{n}"' for n in names) + "]"
                ),
            ),
        ),
        st.sampled_from(_NAMES).map(lambda n: f'[labels]\n"{n}" = 60'),
        st.sampled_from(_NAMES).map(lambda n: f"[content_types.{n}]\nmin_confidence = 80"),
        st.integers(1, 3000).map(lambda depth: "a = " + "[" * depth + "]" * depth),
        st.integers(1, 3000).map(lambda depth: "a = " + "{b = " * depth + "1" + "}" * depth),
    ),
    max_size=6,
).map("\n".join)

_files = st.one_of(
    st.binary(max_size=2000),
    _toml_like(_lines),
    _toml_like(st.text(max_size=300)),
    st.binary(max_size=200).map(lambda junk: b"block_at = 60\n" + junk),
    st.sampled_from([b"\xff\xfe", b"\xef\xbb\xbfblock_at = 60", b'a = "\xc3\x28"']),
)


@settings(max_examples=FILES_TRIED, suppress_health_check=[HealthCheck.too_slow])
@given(_files)
def test_any_bytes_as_a_policy_file_give_a_policy_or_a_policy_error(raw: bytes) -> None:
    """Arbitrary bytes, valid TOML or not, UTF-8 or not, deep or not: a policy or PolicyError."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.toml"
        path.write_bytes(raw)
        try:
            policy = ModerationPolicy.from_toml(path)
        except PolicyError as e:
            error: PolicyError | None = e
        else:
            error = None
            assert ModerationPolicy.from_mapping(policy.to_mapping()) == policy
        assert error is None or "fuzz.toml" in str(error)


_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(_NAMES),
    st.binary(max_size=4),
)
_data: st.SearchStrategy[Any] = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(_NAMES + _SETTINGS), st.text(max_size=8)), inner, max_size=4
        ),
    ),
    max_leaves=20,
)
_mappings = st.dictionaries(st.sampled_from(_SETTINGS), _data, max_size=6)


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@settings(max_examples=MAPPINGS_TRIED, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_mappings, _data, st.integers(10, 100_000).map(lambda d: {"exclude": _nested(d)})))
def test_any_data_as_a_policy_mapping_gives_a_policy_or_a_policy_error(data: Any) -> None:
    """Any shape of data, however deep or wrongly typed, is a policy or a PolicyError."""
    try:
        policy: ModerationPolicy | None = ModerationPolicy.from_mapping(data)
    except PolicyError as e:
        message, policy = str(e), None
    else:
        message = ""
    assert policy is None or isinstance(policy, ModerationPolicy)
    assert len(message) < 2000  # values are shown briefly in messages, never whole


_names = st.one_of(
    st.sampled_from([c.name for c in CATEGORIES]),
    st.text(min_size=1, max_size=12).filter(str.strip),
)


@settings(max_examples=REPORTS_TRIED, suppress_health_check=[HealthCheck.too_slow])
@given(
    policies(),
    st.lists(st.tuples(_names, scores, reported_places), max_size=12),
    st.lists(st.builds(ContentType, st.sampled_from(["Animated", "Photo"]), scores), max_size=2),
)
def test_any_report_gets_a_decision(
    policy: ModerationPolicy,
    reports: list[tuple[str, float, tuple[str | None, int | None]]],
    types: list[ContentType],
) -> None:
    """Any names under any parents and levels (chains, cycles, misplacements) get a decision."""
    labels = [ModerationLabel(name, c, parent=p, level=lv) for name, c, (p, lv) in reports]
    decision = policy.evaluate(labels, types)
    assert isinstance(decision, PolicyDecision)
    assert decision.to_dict()["action"] == decision.action.value

"""Tests for the prompt section of a policy: reading, validation, judging and round trips."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from safegen import Action, ModerationPolicy, PolicyError, Thresholds
from safegen.prompt_policy import (
    SHIPPED_CATEGORIES,
    PromptCategory,
    PromptJudgement,
    PromptPolicy,
)
from safegen.text import RuleMatch
from tests.strategies import prompt_actions, prompt_policy_tables, scores, with_a_label_lowered

SPEC_EXAMPLE = """
block_at = 60

[prompts]
on_failure = "review"
fail_open = ["comprehend-toxicity"]
allow = ["naked eye"]
remove = ["meth"]
block_at = 50
review_at = 30

[prompts.labels]
HATE_SPEECH = 40
PROFANITY = { block_at = 90, review_at = 60 }

[prompts.categories]
sexual = "block"
suggestive = "review"
drugs = { action = "block", mild = "review" }
hate = "allow"
brand = { action = "review", terms = ["acme"], mild_terms = ["contoso"] }
"""


def _spec_policy(tmp_path: Path) -> ModerationPolicy:
    path = tmp_path / "policy.toml"
    path.write_text(SPEC_EXAMPLE, encoding="utf-8")
    return ModerationPolicy.from_toml(path)


def _match(category: str, severity: str = "severe", *, negated: bool = False) -> RuleMatch:
    return RuleMatch("x", category, 0, 1, "x", severity=severity, negated=negated)


# -- reading the agreed format ----------------------------------------------------------------


def test_policy_file_prompt_section_is_read(tmp_path: Path) -> None:
    """The spec's example file reads into the prompt section, every setting in place."""
    prompts = _spec_policy(tmp_path).prompts
    assert prompts.on_failure is Action.REVIEW
    assert prompts.fail_open == {"comprehend-toxicity"}
    assert prompts.allow == ("naked eye",)
    assert prompts.remove == ("meth",)
    assert (prompts.block_at, prompts.review_at) == (50.0, 30.0)
    assert prompts.labels["PROFANITY"] == Thresholds(block_at=90, review_at=60)
    assert prompts.categories["drugs"] == PromptCategory(action="block", mild="review")
    assert prompts.categories["brand"].terms == ("acme",)
    assert prompts.categories["brand"].mild_terms == ("contoso",)


def test_absent_section_means_the_defaults() -> None:
    """A policy without ``[prompts]`` has the default section and writes none back."""
    policy = ModerationPolicy.from_mapping({"block_at": 40})
    assert policy.prompts == PromptPolicy()
    assert "prompts" not in policy.to_mapping()


def test_spec_example_round_trips(tmp_path: Path) -> None:
    """The spec's example is written back to an equal policy."""
    policy = _spec_policy(tmp_path)
    assert ModerationPolicy.from_mapping(policy.to_mapping()) == policy
    assert hash(ModerationPolicy.from_mapping(policy.to_mapping())) == hash(policy)


@given(prompt_policy_tables())
def test_round_trip_property(table: dict[str, Any]) -> None:
    """from_mapping(to_mapping(p)) == p for any valid prompt section, inside a policy too."""
    prompts = PromptPolicy.from_mapping(table)
    assert PromptPolicy.from_mapping(prompts.to_mapping()) == prompts
    policy = ModerationPolicy(prompts=prompts)
    assert ModerationPolicy.from_mapping(policy.to_mapping()) == policy


def test_a_section_changes_equality() -> None:
    """Two policies differing only in their prompt sections are not equal."""
    assert ModerationPolicy(prompts={"review_at": 10}) != ModerationPolicy()


# -- validation: the place, and a suggestion -----------------------------------------------------


@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        ({"on_failur": "review"}, r"^prompts: unknown setting 'on_failur'; did you mean 'on_fail"),
        (
            {"categories": {"drugs": {"mlid": "review"}}},
            r"^prompts\.categories\.drugs: unknown setting 'mlid'; did you mean 'mild'\?",
        ),
        (
            {"categories": {"drugs": {"mild": "blok"}}},
            r'^prompts\.categories\.drugs\.mild: must be "block", "review" or "allow"',
        ),
        ({"categories": {"sexaul": "block"}}, r"^prompts\.categories\.sexaul: .*'sexual'\?"),
        ({"categories": {"brand": "review"}}, r"^prompts\.categories\.brand: .*needs terms"),
        ({"categories": {"brand": {"terms": ["!!"]}}}, r"^prompts\.categories\.brand\.terms\[0\]"),
        ({"categories": {"x": {"terms": "acme"}}}, None),  # a lone string is a list of one
        ({"remove": ["metth"]}, r"^prompts\.remove\[0\]: 'metth' .*did you mean 'meth'\?"),
        ({"allow": ["..."]}, r"^prompts\.allow\[0\]: .*no letters"),
        ({"allow": [""]}, r"^prompts\.allow\[0\]: must be a non-empty string"),
        ({"labels": {"HATE_SPEACH": 40}}, r'^prompts\.labels\."HATE_SPEACH": .*\'HATE_SPEECH\'\?'),
        ({"labels": {"hate_speech": 40}}, r"did you mean 'HATE_SPEECH'\?"),
        ({"classes": {"TOXIC": {"block_at": 101}}}, r'^prompts\.classes\."TOXIC": block_at: '),
        ({"classes": {"TOXIC": {"blok_at": 1}}}, r"did you mean 'block_at'\?"),
        # A misspelt or shortened Comprehend label never passes as a custom class.
        ({"labels": {"SEXAUL": 5}}, r"not a Comprehend toxicity label; did you mean 'SEXUAL'\?"),
        ({"labels": {"VIOLENCE": 5}}, r"did you mean 'VIOLENCE_OR_THREAT'\?"),
        ({"labels": {"HATE": 5}}, r"did you mean 'HATE_SPEECH'\?"),
        ({"labels": {"THREAT": 5}}, r"did you mean 'VIOLENCE_OR_THREAT'\?"),
        ({"labels": {"TOXIC": 5}}, r"did you mean 'TOXICITY'\?"),
        ({"labels": {"HARASSMENT": 5}}, r"did you mean 'HARASSMENT_OR_ABUSE'\?"),
        (
            {"labels": {"brand-unsafe": 5}},
            r"custom classifier's class goes in \[prompts\.classes\]",
        ),
        ({"block_at": 100.5}, r"^prompts\.block_at: must be a number from 0 to 100"),
        ({"block_at": True}, r"^prompts\.block_at: "),
        ({"review_at": -1}, r"^prompts\.review_at: "),
        ({"block_at": 40, "review_at": 41}, r"^prompts\.review_at: 41 must not be above"),
        ({"on_failure": "allow"}, r"^prompts\.on_failure: .*fail_open"),
        ({"fail_open": [3]}, r"^prompts\.fail_open\[0\]: "),
        ({"categories": []}, r"^prompts\.categories: must be a table"),
    ],
)
def test_validation_names_the_place(prompts: dict[str, Any], message: str | None) -> None:
    """A malformed setting is a PolicyError naming its place, with a suggestion when close."""
    if message is None:
        ModerationPolicy.from_mapping({"prompts": prompts})
        return
    with pytest.raises(PolicyError, match=message):
        ModerationPolicy.from_mapping({"prompts": prompts})


def test_file_errors_name_the_file_and_the_place(tmp_path: Path) -> None:
    """From a file, the message names the file, then the place in it."""
    path = tmp_path / "p.toml"
    path.write_text('[prompts.categories]\ndrugs = { mild = "nope" }\n', encoding="utf-8")
    with pytest.raises(PolicyError, match=r"p\.toml: prompts\.categories\.drugs\.mild: "):
        ModerationPolicy.from_toml(path)


def test_unknown_top_level_setting_suggests_prompts() -> None:
    """A misspelt section name is refused with the right one suggested."""
    with pytest.raises(PolicyError, match=r"did you mean 'prompts'\?"):
        ModerationPolicy.from_mapping({"prompt": {}})


def test_evolve_checks_again() -> None:
    """attrs.evolve runs the same checks as the constructor."""
    with pytest.raises(PolicyError, match=r"^prompts\.block_at: "):
        attrs.evolve(PromptPolicy(), block_at=-3)


# -- judging terms ----------------------------------------------------------------------------


def test_defaults_block_severe_and_review_mild() -> None:
    """A category not configured: severe terms block, mild terms review, each saying why."""
    policy = PromptPolicy()
    assert policy.judge_term("sexual", "severe") == PromptJudgement(
        Action.BLOCK, "default: severe terms block"
    )
    assert policy.judge_term("sexual", "mild") == PromptJudgement(
        Action.REVIEW, "default: mild terms review"
    )


def test_category_settings_decide_and_are_named(tmp_path: Path) -> None:
    """Each configured category's action is the decision, and the setting is the reason."""
    prompts = _spec_policy(tmp_path).prompts
    assert str(prompts.judge_term("drugs", "severe")) == "block (prompts.categories.drugs.action)"
    assert str(prompts.judge_term("drugs", "mild")) == "review (prompts.categories.drugs.mild)"
    assert str(prompts.judge_term("hate", "severe")) == "allow (prompts.categories.hate)"
    assert str(prompts.judge_term("brand", "mild")) == "review (prompts.categories.brand)"


@given(st.sampled_from(SHIPPED_CATEGORIES), prompt_actions, st.sampled_from(["mild", "severe"]))
def test_negated_match_never_blocks(category: str, action: str, severity: str) -> None:
    """A negated match calls for at most REVIEW, whatever its category's action."""
    policy = PromptPolicy(categories={category: {"action": action, "mild": action}})
    judged = policy.judge_match(_match(category, severity, negated=True))
    assert judged.action is not Action.BLOCK
    plain = policy.judge_match(_match(category, severity))
    assert judged.action is (Action.REVIEW if plain.action is Action.BLOCK else plain.action)


_ORDER = ["allow", "review", "block"]


@given(
    prompt_policy_tables(),
    st.sampled_from([*SHIPPED_CATEGORIES, "brand"]),
    st.sampled_from(["action", "mild"]),
    st.sampled_from(["mild", "severe"]),
    st.booleans(),
)
def test_raising_an_action_never_loosens_a_judgement(
    table: dict[str, Any], category: str, setting: str, severity: str, negated: bool
) -> None:
    """Raising a category's action (or its mild action) never judges any match less strictly."""
    policy = PromptPolicy.from_mapping(table)
    current = policy.category(category)
    if category not in SHIPPED_CATEGORIES and category not in policy.categories:
        current = PromptCategory(terms=["blorp"])  # one's own category needs terms
    before_severe, _ = current.decide("severe", "")
    before_mild, _ = current.decide("mild", "")
    now = (before_severe if setting == "action" else before_mild).value
    for higher in _ORDER[_ORDER.index(now) :]:
        changed = attrs.evolve(current, **{setting: higher})
        if setting == "action" and current.mild is None and current.action is None:
            # Setting action alone also sets mild terms' action: keep them where they were.
            changed = attrs.evolve(changed, mild=before_mild)
        raised = attrs.evolve(policy, categories={**policy.categories, category: changed})
        for sev in ("mild", "severe"):
            old = policy.judge_term(category, sev, negated=negated).action
            new = raised.judge_term(category, sev, negated=negated).action
            assert new.severity >= old.severity


# -- judging classifier scores ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "score", "action", "source"),
    [
        ("HATE_SPEECH", 40.0, Action.BLOCK, 'prompts.labels."HATE_SPEECH".block_at'),
        ("HATE_SPEECH", 39.99, Action.REVIEW, "prompts.review_at"),
        ("HATE_SPEECH", 30.0, Action.REVIEW, "prompts.review_at"),
        ("HATE_SPEECH", 29.99, Action.ALLOW, "below prompts.review_at"),
        ("PROFANITY", 90.0, Action.BLOCK, 'prompts.labels."PROFANITY".block_at'),
        ("PROFANITY", 60.0, Action.REVIEW, 'prompts.labels."PROFANITY".review_at'),
        ("PROFANITY", 59.99, Action.ALLOW, 'below prompts.labels."PROFANITY".review_at'),
        ("INSULT", 50.0, Action.BLOCK, "prompts.block_at"),
        ("INSULT", 49.99, Action.REVIEW, "prompts.review_at"),
        ("TOXIC", 100.0, Action.BLOCK, "prompts.block_at"),
        ("TOXIC", 0.0, Action.ALLOW, "below prompts.review_at"),
    ],
)
def test_scores_exactly_at_thresholds(
    tmp_path: Path, label: str, score: float, action: Action, source: str
) -> None:
    """A score exactly at a threshold meets it; just below does not; the setting is named."""
    judged = _spec_policy(tmp_path).prompts.judge_score(label, score)
    assert (judged.action, judged.source) == (action, source)


def test_inherited_review_above_a_labels_block_leaves_no_band() -> None:
    """A default review_at above a label's own block_at leaves that label no review band."""
    policy = PromptPolicy(review_at=40, labels={"INSULT": 20})
    t = policy.thresholds_for("INSULT")
    assert (t.block_at, t.review_at, t.review_source) == (
        20.0,
        20.0,
        'prompts.labels."INSULT".block_at',
    )
    assert policy.judge_score("INSULT", 19.0).action is Action.ALLOW


@given(prompt_policy_tables(), st.sampled_from(["HATE_SPEECH", "INSULT", "TOXIC"]), scores, scores)
def test_lowering_a_threshold_never_loosens(
    table: dict[str, Any], label: str, score: float, lower: float
) -> None:
    """Lowering a label's block_at or review_at never judges a score less strictly."""
    policy = PromptPolicy.from_mapping(table)
    before = policy.judge_score(label, score).action
    tighter = with_a_label_lowered(policy, label, lower)
    for stricter in tighter:
        assert stricter.judge_score(label, score).action.severity >= before.severity


def test_preset_is_the_shipped_policy_by_name() -> None:
    """ModerationPolicy.preset(name) is presets.load(name); an unknown name suggests one."""
    from safegen import presets

    for name in presets.names():
        assert ModerationPolicy.preset(name) == presets.load(name)
    with pytest.raises(PolicyError, match="did you mean 'general'"):
        ModerationPolicy.preset("genral")

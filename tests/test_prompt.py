"""Tests of PromptModerator: strategies, fail-closed semantics, bad input, and logging."""

from __future__ import annotations

import copy
import logging
import math
import os
import threading
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from botocore.stub import Stubber
from hypothesis import given, settings
from hypothesis import strategies as st

from safegen import Action, ConfigurationError, InvalidPromptError, RuleFilter
from safegen.aws import ComprehendToxicity
from safegen.errors import MalformedResponseError, ThrottledError
from safegen.ports import TextClassifier
from safegen.prompt import CheckStatus, PromptFinding, PromptModerator, TextReport
from safegen.prompt_policy import PromptPolicy
from safegen.text import Term
from tests.aws import fake_client, toxic_result
from tests.strategies import (
    negated_prefixes,
    negated_prompt_texts,
    nested_prompt_terms,
    prompt_policy_tables,
    prompt_terms,
    prompt_texts,
    scores,
    with_a_label_lowered,
)

RULES = RuleFilter(["gore", "naked"])


class Scripted:
    """A classifier that returns a fixed report (or raises), and remembers what it saw."""

    def __init__(
        self,
        name: str,
        action: Action | None = None,
        *,
        error: Exception | None = None,
        barrier: threading.Barrier | None = None,
    ) -> None:
        self.name = name
        self.action = action
        self.error = error
        self.barrier = barrier
        self.seen: list[str] = []

    def classify(self, text: str) -> TextReport:
        self.seen.append(text)
        if self.barrier is not None:
            self.barrier.wait(timeout=10)  # only passes if every check runs at once
        if self.error is not None:
            raise self.error
        if self.action is None:
            return TextReport(notes=("scripted",))
        return TextReport((PromptFinding(self.name, "TOXIC", 90.0, self.action, span=(0, 3)),))


def test_the_scripted_classifier_satisfies_the_port() -> None:
    """Backends plug in structurally: no base class to inherit."""
    assert isinstance(Scripted("x"), TextClassifier)


def test_a_rule_match_blocks_and_says_where() -> None:
    """The finding carries the term, category, span and the full match with its transforms."""
    verdict = PromptModerator(rules=RULES).moderate("a g0r3 scene")
    assert verdict.action is Action.BLOCK
    (finding,) = verdict.findings
    assert (finding.source, finding.label, finding.span) == ("rules", "gore", (2, 6))
    assert finding.match is not None
    assert [c.name for c in verdict.checks] == ["rules"]
    assert verdict.checks[0].status is CheckStatus.OK


def test_a_clean_prompt_is_allowed_with_every_check_recorded() -> None:
    """ALLOW, with each check OK, timed and with its notes."""
    classifier = Scripted("ml")
    verdict = PromptModerator(rules=RULES, classifiers=[classifier]).moderate("a quiet lake")
    assert verdict.action is Action.ALLOW
    assert [(c.name, c.status) for c in verdict.checks] == [
        ("rules", CheckStatus.OK),
        ("ml", CheckStatus.OK),
    ]
    assert all(c.seconds >= 0 for c in verdict.checks)
    assert verdict.checks[1].notes == ("scripted",)


def test_cascade_skips_the_paid_classifier_when_rules_block() -> None:
    """Rules first; a rule block means the classifier is never called."""
    classifier = Scripted("ml", Action.BLOCK)
    verdict = PromptModerator(rules=RULES, classifiers=[classifier]).moderate("gore")
    assert classifier.seen == []
    assert verdict.checks[1].status is CheckStatus.SKIPPED


def test_cascade_runs_the_classifier_when_rules_only_review() -> None:
    """A REVIEW from the rules does not settle it: the classifier may still block."""
    classifier = Scripted("ml", Action.BLOCK)
    moderator = PromptModerator(rules=RULES, classifiers=[classifier], rule_action=Action.REVIEW)
    verdict = moderator.moderate("gore")
    assert classifier.seen == ["gore"]
    assert verdict.action is Action.BLOCK


def test_parallel_runs_every_check_at_once() -> None:
    """Three classifiers wait on one barrier with the rules: only concurrency lets them pass."""
    barrier = threading.Barrier(3)
    classifiers = [Scripted(f"ml{i}", barrier=barrier) for i in range(3)]
    moderator = PromptModerator(rules=RULES, classifiers=classifiers, strategy="parallel")
    verdict = moderator.moderate("gore")
    assert [c.status for c in verdict.checks] == [CheckStatus.OK] * 4
    assert verdict.action is Action.BLOCK  # the rules' finding, found while the others ran


def test_a_failed_check_fails_closed() -> None:
    """A classifier that cannot answer makes the verdict BLOCK and says which and why."""
    failing = Scripted(
        "ml",
        error=ThrottledError(
            "slow down",
            service="comprehend",
            operation="DetectToxicContent",
            code="ThrottlingException",
        ),
    )
    verdict = PromptModerator(rules=RULES, classifiers=[failing]).moderate("a quiet lake")
    assert verdict.action is Action.BLOCK
    (failed,) = verdict.failed
    assert failed.name == "ml"
    assert "ThrottlingException" in (failed.error or "")
    assert failed.fail_open is False


def test_fail_open_is_an_explicit_per_check_choice() -> None:
    """Named in fail_open, the failed check is recorded but does not block."""
    failing = Scripted("ml", error=RuntimeError("boom"))
    moderator = PromptModerator(rules=RULES, classifiers=[failing], fail_open={"ml"})
    verdict = moderator.moderate("a quiet lake")
    assert verdict.action is Action.ALLOW
    assert verdict.failed[0].fail_open is True
    assert verdict.failed[0].error == "RuntimeError(...)"  # the class, never the message


def test_on_failure_can_send_to_review_but_never_allow() -> None:
    """REVIEW on failure is a choice; ALLOW is refused (that is what fail_open names)."""
    failing = Scripted("ml", error=RuntimeError("boom"))
    moderator = PromptModerator(classifiers=[failing], on_failure=Action.REVIEW)
    assert moderator.moderate("hi").action is Action.REVIEW
    with pytest.raises(ConfigurationError, match="fail open"):
        PromptModerator(classifiers=[failing], on_failure=Action.ALLOW)


def test_a_failing_check_is_logged_without_the_prompt(caplog: pytest.LogCaptureFixture) -> None:
    """The warning names the check and the error code, never the prompt text."""
    failing = Scripted("ml", error=RuntimeError("the prompt was: secret naked words"))
    with caplog.at_level(logging.DEBUG, logger="safegen"):
        PromptModerator(classifiers=[failing]).moderate("secret naked words")
    assert caplog.records
    for record in caplog.records:
        assert "secret" not in record.getMessage()
    assert "check ml failed (RuntimeError)" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "eventually"}, "strategy"),
        ({"fail_open": {"nope"}}, "no check named"),
        ({"rule_action": Action.ALLOW}, "rule_action"),
        ({"max_chars": 0}, "max_chars"),
        ({"classifiers": [Scripted("rules")]}, "distinct names"),
    ],
)
def test_contradictory_configuration_is_refused(kwargs: dict[str, Any], message: str) -> None:
    """Mistakes in setting up moderation are ConfigurationErrors at construction."""
    with pytest.raises(ConfigurationError, match=message):
        PromptModerator(rules=RULES, **kwargs)


class TestBadInput:
    @pytest.mark.parametrize("prompt", ["", "   ", "\n\t", "\x00\x07 control", "🙂🙂🙂"])
    def test_empty_and_odd_prompts_get_a_verdict(self, prompt: str) -> None:
        """Nothing to flag is ALLOW, with every check recorded as run."""
        verdict = PromptModerator(rules=RULES, classifiers=[Scripted("ml")]).moderate(prompt)
        assert verdict.action is Action.ALLOW
        assert all(c.status is CheckStatus.OK for c in verdict.checks)

    def test_a_prompt_over_the_limit_is_refused_naming_it(self) -> None:
        """A megabyte of text is an InvalidPromptError that states the limit."""
        with pytest.raises(
            InvalidPromptError, match="1,000,000 characters is over the limit of 10,000"
        ):
            PromptModerator(rules=RULES).moderate("a" * 1_000_000)

    def test_a_non_string_is_refused(self) -> None:
        """Bytes are not a prompt."""
        with pytest.raises(InvalidPromptError, match="expected a string, got bytes"):
            PromptModerator(rules=RULES).moderate(b"gore")  # type: ignore[arg-type]

    def test_lone_surrogates_are_replaced_before_a_service_sees_them(self) -> None:
        """A classifier receives sendable UTF-8; the rules still see the original."""
        classifier = Scripted("ml")
        moderator = PromptModerator(rules=RULES, classifiers=[classifier], strategy="parallel")
        verdict = moderator.moderate("a \ud800lake")
        assert classifier.seen == ["a \ufffdlake"]
        assert verdict.action is Action.ALLOW
        moderator.moderate("g\ud800ore")
        assert classifier.seen[-1] == "g\ufffdore"

    @given(st.text(max_size=300))
    def test_any_text_gets_a_verdict(self, prompt: str) -> None:
        """Arbitrary Unicode never crashes moderation."""
        verdict = PromptModerator(rules=RuleFilter.default()).moderate(prompt)
        assert verdict.action in Action


@pytest.fixture
def toxicity() -> Iterator[tuple[ComprehendToxicity, Stubber]]:
    client = fake_client("comprehend")
    with Stubber(client) as stubber:
        yield ComprehendToxicity(client), stubber


def test_end_to_end_with_comprehend_throttled_fails_closed(
    toxicity: tuple[ComprehendToxicity, Stubber],
) -> None:
    """Comprehend throttled (past retries): BLOCK, the failure names the AWS code."""
    check, stubber = toxicity
    stubber.add_client_error("detect_toxic_content", "ThrottlingException", "Rate exceeded", 400)
    verdict = PromptModerator(rules=RuleFilter.default(), classifiers=[check]).moderate("a lake")
    assert verdict.action is Action.BLOCK
    assert verdict.failed[0].name == "comprehend-toxicity"
    assert "ThrottlingException" in (verdict.failed[0].error or "")


def test_end_to_end_with_comprehend_allows_a_clean_prompt(
    toxicity: tuple[ComprehendToxicity, Stubber],
) -> None:
    """Low scores from the service: ALLOW; the verdict serialises to JSON."""
    import json

    check, stubber = toxicity
    stubber.add_response("detect_toxic_content", {"ResultList": [toxic_result()]})
    verdict = PromptModerator(rules=RuleFilter.default(), classifiers=[check]).moderate("a lake")
    assert verdict.action is Action.ALLOW
    data = json.loads(json.dumps(verdict.to_dict()))
    assert [c["name"] for c in data["checks"]] == ["rules", "comprehend-toxicity"]


# -- frozen and validated ------------------------------------------------------------------


def test_a_moderator_cannot_be_weakened_after_it_was_built() -> None:
    """No setting changes in place; evolve makes a checked copy."""
    moderator = PromptModerator(rules=RULES, classifiers=[Scripted("ml")])
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        moderator.on_failure = Action.ALLOW  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        moderator.fail_open = frozenset({"ml"})  # type: ignore[misc]
    with pytest.raises(ConfigurationError, match=r"^fail_open: no check named 'nope'"):
        attrs.evolve(moderator, fail_open={"nope"})
    relaxed = attrs.evolve(moderator, fail_open=["ml"])
    assert relaxed.fail_open == frozenset({"ml"})
    assert moderator.fail_open == frozenset()


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("rules", ["gore"]),
        ("classifiers", None),
        ("classifiers", [object()]),
        ("classifiers", [Scripted("")]),
        ("strategy", "eventually"),
        ("strategy", None),
        ("rule_action", "block"),
        ("rule_action", Action.ALLOW),
        ("fail_open", "ml"),
        ("fail_open", [1]),
        ("on_failure", Action.ALLOW),
        ("max_chars", 0),
        ("max_chars", 10.5),
        ("max_chars", True),
    ],
)
def test_each_bad_setting_is_refused_naming_it(setting: str, value: Any) -> None:
    """At construction and on evolve: a ConfigurationError whose message starts with the name."""
    good = PromptModerator(rules=RULES)
    with pytest.raises(ConfigurationError, match=f"^{setting}: "):
        attrs.evolve(good, **{setting: value})
    with pytest.raises(ConfigurationError, match=f"^{setting}: "):
        PromptModerator(**{"rules": RULES, setting: value})


# -- what a classifier answers -------------------------------------------------------------


class Answers:
    """A classifier that answers whatever it is given."""

    name = "ml"

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def classify(self, text: str) -> Any:
        return self.answer


def _forced(valid: Any, **fields: Any) -> Any:
    """Return a copy of *valid* with *fields* forced in, past its converters and validators."""
    copy = attrs.evolve(valid)
    for name, value in fields.items():
        object.__setattr__(copy, name, value)
    return copy


FINDING = PromptFinding("ml", "TOXIC", 90.0, Action.BLOCK)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(None, id="None"),
        pytest.param({"findings": []}, id="a dict"),
        pytest.param((FINDING,), id="findings, not a report"),
        pytest.param(_forced(TextReport(), findings=""), id="findings that are a string"),
        pytest.param(_forced(TextReport(), findings=("TOXIC",)), id="findings that are names"),
        pytest.param(TextReport((_forced(FINDING, score=math.nan),)), id="a NaN score"),
        pytest.param(TextReport((_forced(FINDING, action=Action.ALLOW),)), id="an ALLOW finding"),
        pytest.param(TextReport((_forced(FINDING, action="BLOCK"),)), id="an action as text"),
        pytest.param(_forced(TextReport(), notes=None), id="notes that are None"),
    ],
)
def test_a_malformed_answer_is_a_failed_check(answer: Any) -> None:
    """Only a well-formed report counts as run; anything else fails the check closed."""
    verdict = PromptModerator(classifiers=[Answers(answer)]).moderate("a quiet lake")
    assert verdict.action is Action.BLOCK
    assert [c.name for c in verdict.failed] == ["ml"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"score": math.nan}, "score"),
        ({"score": 101}, "score"),
        ({"score": 10**400}, "score"),
        ({"action": Action.ALLOW}, "action"),
        ({"span": (5, 2)}, "span"),
        ({"source": None}, "source"),
    ],
)
def test_a_finding_with_impossible_values_cannot_be_built(
    fields: dict[str, Any], message: str
) -> None:
    """A classifier building such a finding fails while answering: a MalformedResponseError."""
    good: dict[str, Any] = {"source": "ml", "label": "TOXIC", "score": 90.0}
    with pytest.raises(MalformedResponseError, match=f"PromptFinding.{message}"):
        PromptFinding(**{**good, "action": Action.BLOCK, **fields})


# -- severities, negation and policies ----------------------------------------------------------


class Scores:
    """A classifier that reports fixed scores for its labels, all as REVIEW (the policy judges)."""

    def __init__(self, scores: dict[str, float], name: str = "scores") -> None:
        self.name = name
        self.scores = scores

    def classify(self, text: str) -> TextReport:
        return TextReport(
            tuple(PromptFinding(self.name, k, v, Action.REVIEW) for k, v in self.scores.items())
        )


def _negation_detected() -> bool:
    return any(m.negated for m in RuleFilter.default().scan("no nudity"))


def test_without_a_policy_mild_terms_review_and_severe_terms_take_rule_action() -> None:
    """Backward compatible: severe terms call for rule_action, mild ones for REVIEW."""
    rules = RuleFilter([Term("gore"), Term("frilly", severity="mild")])
    moderator = PromptModerator(rules)
    assert moderator.moderate("gore").action is Action.BLOCK
    mild = moderator.moderate("a frilly dress")
    assert mild.action is Action.REVIEW
    assert mild.findings[0].reason == "mild terms review"
    reviewing = PromptModerator(rules, rule_action=Action.REVIEW)
    assert reviewing.moderate("gore").action is Action.REVIEW


def test_a_longer_milder_term_does_not_hide_a_stricter_one() -> None:
    """A policy's own reviewed phrase containing a blocked term still blocks on that term."""
    policy = PromptPolicy(
        categories={
            "brand": {"action": "review", "terms": ["cocaine bear"]},
        }
    )
    moderator = PromptModerator.from_policy(policy)
    verdict = moderator.moderate("a cocaine bear poster")
    assert {(f.label, f.action) for f in verdict.findings} == {
        ("cocaine", Action.BLOCK),
        ("cocaine bear", Action.REVIEW),
    }
    assert moderator.rules_block("a cocaine bear poster")


def test_a_word_spelling_a_reviewed_term_is_not_another_blocked_one() -> None:
    """'sexy' is the suggestive term (reviewed), not 'sex' plus an ending, even when apart."""
    moderator = PromptModerator.from_policy(PromptPolicy())
    assert moderator.moderate("a sexy dress").action is Action.REVIEW
    allowed = PromptModerator.from_policy(PromptPolicy(categories={"suggestive": "allow"}))
    assert allowed.moderate("a sexy dress").action is Action.ALLOW


@pytest.mark.skipif(not _negation_detected(), reason="the rule filter does not detect negation")
def test_a_negated_term_is_reviewed_not_blocked() -> None:
    """'no nudity' calls for REVIEW, with or without a policy; an unnegated term still blocks."""
    for moderator in (
        PromptModerator(RuleFilter.default()),
        PromptModerator.from_policy(PromptPolicy()),
    ):
        negated = moderator.moderate("a statue, no nudity")
        assert negated.action is Action.REVIEW
        assert "negated: at most review" in (negated.findings[0].reason or "")
        assert not moderator.rules_block("a statue, no nudity")
        assert moderator.moderate("a statue, nudity").action is Action.BLOCK


def test_from_policy_takes_on_failure_and_the_present_fail_open_names() -> None:
    """The policy's on_failure applies; fail_open keeps only the names of checks present."""
    policy = PromptPolicy(on_failure="review", fail_open=["down", "comprehend-toxicity"])
    down = Scripted("down", error=ThrottledError("x", service="s", operation="o", code="T"))
    moderator = PromptModerator.from_policy(policy, classifiers=[down])
    assert moderator.fail_open == {"down"}
    assert moderator.on_failure is Action.REVIEW
    assert moderator.moderate("a lake").action is Action.ALLOW
    strict = PromptModerator.from_policy(PromptPolicy(on_failure="review"), classifiers=[down])
    assert strict.moderate("a lake").action is Action.REVIEW


def test_a_classifiers_findings_are_judged_again_by_the_policy() -> None:
    """A finding's action is replaced by the policy's, exactly at thresholds, with the reason."""
    policy = PromptPolicy(block_at=80, review_at=40, labels={"INSULT": 60})
    moderator = PromptModerator.from_policy(
        policy, classifiers=[Scores({"A": 80.0, "B": 39.99, "C": 40.0, "INSULT": 60.0})]
    )
    verdict = moderator.moderate("a lake")
    assert [(f.label, f.action, f.reason) for f in verdict.findings] == [
        ("A", Action.BLOCK, "prompts.block_at"),
        ("C", Action.REVIEW, "prompts.review_at"),
        ("INSULT", Action.BLOCK, 'prompts.labels."INSULT".block_at'),
    ]


def test_a_policy_and_rule_action_together_are_refused() -> None:
    """With a policy, the categories say what a match calls for: rule_action is refused."""
    with pytest.raises(ConfigurationError, match=r"^policy: "):
        PromptModerator(RULES, rule_action=Action.REVIEW, policy=PromptPolicy())
    with pytest.raises(ConfigurationError, match=r"^policy: expected a PromptPolicy"):
        PromptModerator(RULES, policy={"block_at": 3})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"^policy: "):
        PromptModerator.from_policy("strict")  # type: ignore[arg-type]


def test_a_category_set_to_allow_is_not_flagged() -> None:
    """Hate = "allow": its terms are not scanned for; other categories still are."""
    moderator = PromptModerator.from_policy(PromptPolicy(categories={"hate": "allow"}))
    assert moderator.moderate("a swastika").action is Action.ALLOW
    assert moderator.moderate("cocaine").action is Action.BLOCK


# Each policy compiles the shipped lists (a fraction of a second): fewer, costlier examples.
_PROPERTY = settings(
    max_examples=int(os.environ.get("SAFEGEN_POLICY_EXAMPLES", "25")), deadline=None
)


def _verdict(table: dict[str, Any], prompt: str, scores: dict[str, float] | None = None) -> Action:
    policy = PromptPolicy.from_mapping(table)
    classifiers = [Scores(scores)] if scores else []
    return PromptModerator.from_policy(policy, classifiers=classifiers).moderate(prompt).action


def _with_term(table: dict[str, Any], category: str, term: str, severity: str) -> dict[str, Any]:
    table = copy.deepcopy(table)
    categories = table.setdefault("categories", {})
    current = categories.get(category, {})
    if isinstance(current, str):
        current = {"action": current}
    key = "mild_terms" if severity == "mild" else "terms"
    current[key] = [*current.get(key, []), term]
    categories[category] = current
    return table


@_PROPERTY
@given(
    prompt_policy_tables(),
    st.one_of(prompt_terms, nested_prompt_terms),
    st.sampled_from(["brand", "zzz", "sexual", "suggestive", "drugs"]),
    st.sampled_from(["mild", "severe"]),
    st.one_of(prompt_texts, negated_prompt_texts()),
)
def test_adding_a_term_never_loosens_a_verdict(
    table: dict[str, Any], term: str, category: str, severity: str, prompt: str
) -> None:
    """Any term added to any category, of either severity, never makes a verdict less strict."""
    before = _verdict(table, prompt)
    after = _verdict(_with_term(table, category, term, severity), prompt)
    assert after.severity >= before.severity


@_PROPERTY
@given(
    prompt_policy_tables(),
    st.sampled_from(["brand", "zzz", "sexual", "suggestive", "drugs", "hate", "self_harm"]),
    st.sampled_from(["action", "mild"]),
    st.one_of(prompt_texts, negated_prompt_texts()),
)
def test_raising_a_category_never_loosens_a_verdict(
    table: dict[str, Any], category: str, setting: str, prompt: str
) -> None:
    """Raising a category's action (or its mild terms') one step never loosens a verdict."""
    policy = PromptPolicy.from_mapping(table)
    if category not in policy.categories and category in ("brand", "zzz"):
        table = _with_term(table, category, "blorp", "severe")
        policy = PromptPolicy.from_mapping(table)
    current = policy.category(category)
    severe, _ = current.decide("severe", "")
    mild, _ = current.decide("mild", "")
    now = severe if setting == "action" else mild
    if now is Action.BLOCK:
        return
    higher = Action.BLOCK if now is Action.REVIEW else Action.REVIEW
    raised = attrs.evolve(current, action=severe, mild=mild)  # pin both, then raise one
    raised = attrs.evolve(raised, **{setting: higher})
    stricter = attrs.evolve(policy, categories={**policy.categories, category: raised})
    before = PromptModerator.from_policy(policy).moderate(prompt).action
    after = PromptModerator.from_policy(stricter).moderate(prompt).action
    assert after.severity >= before.severity


@_PROPERTY
@given(
    prompt_policy_tables(),
    st.dictionaries(st.sampled_from(["HATE_SPEECH", "INSULT", "TOXIC"]), scores, min_size=1),
    st.sampled_from(["HATE_SPEECH", "INSULT", "TOXIC", None]),
    scores,
)
def test_lowering_a_classifier_threshold_never_loosens_a_verdict(
    table: dict[str, Any], reported: dict[str, float], label: str | None, lower: float
) -> None:
    """Lowering block_at or review_at (a label's or the default) never loosens a verdict."""
    policy = PromptPolicy.from_mapping(table)
    before = _verdict(table, "a lake", reported)
    if label is None:
        lowered = [
            attrs.evolve(policy, block_at=min(lower, policy.block_at), review_at=None)
            if policy.review_at is None
            else attrs.evolve(policy, review_at=min(lower, policy.review_at)),
        ]
    else:
        lowered = with_a_label_lowered(policy, label, lower)
    for stricter in lowered:
        moderator = PromptModerator.from_policy(stricter, classifiers=[Scores(reported)])
        assert moderator.moderate("a lake").action.severity >= before.severity


_NESTED = settings(max_examples=int(os.environ.get("SAFEGEN_POLICY_EXAMPLES", "30")), deadline=None)
_CATEGORIES = ["brand", "sexual", "suggestive", "drugs", "violence", "hate", "self_harm"]


@_NESTED
@given(
    prompt_policy_tables(),
    nested_prompt_terms,
    st.sampled_from(_CATEGORIES),
    st.sampled_from(["mild", "severe"]),
    negated_prefixes(),
    st.one_of(st.none(), negated_prompt_texts()),
)
def test_adding_a_term_near_a_negator_never_loosens_a_verdict(
    table: dict[str, Any], term: str, category: str, severity: str, prefix: str, more: str | None
) -> None:
    """A term around a shipped or own one, after a negator, never loosens (red team 4)."""
    prompt = f"{prefix} {term}" if more is None else f"{prefix} {term}, {more}"
    before = _verdict(table, prompt)
    after = _verdict(_with_term(table, category, term, severity), prompt)
    assert after.severity >= before.severity, prompt


@_NESTED
@given(
    prompt_policy_tables(),
    nested_prompt_terms,
    st.sampled_from(_CATEGORIES),
    st.sampled_from(["action", "mild"]),
    negated_prefixes(),
)
def test_raising_a_category_with_a_nested_term_never_loosens_a_verdict(
    table: dict[str, Any], term: str, category: str, setting: str, prefix: str
) -> None:
    """Raising the action of a category whose term holds another never loosens (red team 5)."""
    table = _with_term(table, category, term, "mild" if setting == "mild" else "severe")
    policy = PromptPolicy.from_mapping(table)
    current = policy.category(category)
    severe, _ = current.decide("severe", "")
    mild, _ = current.decide("mild", "")
    prompt = f"{prefix} {term}"
    before = PromptModerator.from_policy(policy).moderate(prompt).action
    for higher in (Action.REVIEW, Action.BLOCK):
        raised = attrs.evolve(current, action=severe, mild=mild)
        if (severe if setting == "action" else mild).severity >= higher.severity:
            continue
        raised = attrs.evolve(raised, **{setting: higher})
        stricter = attrs.evolve(policy, categories={**policy.categories, category: raised})
        after = PromptModerator.from_policy(stricter).moderate(prompt).action
        assert after.severity >= before.severity, prompt


@_NESTED
@given(nested_prompt_terms, st.sampled_from(["mild", "severe"]), negated_prefixes(), st.booleans())
def test_adding_a_term_to_one_filter_never_loosens_a_verdict(
    term: str, severity: str, prefix: str, negate: bool
) -> None:
    """Without a policy one filter holds both severities: a mild outer term hides nothing."""
    prompt = f"{prefix} {term}" if negate else f"a {term}"
    before = PromptModerator(rules=RuleFilter.default()).moderate(prompt).action
    added = RuleFilter.default(add=[Term(term, "custom", severity=severity)])
    after = PromptModerator(rules=added).moderate(prompt).action
    assert after.severity >= before.severity, prompt


@pytest.mark.parametrize(
    "prompt",
    ["no watermark child porn", "no makeup nude woman", "non-binary nude model",
     "free of charge porn", "un peacekeepers decapitated", "no regrets kill yourself",
     "non-nude nude", "n07 blurry nude", "no 1 porn star", "no filter at child porn",
     "no blur at anal sex", "no cut at crack cocaine", "1girl, naked, eyes closed, on bed",
     "couple having sex, cell lighting", "blood and gore, tex", "cum, laude, face",
     "naked. eyes wide open", "woman showing her blue titties", "al gory scene",
     "sex offender raping", "kill my self"],
)  # fmt: skip
def test_red_team_prompts_block_under_every_moderator(prompt: str) -> None:
    """Each red-team prompt of issue 12 blocks: general and strict presets, and no policy."""
    from safegen import ModerationPolicy

    for moderator in (
        PromptModerator.from_policy(ModerationPolicy.preset("general")),
        PromptModerator.from_policy(ModerationPolicy.preset("strict")),
        PromptModerator(rules=RuleFilter.default()),
    ):
        assert moderator.moderate(prompt).action is Action.BLOCK, prompt


def test_red_team_added_and_raised_terms_do_not_loosen() -> None:
    """The red team's own cases: an added term and a raised category (issue 12, 4 and 5)."""
    plain = PromptModerator.from_policy(PromptPolicy())
    added = PromptModerator.from_policy(
        PromptPolicy(categories={"sexual": {"terms": ["fully nude"]}})
    )
    assert plain.moderate("no bra at fully nude").action is Action.BLOCK
    assert added.moderate("no bra at fully nude").action is Action.BLOCK
    mild = PromptModerator(
        rules=RuleFilter.default(add=[Term("nude beach", "custom", severity="mild")])
    )
    assert mild.moderate("nude beach").action is Action.BLOCK
    for action in ("review", "block"):
        raised = PromptModerator.from_policy(PromptPolicy(categories={"violence": action}))
        assert raised.moderate("no regrets at torture porn").action is Action.BLOCK


@_PROPERTY
@given(prompt_policy_tables(), prompt_texts)
def test_a_negated_match_never_blocks_by_itself(table: dict[str, Any], prompt: str) -> None:
    """No finding of a negated match calls for BLOCK, whatever the policy."""
    moderator = PromptModerator.from_policy(PromptPolicy.from_mapping(table))
    for finding in moderator.moderate(prompt).findings:
        if finding.match is not None and finding.match.negated:
            assert finding.action is not Action.BLOCK

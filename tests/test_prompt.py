"""Tests of PromptModerator: strategies, fail-closed semantics, bad input, and logging."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st

from safegen import Action, ConfigurationError, InvalidPromptError, RuleFilter
from safegen.aws import ComprehendToxicity
from safegen.errors import MalformedResponseError, ThrottledError
from safegen.ports import TextClassifier
from safegen.prompt import CheckStatus, PromptFinding, PromptModerator, TextReport
from tests.aws import fake_client, toxic_result

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
    assert verdict.failed[0].error == "RuntimeError('boom')"


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

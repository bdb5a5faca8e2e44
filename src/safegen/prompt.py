"""Prompt moderation: forbidden-term rules and ML classifiers, combined into one verdict.

A :class:`PromptModerator` runs the rule filter and any :class:`~safegen.ports.TextClassifier`
on a prompt and returns a :class:`PromptVerdict`: the action, every finding with where it came
from, which checks ran, and how long each took. It fails closed: a check that cannot run makes
the verdict ``BLOCK`` (or the action you choose) unless you opted that check out with
``fail_open``.

Only the prompt is moderated. A negative prompt names what must *not* appear; it is never
passed through the rule filter or the classifiers.

Built from a policy (:meth:`PromptModerator.from_policy`), every finding is judged by the
policy's ``[prompts]`` section (:class:`~safegen.PromptPolicy`), and each finding names the
setting that decided it (the ``reason`` of each :class:`~safegen.PromptFinding`).
"""

from __future__ import annotations

import enum
import functools
import logging
import re
import time
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import attrs

from safegen import _checks
from safegen.decision import Action
from safegen.errors import (
    ConfigurationError,
    InvalidPromptError,
    SafegenError,
)
from safegen.policy import ModerationPolicy
from safegen.ports import TextClassifier
from safegen.prompt_policy import MILD, PolicyConfigurable, PromptJudgement, PromptPolicy
from safegen.reports import PromptFinding, TextReport, checked_text_report
from safegen.text import RuleFilter, RuleMatch

__all__ = [
    "CheckResult",
    "CheckStatus",
    "PromptFinding",
    "PromptModerator",
    "PromptVerdict",
    "TextReport",
]

_log = logging.getLogger(__name__)

RULES = "rules"  # the rule filter's name in verdicts and fail_open
_SURROGATE = re.compile("[\ud800-\udfff]")
DEFAULT_MAX_CHARS = 10_000  # Bedrock's image models' own prompt limit


class CheckStatus(enum.Enum):
    """How one check went."""

    OK = "ok"
    FAILED = "failed"
    """It could not run; the verdict says why and treats it as its ``fail_open`` says."""
    SKIPPED = "skipped"
    """Not needed: the cascade had already blocked the prompt."""


@attrs.frozen
class CheckResult:
    """One check's part in a verdict.

    :param name: the check: ``"rules"`` or a classifier's name.
    :param status: whether it ran, failed or was skipped.
    :param seconds: how long it took.
    :param error: for a failed check, why (with the service's error code when there is one).
    :param fail_open: whether a failure of this check was configured to count as safe.
    :param notes: what the check could not fully judge.
    """

    name: str
    status: CheckStatus
    seconds: float = 0.0
    error: str | None = None
    fail_open: bool = False
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the check as plain JSON-ready data."""
        return {
            "name": self.name,
            "status": self.status.value,
            "seconds": self.seconds,
            "error": self.error,
            "fail_open": self.fail_open,
            "notes": list(self.notes),
        }


@attrs.frozen
class PromptVerdict:
    """What prompt moderation decided, and everything it is based on.

    :param action: ``ALLOW``, ``REVIEW`` or ``BLOCK``.
    :param findings: what the checks found, rules first, then classifiers in order.
    :param checks: every check, in order, with its status and timing.
    """

    action: Action
    findings: tuple[PromptFinding, ...] = ()
    checks: tuple[CheckResult, ...] = ()

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        """The checks that could not run."""
        return tuple(c for c in self.checks if c.status is CheckStatus.FAILED)

    def to_dict(self) -> dict[str, Any]:
        """Return the verdict as plain JSON-ready data (no prompt text but the matched spans)."""
        return {
            "action": self.action.value,
            "findings": [f.to_dict() for f in self.findings],
            "checks": [c.to_dict() for c in self.checks],
        }


def _rules(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, RuleFilter):
        raise _checks.refuse(attribute, f"expected a RuleFilter or None, got {_checks.kind(value)}")


def _classifier_tuple(value: Iterable[TextClassifier]) -> tuple[TextClassifier, ...]:
    return _checks.to_tuple(value, "classifiers")


def _classifiers(
    instance: object, attribute: attrs.Attribute[Any], value: tuple[object, ...]
) -> None:
    for classifier in value:
        if not isinstance(classifier, TextClassifier):
            raise _checks.refuse(
                attribute,
                f"expected text classifiers (name and classify), got {_checks.kind(classifier)}",
            )
        name: object = classifier.name
        if not isinstance(name, str) or not name:
            raise _checks.refuse(attribute, "a classifier's name must be a non-empty string")
    names = [RULES, *(c.name for c in value if isinstance(c, TextClassifier))]
    if len(set(names)) != len(names):
        raise _checks.refuse(attribute, f"checks must have distinct names, got {names}")


def _names(value: Collection[str]) -> frozenset[str]:
    names = _checks.to_tuple(value, "fail_open")
    if not all(isinstance(name, str) for name in names):
        raise ConfigurationError("fail_open: expected check names (strings)")
    return frozenset(names)


def _fail_open(
    instance: PromptModerator, attribute: attrs.Attribute[Any], value: frozenset[object]
) -> None:
    names = {RULES, *(c.name for c in instance.classifiers)}
    unknown = sorted(repr(n) for n in value - names)
    if unknown:
        raise _checks.refuse(attribute, f"no check named {', '.join(unknown)}")


def _policy(instance: PromptModerator, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, PromptPolicy):
        raise _checks.refuse(
            attribute, f"expected a PromptPolicy or None, got {_checks.kind(value)}"
        )
    if instance.rule_action is not Action.BLOCK:
        raise _checks.refuse(
            attribute, "with a policy, its categories say what a match calls for: drop rule_action"
        )


_Groups = tuple[tuple[Action, RuleFilter], ...]


def _rule_groups(moderator: PromptModerator) -> _Groups:
    """Return the rule filters to scan with, each with the action its terms call for."""
    rules: object = moderator.rules
    policy: object = moderator.policy
    if isinstance(rules, RuleFilter):
        return ((Action.BLOCK, rules),)  # one filter, each match judged on its own
    if rules is None and isinstance(policy, PromptPolicy):
        return policy.rule_filters()
    return ()  # nothing, or refused by the validators, which run next


def _judge(
    rule_action: Action,
    policy: PromptPolicy | None,
    category: str,
    severity: str,
    *,
    negated: bool = False,
) -> PromptJudgement:
    """Judge a match: by the policy, or (without one) by the moderator's own settings."""
    if policy is not None:
        return policy.judge_term(category, severity, negated=negated)
    if severity == MILD:
        judged = PromptJudgement(Action.REVIEW, "mild terms review")
    else:
        judged = PromptJudgement(rule_action, "rule_action")
    if negated and judged.action is Action.BLOCK:
        return PromptJudgement(Action.REVIEW, judged.source, negated=True)
    return judged


@attrs.frozen(eq=False)
class PromptModerator:
    """Moderate prompts with forbidden-term rules and ML classifiers.

    Frozen: a moderator's settings are checked when it is built and cannot be changed
    afterwards; ``attrs.evolve`` makes a changed copy, checked again.

    :param rules: the rule filter; ``None`` for none, or, with a *policy*, for the
        policy's. (Use :meth:`RuleFilter.default <safegen.RuleFilter.default>` for the
        shipped list.)
    :param classifiers: text classifiers, e.g. :class:`safegen.aws.ComprehendToxicity`.
    :param strategy: ``"cascade"`` runs the rules first and skips the (paid) classifiers
        when the rules already block; ``"parallel"`` runs everything at once, so the time
        taken is the slowest check's, not the sum.
    :param rule_action: what a match of a severe term calls for without a *policy*
        (``BLOCK`` by default). A mild term's match calls for REVIEW, and a negated match
        (``"no nudity"``) for at most REVIEW.
    :param fail_open: names of checks whose failure counts as safe. Without it, a check that
        cannot run gives *on_failure*.
    :param on_failure: the action when a check (not in *fail_open*) fails: ``BLOCK`` by
        default, or ``REVIEW``; never ``ALLOW``.
    :param max_chars: the longest prompt accepted; longer raises :class:`InvalidPromptError`.
    :param policy: judges every finding instead of *rule_action*: each rule match by its
        category's action for its severity, each classifier's score by the policy's
        thresholds. :meth:`from_policy` builds the rules and classifiers to match it.
    :raises ConfigurationError: a setting is refused or contradicts another; the message
        names it.

    With a policy and no *rules*, the rules are the policy's
    (:meth:`PromptPolicy.rule_filters <safegen.PromptPolicy.rule_filters>`): the shipped
    lists adjusted by it, scanned in one filter per action so that a longer term calling
    for less never hides a shorter one calling for more.

    A classifier that answers with anything but a well-formed :class:`TextReport` (another
    type, a finding with a score that is not a number from 0 to 100) has failed its check.

    >>> moderator = PromptModerator(rules=RuleFilter(["gore"]))
    >>> moderator.moderate("a g0r3 scene").action
    <Action.BLOCK: 'block'>
    """

    rules: RuleFilter | None = attrs.field(default=None, validator=_rules)
    classifiers: tuple[TextClassifier, ...] = attrs.field(
        default=(), converter=_classifier_tuple, validator=_classifiers
    )
    strategy: Literal["cascade", "parallel"] = attrs.field(
        default="cascade", kw_only=True, validator=_checks.one_of("cascade", "parallel")
    )
    rule_action: Action = attrs.field(
        default=Action.BLOCK,
        kw_only=True,
        validator=_checks.not_allow("a rule match must call for REVIEW or BLOCK"),
    )
    fail_open: frozenset[str] = attrs.field(
        default=frozenset(), kw_only=True, converter=_names, validator=_fail_open
    )
    on_failure: Action = attrs.field(
        default=Action.BLOCK,
        kw_only=True,
        validator=_checks.not_allow("name the check in fail_open instead"),
    )
    max_chars: int = attrs.field(
        default=DEFAULT_MAX_CHARS, kw_only=True, validator=_checks.positive_int
    )
    policy: PromptPolicy | None = attrs.field(default=None, kw_only=True, validator=_policy)
    _rule_groups: _Groups = attrs.field(
        init=False, repr=False, default=attrs.Factory(_rule_groups, takes_self=True)
    )

    @classmethod
    def from_policy(
        cls,
        policy: ModerationPolicy | PromptPolicy,
        *,
        classifiers: Iterable[TextClassifier] = (),
        strategy: Literal["cascade", "parallel"] = "cascade",
        max_chars: int = DEFAULT_MAX_CHARS,
    ) -> PromptModerator:
        """Build a moderator that judges prompts as *policy*'s ``[prompts]`` section says.

        The rules are the shipped lists adjusted by the policy (its own terms added, its
        ``remove`` taken out, its ``allow`` never counting); a category whose action is
        ``"allow"`` is not scanned for at all. Each classifier's findings are judged again
        by the policy's thresholds. A classifier reports only what passes its own
        thresholds, so one that can judge at the policy's (a :class:`~safegen.PolicyConfigurable`,
        as :class:`~safegen.aws.ComprehendToxicity` and
        :class:`~safegen.aws.ComprehendClassifier` are) is replaced by a copy that does;
        another's own thresholds stay a floor under the policy's. The policy's
        ``on_failure`` applies, and its ``fail_open`` names, for the checks present (a
        policy shared by several deployments may name checks this one does not run).

        :param policy: a :class:`~safegen.ModerationPolicy` (its ``prompts``) or a
            :class:`~safegen.PromptPolicy`.
        :raises ConfigurationError: a setting is refused; the message names it.
        """
        prompts = policy.prompts if isinstance(policy, ModerationPolicy) else policy
        if not isinstance(prompts, PromptPolicy):
            raise ConfigurationError(
                f"policy: expected a ModerationPolicy or PromptPolicy, got {_checks.kind(policy)}"
            )
        configured = tuple(
            c.with_policy(prompts) if isinstance(c, PolicyConfigurable) else c
            for c in _classifier_tuple(classifiers)
        )
        names = {RULES, *(getattr(c, "name", None) for c in configured)}
        return cls(
            None,
            configured,
            strategy=strategy,
            fail_open=prompts.fail_open & names,
            on_failure=prompts.on_failure,
            max_chars=max_chars,
            policy=prompts,
        )

    def moderate(self, prompt: str) -> PromptVerdict:
        """Moderate one prompt.

        :raises InvalidPromptError: *prompt* is not a string or is longer than ``max_chars``.
        """
        self.validate(prompt)
        # Lone surrogates cannot be sent to a service as UTF-8: classifiers see U+FFFD there.
        sendable = _SURROGATE.sub("\ufffd", prompt)
        checks: list[Callable[[], _Outcome]] = []
        if self._rule_groups:
            checks.append(lambda: self._run(RULES, lambda: self._rule_report(prompt)))
        classifier_checks = [
            functools.partial(self._run, c.name, functools.partial(self._classify, c, sendable))
            for c in self.classifiers
        ]
        if self.strategy == "parallel":
            outcomes = _in_parallel([*checks, *classifier_checks])
        else:
            outcomes = [check() for check in checks]
            blocked = any(f.action is Action.BLOCK for o in outcomes for f in o.findings)
            if blocked:
                outcomes += [
                    _Outcome(CheckResult(c.name, CheckStatus.SKIPPED)) for c in self.classifiers
                ]
            else:
                outcomes += [check() for check in classifier_checks]
        return self._verdict(outcomes)

    def validate(self, prompt: str) -> None:
        """Check that *prompt* can be moderated at all, before anything is spent on it.

        :raises InvalidPromptError: not a string, or longer than ``max_chars``.
        """
        if not isinstance(prompt, str):
            raise InvalidPromptError(f"prompt: expected a string, got {type(prompt).__name__}")
        if len(prompt) > self.max_chars:
            raise InvalidPromptError(
                f"prompt: {len(prompt):,} characters is over the limit of {self.max_chars:,}"
            )

    def rules_block(self, prompt: str) -> bool:
        """Return whether the rule filter alone blocks *prompt* (free and local, no service).

        :raises InvalidPromptError: not a string, or longer than ``max_chars``.
        """
        self.validate(prompt)
        return any(f.action is Action.BLOCK for f in self._rule_report(prompt).findings)

    def judge_match(self, match: RuleMatch) -> PromptJudgement:
        """Return what a rule match calls for here, and the setting that says so."""
        return _judge(
            self.rule_action, self.policy, match.category, match.severity, negated=match.negated
        )

    def _rule_report(self, prompt: str) -> TextReport:
        findings = []
        for _, rules in self._rule_groups:
            for m in rules.scan(prompt):
                judged = self.judge_match(m)
                if judged.action is Action.ALLOW:
                    continue
                findings.append(
                    PromptFinding(
                        RULES,
                        m.term,
                        100.0,
                        judged.action,
                        m.category,
                        m.span,
                        match=m,
                        reason=judged.reason,
                    )
                )
        findings.sort(key=lambda f: (f.span, f.label, f.category))
        return TextReport(tuple(findings))

    def _classify(self, classifier: TextClassifier, text: str) -> TextReport:
        """Run *classifier*; with a policy, judge each finding again by its thresholds."""
        report = checked_text_report(classifier.classify(text), classifier.name)
        if self.policy is None:
            return report
        findings = []
        for finding in report.findings:
            judged = self.policy.judge_score(finding.label, finding.score)
            if judged.action is not Action.ALLOW:
                findings.append(attrs.evolve(finding, action=judged.action, reason=judged.reason))
        return TextReport(tuple(findings), report.notes)

    def _run(self, name: str, check: Callable[[], TextReport]) -> _Outcome:
        start = time.perf_counter()
        fail_open = name in self.fail_open
        try:
            report = checked_text_report(check(), name)
        except Exception as error:
            seconds = time.perf_counter() - start
            code = getattr(error, "code", type(error).__name__)
            # Name and code only: an error message could quote the prompt.
            _log.warning("check %s failed (%s); fail_open=%s", name, code, fail_open)
            reason = str(error) if isinstance(error, SafegenError) else repr(error)
            return _Outcome(CheckResult(name, CheckStatus.FAILED, seconds, reason, fail_open))
        seconds = time.perf_counter() - start
        return _Outcome(
            CheckResult(name, CheckStatus.OK, seconds, fail_open=fail_open, notes=report.notes),
            report.findings,
        )

    def _verdict(self, outcomes: list[_Outcome]) -> PromptVerdict:
        findings = tuple(f for o in outcomes for f in o.findings)
        actions = [f.action for f in findings]
        actions += [
            self.on_failure
            for o in outcomes
            if o.check.status is CheckStatus.FAILED and not o.check.fail_open
        ]
        return PromptVerdict(Action.strictest(actions), findings, tuple(o.check for o in outcomes))


@attrs.frozen
class _Outcome:
    check: CheckResult
    findings: tuple[PromptFinding, ...] = ()


def _in_parallel(checks: list[Callable[[], _Outcome]]) -> list[_Outcome]:
    if len(checks) <= 1:
        return [check() for check in checks]
    with ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="safegen-check") as pool:
        futures = [pool.submit(check) for check in checks]
        return [future.result() for future in futures]

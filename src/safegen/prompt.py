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

import functools
import inspect
import logging
import re
import time
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar

import attrs

from safegen import _checks
from safegen.decision import Action
from safegen.errors import (
    ConfigurationError,
    InvalidPromptError,
)
from safegen.image import PolicyCache, observer_setting, observers, overriding_policy, tell
from safegen.observe import Observer
from safegen.policy import ModerationPolicy
from safegen.ports import TextClassifier
from safegen.prompt_policy import MILD, PolicyConfigurable, PromptJudgement, PromptPolicy
from safegen.reports import PromptFinding, TextReport, checked_text_report
from safegen.text import RuleFilter, RuleMatch
from safegen.verdicts import CheckResult, CheckStatus, PromptVerdict, error_text

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


def _rules(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, RuleFilter):
        raise _checks.refuse(attribute, f"expected a RuleFilter or None, got {_checks.kind(value)}")


def _classifier_tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    return _checks.to_tuple(value, "classifiers")


def classifiers_of(protocol: type, *, coroutine: bool) -> _checks.Validator:
    """Refuse classifiers that are not *protocol*, have no usable name, or share a name.

    A sync moderator refuses a classifier whose ``classify`` is a coroutine function, and an
    async one a classifier whose ``classify`` is not (wrap it with
    :func:`safegen.aio.in_thread`): either would hand the moderator something it cannot read.
    """
    what = (
        "async text classifiers (name and async classify)"
        if coroutine
        else ("text classifiers (name and classify)")
    )

    def check(instance: object, attribute: attrs.Attribute[Any], value: tuple[object, ...]) -> None:
        for classifier in value:
            if not isinstance(classifier, protocol):
                raise _checks.refuse(attribute, f"expected {what}, got {_checks.kind(classifier)}")
            if inspect.iscoroutinefunction(getattr(classifier, "classify", None)) != coroutine:
                hint = "wrap it with safegen.aio.in_thread" if coroutine else "use safegen.aio"
                raise _checks.refuse(
                    attribute, f"expected {what}, got {_checks.kind(classifier)} ({hint})"
                )
            name: object = getattr(classifier, "name", None)
            if not isinstance(name, str) or not name:
                raise _checks.refuse(attribute, "a classifier's name must be a non-empty string")
        names = [RULES, *(getattr(c, "name", None) for c in value)]
        if len(set(names)) != len(names):
            raise _checks.refuse(attribute, f"checks must have distinct names, got {names}")

    return check


_classifiers = classifiers_of(TextClassifier, coroutine=False)


def _names(value: Collection[str]) -> frozenset[str]:
    names = _checks.to_tuple(value, "fail_open")
    if not all(isinstance(name, str) for name in names):
        raise ConfigurationError("fail_open: expected check names (strings)")
    return frozenset(names)


def _fail_open(instance: Any, attribute: attrs.Attribute[Any], value: frozenset[object]) -> None:
    names = {RULES, *(c.name for c in instance.classifiers)}
    unknown = sorted(repr(n) for n in value - names)
    if unknown:
        raise _checks.refuse(attribute, f"no check named {', '.join(unknown)}")


def _policy(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
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


def _kept_setting(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """Refuse a ``kept`` that is not a ``_Kept`` (set by per-request override copies)."""
    if not isinstance(value, _Kept):
        raise _checks.refuse(attribute, f"expected a _Kept, got {_checks.kind(value)}")


def _source_policy(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, ModerationPolicy):
        raise _checks.refuse(
            attribute, f"expected a ModerationPolicy or None, got {_checks.kind(value)}"
        )
    if instance.policy != value.prompts:
        raise _checks.refuse(attribute, "its [prompts] section must be the moderator's policy")


_Groups = tuple[tuple[Action, RuleFilter], ...]


@attrs.frozen
class _Kept:
    """What a per-request override copy keeps of the moderator it was made from.

    A per-request policy replaces the moderator's *policy* (thresholds, categories and
    their actions, the shipped lists as it adjusts them), never its construction-time checks:

    :param rules: the moderator's own rule filter (its ``rules``), scanned as well and
        judged as the moderator judges it (*rule_action*, or its *policy*).
    :param rule_action: the moderator's ``rule_action``.
    :param policy: the moderator's own policy (``None`` for none), for its rules.
    :param classifiers_decide: the moderator had no policy, so its classifiers' own actions
        were its judgement: they stand (a policy's thresholds may only raise them), and the
        classifiers are not reconfigured for the override.
    """

    rules: RuleFilter | None = None
    rule_action: Action = Action.BLOCK
    policy: PromptPolicy | None = None
    classifiers_decide: bool = False


_KEEP_NOTHING = _Kept()


class _Missing(Exception):
    """Raised by :func:`_missing`: a per-request policy not compiled yet."""


def _missing() -> Any:
    raise _Missing


def _rule_groups(moderator: Any) -> _Groups:
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


_P = TypeVar("_P", bound="PromptChecks")


class PromptChecks:
    """What the sync and async prompt moderators share: everything but the classifiers' calls.

    A shell (:class:`PromptModerator`, :class:`safegen.aio.AsyncPromptModerator`) validates
    the prompt, runs the local rules with :meth:`_rule_outcomes`, skips the classifiers when
    :meth:`_skipped` says so, and turns each classifier's answer (or the exception its call
    raised) into an outcome with :meth:`_outcome`; :meth:`_verdict` combines them. Only how
    the classifiers are called differs.
    """

    rules: RuleFilter | None
    classifiers: tuple[Any, ...]
    strategy: Literal["cascade", "parallel"]
    rule_action: Action
    fail_open: frozenset[str]
    on_failure: Action
    max_chars: int
    policy: PromptPolicy | None
    source_policy: ModerationPolicy | None
    observer: Observer | None
    _kept: _Kept
    _rule_groups: _Groups
    _overrides: PolicyCache[Any]

    @classmethod
    def _from_policy(
        cls: type[_P],
        policy: ModerationPolicy | PromptPolicy,
        *,
        classifiers: Iterable[Any] = (),
        strategy: Literal["cascade", "parallel"] = "cascade",
        max_chars: int = DEFAULT_MAX_CHARS,
        configure: bool = True,
        **settings: Any,
    ) -> _P:
        """Build a moderator of this class as :meth:`PromptModerator.from_policy` says.

        :param configure: replace each :class:`~safegen.PolicyConfigurable` classifier by
            its copy for the policy (``False``: keep them as they are).
        """
        prompts = policy.prompts if isinstance(policy, ModerationPolicy) else policy
        if not isinstance(prompts, PromptPolicy):
            raise ConfigurationError(
                f"policy: expected a ModerationPolicy or PromptPolicy, got {_checks.kind(policy)}"
            )
        configured = tuple(
            c.with_policy(prompts) if configure and isinstance(c, PolicyConfigurable) else c
            for c in _classifier_tuple(classifiers)
        )
        names = {RULES, *(getattr(c, "name", None) for c in configured)}
        return cls(  # type: ignore[call-arg]
            None,
            configured,
            strategy=strategy,
            fail_open=prompts.fail_open & names,
            on_failure=prompts.on_failure,
            max_chars=max_chars,
            policy=prompts,
            source_policy=policy if isinstance(policy, ModerationPolicy) else None,
            **settings,
        )

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

    def _for_policy(self, policy: object) -> Any:
        """Return this moderator judging by *policy*'s ``[prompts]`` (itself for ``None``).

        Built once per policy hash, as :meth:`_with_policy` says.
        """
        override = overriding_policy(policy)
        if override is None:
            return self
        return self._overrides.get(override, lambda: self._with_policy(override))

    def _compiled_for(self, policy: ModerationPolicy) -> Any | None:
        """Return the copy for *policy* if it is compiled already, else ``None`` (no build)."""
        try:
            return self._overrides.get(policy, _missing)
        except _Missing:
            return None

    def _with_policy(self, policy: ModerationPolicy) -> Any:
        """Build the copy judging by *policy*: the policy replaced, the checks kept.

        As :meth:`from_policy` builds one from *policy*, with this moderator's classifiers,
        strategy, ``max_chars`` (and its other settings but the observer), and:

        - this moderator's own rule filter (``rules``), judged as it judges it;
        - without a policy of its own, its classifiers as they are, their actions standing;
        - ``on_failure`` the stricter of its own and the policy's;
        - ``fail_open`` only the checks both open: a request's policy never opens a check
          the moderator keeps closed (the operator decides that).
        """
        prompts = policy.prompts
        copy = type(self)._from_policy(
            policy,
            classifiers=self.classifiers,
            strategy=self.strategy,
            max_chars=self.max_chars,
            configure=self.policy is not None,
            **self._carried(),
        )
        kept = _Kept(
            self.rules,
            self.rule_action,
            self.policy,
            classifiers_decide=self.policy is None,
        )
        return attrs.evolve(
            copy,  # type: ignore[misc]  # every shell is an attrs class
            fail_open=copy.fail_open & self.fail_open,
            on_failure=Action.strictest((self.on_failure, prompts.on_failure)),
            kept=kept,
        )

    def _carried(self) -> dict[str, Any]:
        """Return the settings an override keeps beyond those :meth:`from_policy` takes."""
        return {}

    @property
    def _has_rules(self) -> bool:
        return bool(self._rule_groups) or self._kept.rules is not None

    def _rule_report(self, prompt: str) -> TextReport:
        kept = self._kept
        scans: list[tuple[RuleFilter, Callable[[RuleMatch], PromptJudgement]]] = [
            (rules, self.judge_match) for _, rules in self._rule_groups
        ]
        if kept.rules is not None:

            def judge_kept(m: RuleMatch) -> PromptJudgement:
                return _judge(
                    kept.rule_action, kept.policy, m.category, m.severity, negated=m.negated
                )

            scans.append((kept.rules, judge_kept))
        findings = []
        for rules, judge in scans:
            for m in rules.scan(prompt):
                judged = judge(m)
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

    def _rule_outcomes(self, prompt: str) -> list[_Outcome]:
        """Run the local rules (no service): one outcome, or none without rules."""
        if not self._has_rules:
            return []
        return [self._outcome(RULES, time.perf_counter(), lambda: self._rule_report(prompt))]

    def _skipped(self, outcomes: list[_Outcome]) -> list[_Outcome] | None:
        """Return the classifiers' outcomes when the rules already decided, else ``None``."""
        blocked = any(f.action is Action.BLOCK for o in outcomes for f in o.findings)
        if self.strategy != "cascade" or not blocked:
            return None
        return [_Outcome(CheckResult(c.name, CheckStatus.SKIPPED)) for c in self.classifiers]

    def _classified(self, name: str, answer: object) -> TextReport:
        """Check a classifier's answer; with a policy, judge each finding by its thresholds.

        A finding the service itself decided (its ``decision`` set: a guardrail's
        intervention or detection) is not a score: it is never judged below its action, only
        raised by the policy's ``[prompts.guardrail]``. Without a policy of the moderator's
        own (an override copy's ``_Kept``), a classifier's own action stands too.
        """
        report = checked_text_report(answer, name)
        policy = self.policy
        if policy is None:
            return report
        findings = []
        for finding in report.findings:
            if finding.decision is not None:
                judged: PromptJudgement | None = policy.judge_decision(
                    finding.decision, finding.action
                )
            else:
                judged = policy.judge_score(finding.label, finding.score)
                if (
                    self._kept.classifiers_decide
                    and Action.strictest((finding.action, judged.action)) is finding.action
                ):
                    judged = None  # the classifier's own action stands
            if judged is None:
                findings.append(finding)
            elif judged.action is not Action.ALLOW:
                findings.append(attrs.evolve(finding, action=judged.action, reason=judged.reason))
        return TextReport(tuple(findings), report.notes)

    def _outcome(self, name: str, start: float, check: Callable[[], object]) -> _Outcome:
        """Run *check* (or re-raise what the call raised); any failure fails the check."""
        fail_open = name in self.fail_open
        try:
            report = checked_text_report(check(), name)
        except Exception as error:
            seconds = time.perf_counter() - start
            code = getattr(error, "code", type(error).__name__)
            # Name and code only: an error message could quote the prompt.
            _log.warning("check %s failed (%s); fail_open=%s", name, code, fail_open)
            reason = error_text(error)
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
        source = self.source_policy
        return PromptVerdict(
            Action.strictest(actions),
            findings,
            tuple(o.check for o in outcomes),
            policy_sha256=None if source is None else source.sha256,
            policy_version=None if source is None else source.version,
        )

    @property
    def _observers(self) -> tuple[Observer, ...]:
        return observers(self.observer)


def sendable(prompt: str) -> str:
    """Return *prompt* as a service can take it: lone surrogates become U+FFFD."""
    return _SURROGATE.sub("\ufffd", prompt)


def raised(error: BaseException) -> Callable[[], object]:
    """Return a check that raises *error* again (a call failed before it answered)."""

    def check() -> object:
        raise error

    return check


@attrs.frozen(eq=False)
class PromptModerator(PromptChecks):
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
    :param source_policy: the :class:`~safegen.ModerationPolicy` whose ``[prompts]`` is
        *policy* (:meth:`from_policy` sets it); verdicts record its ``sha256`` and
        ``version``.
    :param observer: told about every verdict (:mod:`safegen.observe`); its failures never
        change one.
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
    source_policy: ModerationPolicy | None = attrs.field(
        default=None, kw_only=True, validator=_source_policy
    )
    observer: Observer | None = attrs.field(default=None, kw_only=True, validator=observer_setting)
    _kept: _Kept = attrs.field(
        default=_KEEP_NOTHING, kw_only=True, repr=False, validator=_kept_setting
    )
    _rule_groups: _Groups = attrs.field(
        init=False, repr=False, default=attrs.Factory(_rule_groups, takes_self=True)
    )
    _overrides: PolicyCache[PromptModerator] = attrs.field(
        init=False, factory=PolicyCache, repr=False
    )

    @classmethod
    def from_policy(
        cls,
        policy: ModerationPolicy | PromptPolicy,
        *,
        classifiers: Iterable[TextClassifier] = (),
        strategy: Literal["cascade", "parallel"] = "cascade",
        max_chars: int = DEFAULT_MAX_CHARS,
        **settings: Any,
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
        Verdicts record a :class:`~safegen.ModerationPolicy`'s ``sha256`` and ``version``.

        :param policy: a :class:`~safegen.ModerationPolicy` (its ``prompts``) or a
            :class:`~safegen.PromptPolicy`.
        :param settings: other keywords of the constructor (``observer``, ...).
        :raises ConfigurationError: a setting is refused; the message names it.
        """
        return cls._from_policy(
            policy, classifiers=classifiers, strategy=strategy, max_chars=max_chars, **settings
        )

    def moderate(self, prompt: str, *, policy: ModerationPolicy | None = None) -> PromptVerdict:
        """Moderate one prompt.

        :param policy: judge this prompt by *policy*'s ``[prompts]`` section instead (a
            stricter policy for one account, say). The policy replaces this moderator's
            policy (thresholds, categories and their actions, the shipped lists as it adjusts
            them, a guardrail it names), as :meth:`from_policy` would build from it; this
            moderator's own checks stay: its own ``rules`` are still scanned and judged by
            its ``rule_action`` (or its own policy), its classifiers still run (without a
            policy of its own, each classifier's action stands and may only be raised), the
            stricter ``on_failure`` applies, and a check fails open only if both this
            moderator and *policy* name it in ``fail_open``. A guardrail's intervention is
            never ALLOW. The verdict records which policy judged it.
        :raises InvalidPromptError: *prompt* is not a string or is longer than ``max_chars``.
        :raises ConfigurationError: *policy* is not a :class:`~safegen.ModerationPolicy`.
        """
        verdict = self._check(prompt, policy)
        tell(self._observers, "prompt_checked", verdict)
        return verdict

    def _check(self, prompt: str, policy: ModerationPolicy | None) -> PromptVerdict:
        """Moderate *prompt*, telling no observer."""
        moderator: PromptModerator = self._for_policy(policy)
        return moderator._moderate(prompt)

    def _moderate(self, prompt: str) -> PromptVerdict:
        self.validate(prompt)
        text = sendable(prompt)
        asks = [functools.partial(self._ask, c, text) for c in self.classifiers]
        if self.strategy == "parallel":
            rules: list[Callable[[], list[_Outcome]]] = (
                [functools.partial(self._rule_outcomes, prompt)] if self._has_rules else []
            )
            batches = _in_parallel([*rules, *(_one(ask) for ask in asks)])
            return self._verdict([o for batch in batches for o in batch])
        outcomes = self._rule_outcomes(prompt)
        skipped = self._skipped(outcomes)
        outcomes += skipped if skipped is not None else [ask() for ask in asks]
        return self._verdict(outcomes)

    def _ask(self, classifier: TextClassifier, text: str) -> _Outcome:
        """Ask *classifier*; a failure is its check's."""
        return self._outcome(
            classifier.name,
            time.perf_counter(),
            lambda: self._classified(classifier.name, classifier.classify(text)),
        )


@attrs.frozen
class _Outcome:
    check: CheckResult
    findings: tuple[PromptFinding, ...] = ()


def _one(check: Callable[[], _Outcome]) -> Callable[[], list[_Outcome]]:
    return lambda: [check()]


def _in_parallel(checks: list[Callable[[], list[_Outcome]]]) -> list[list[_Outcome]]:
    if len(checks) <= 1:
        return [check() for check in checks]
    with ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="safegen-check") as pool:
        futures = [pool.submit(check) for check in checks]
        return [future.result() for future in futures]

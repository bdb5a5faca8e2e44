"""Prompt moderation: forbidden-term rules and ML classifiers, combined into one verdict.

A :class:`PromptModerator` runs the rule filter and any :class:`~safegen.ports.TextClassifier`
on a prompt and returns a :class:`PromptVerdict`: the action, every finding with where it came
from, which checks ran, and how long each took. It fails closed: a check that cannot run makes
the verdict ``BLOCK`` (or the action you choose) unless you opted that check out with
``fail_open``.

Only the prompt is moderated. A negative prompt names what must *not* appear; it is never
passed through the rule filter or the classifiers.
"""

from __future__ import annotations

import enum
import functools
import logging
import re
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import attrs

from safegen.decision import Action
from safegen.errors import InvalidPromptError, PolicyError, SafegenError
from safegen.ports import TextClassifier
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


@attrs.frozen
class PromptFinding:
    """One thing a check found in a prompt.

    :param source: the check that found it: ``"rules"`` or a classifier's name.
    :param label: the term that matched, or the classifier's label (e.g. ``"SEXUAL"``).
    :param score: how sure the check is, 0-100 (100 for a rule match).
    :param action: what this finding alone calls for: ``REVIEW`` or ``BLOCK``.
    :param category: the term's category, for a rule match.
    :param span: ``(start, end)`` in the prompt, where the check can say.
    :param match: the full rule match (with the transforms that exposed it), for rules.
    """

    source: str
    label: str
    score: float
    action: Action
    category: str | None = None
    span: tuple[int, int] | None = None
    match: RuleMatch | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the finding as plain JSON-ready data."""
        return {
            "source": self.source,
            "label": self.label,
            "score": self.score,
            "action": self.action.value,
            "category": self.category,
            "span": None if self.span is None else list(self.span),
            "transforms": None if self.match is None else self.match.to_dict()["transforms"],
        }


@attrs.frozen
class TextReport:
    """What a classifier reports for one prompt.

    :param findings: what it found at or above its own thresholds.
    :param notes: what it could not fully judge, said plainly (e.g. a language it does not
        support, or a prompt split into several calls).
    """

    findings: tuple[PromptFinding, ...] = ()
    notes: tuple[str, ...] = ()


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


class PromptModerator:
    """Moderate prompts with forbidden-term rules and ML classifiers.

    :param rules: the rule filter; ``None`` for none. (Use :meth:`RuleFilter.default
        <safegen.RuleFilter.default>` for the shipped list.)
    :param classifiers: text classifiers, e.g. :class:`safegen.aws.ComprehendToxicity`.
    :param strategy: ``"cascade"`` runs the rules first and skips the (paid) classifiers
        when the rules already block; ``"parallel"`` runs everything at once, so the time
        taken is the slowest check's, not the sum.
    :param rule_action: what a rule match calls for (``BLOCK`` by default).
    :param fail_open: names of checks whose failure counts as safe. Without it, a check that
        cannot run gives *on_failure*.
    :param on_failure: the action when a check (not in *fail_open*) fails: ``BLOCK`` by
        default, or ``REVIEW``; never ``ALLOW``.
    :param max_chars: the longest prompt accepted; longer raises :class:`InvalidPromptError`.
    :raises PolicyError: the configuration contradicts itself.

    >>> moderator = PromptModerator(rules=RuleFilter(["gore"]))
    >>> moderator.moderate("a g0r3 scene").action
    <Action.BLOCK: 'block'>
    """

    def __init__(
        self,
        rules: RuleFilter | None = None,
        classifiers: Sequence[TextClassifier] = (),
        *,
        strategy: Literal["cascade", "parallel"] = "cascade",
        rule_action: Action = Action.BLOCK,
        fail_open: Collection[str] = (),
        on_failure: Action = Action.BLOCK,
        max_chars: int = DEFAULT_MAX_CHARS,
    ) -> None:
        if strategy not in ("cascade", "parallel"):
            raise PolicyError(f'strategy: must be "cascade" or "parallel", got {strategy!r}')
        if on_failure is Action.ALLOW:
            raise PolicyError("on_failure: ALLOW would fail open; name the check in fail_open")
        if rule_action is Action.ALLOW:
            raise PolicyError("rule_action: a rule match must call for REVIEW or BLOCK")
        names = [RULES, *(c.name for c in classifiers)]
        if len(set(names)) != len(names):
            raise PolicyError(f"checks must have distinct names, got {names}")
        unknown = set(fail_open) - set(names)
        if unknown:
            raise PolicyError(f"fail_open: no check named {sorted(unknown)}")
        if max_chars < 1:
            raise PolicyError(f"max_chars: must be positive, got {max_chars}")
        self.rules = rules
        self.classifiers = tuple(classifiers)
        self.strategy = strategy
        self.rule_action = rule_action
        self.fail_open = frozenset(fail_open)
        self.on_failure = on_failure
        self.max_chars = max_chars

    def moderate(self, prompt: str) -> PromptVerdict:
        """Moderate one prompt.

        :raises InvalidPromptError: *prompt* is not a string or is longer than ``max_chars``.
        """
        self.validate(prompt)
        # Lone surrogates cannot be sent to a service as UTF-8: classifiers see U+FFFD there.
        sendable = _SURROGATE.sub("\ufffd", prompt)
        checks: list[Callable[[], _Outcome]] = []
        if self.rules is not None:
            rules = self.rules
            checks.append(lambda: self._run(RULES, lambda: self._rule_report(rules, prompt)))
        classifier_checks = [
            functools.partial(self._run, c.name, functools.partial(c.classify, sendable))
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
        """Return whether the rule filter alone blocks *prompt* (free and local, no service)."""
        return (
            self.rules is not None
            and self.rule_action is Action.BLOCK
            and bool(self.rules.scan(prompt))
        )

    def _rule_report(self, rules: RuleFilter, prompt: str) -> TextReport:
        return TextReport(
            tuple(
                PromptFinding(RULES, m.term, 100.0, self.rule_action, m.category, m.span, match=m)
                for m in rules.scan(prompt)
            )
        )

    def _run(self, name: str, check: Callable[[], TextReport]) -> _Outcome:
        start = time.perf_counter()
        fail_open = name in self.fail_open
        try:
            report = check()
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

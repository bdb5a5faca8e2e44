"""Async prompt moderation: the sync moderator's core, its classifiers awaited at once."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Iterable
from typing import Any, Literal

import attrs

from safegen import _checks
from safegen.aio._common import DEFAULT_TIMEOUT, answer, gather_bounded, timeout_setting
from safegen.aio._threads import in_thread
from safegen.decision import Action
from safegen.errors import ConfigurationError
from safegen.image import PolicyCache, observer_setting, overriding_policy, tell
from safegen.observe import Observer
from safegen.policy import ModerationPolicy
from safegen.ports import AsyncTextClassifier
from safegen.prompt import (
    _KEEP_NOTHING,
    DEFAULT_MAX_CHARS,
    PromptChecks,
    PromptModerator,
    PromptVerdict,
    _classifier_tuple,
    _fail_open,
    _Groups,
    _Kept,
    _kept_setting,
    _names,
    _Outcome,
    _policy,
    _rule_groups,
    _rules,
    _source_policy,
    classifiers_of,
    raised,
    sendable,
)
from safegen.prompt_policy import PromptPolicy
from safegen.text import RuleFilter

__all__ = ["AsyncPromptModerator"]

_classifiers = classifiers_of(AsyncTextClassifier, coroutine=True)


@attrs.frozen(eq=False)
class AsyncPromptModerator(PromptChecks):
    """:class:`~safegen.PromptModerator` on an event loop: the same settings and verdicts.

    The rules run on the loop (they are local and quick); the classifiers are awaited
    together, each in its own task, after the rules (with ``"cascade"``, only when the rules
    did not block). Everything but the classifiers' calls is the sync moderator's own code,
    so for the same answers the verdicts are the same. Cancelling :meth:`moderate` cancels
    every classifier call still in flight.

    :param rules: the rule filter (see :class:`~safegen.PromptModerator`).
    :param classifiers: :class:`~safegen.ports.AsyncTextClassifier` s, e.g.
        :class:`safegen.aws.aio.AsyncComprehendToxicity`, or sync ones wrapped with
        :func:`in_thread`.
    :param strategy: ``"cascade"`` or ``"parallel"`` (see :class:`~safegen.PromptModerator`).
    :param rule_action: what a severe term's match calls for without a *policy*.
    :param fail_open: names of checks whose failure counts as safe.
    :param on_failure: the action when a check fails: ``BLOCK`` (default) or ``REVIEW``.
    :param max_chars: the longest prompt accepted.
    :param policy: the :class:`~safegen.PromptPolicy` that judges every finding.
    :param source_policy: the :class:`~safegen.ModerationPolicy` *policy* came from.
    :param timeout: seconds a classifier may take before its check counts as failed;
        ``None`` for no limit of its own.
    :param observer: told about every verdict (:mod:`safegen.observe`).
    :raises ConfigurationError: a setting is refused (a sync classifier, ...); the message
        names it.

    >>> import asyncio
    >>> from safegen import RuleFilter
    >>> moderator = AsyncPromptModerator(rules=RuleFilter(["gore"]))
    >>> asyncio.run(moderator.moderate("a g0r3 scene")).action
    <Action.BLOCK: 'block'>
    """

    rules: RuleFilter | None = attrs.field(default=None, validator=_rules)
    classifiers: tuple[AsyncTextClassifier, ...] = attrs.field(
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
    timeout: float | None = attrs.field(
        default=DEFAULT_TIMEOUT, kw_only=True, validator=timeout_setting
    )
    observer: Observer | None = attrs.field(default=None, kw_only=True, validator=observer_setting)
    _kept: _Kept = attrs.field(
        default=_KEEP_NOTHING, kw_only=True, repr=False, validator=_kept_setting
    )
    _rule_groups: _Groups = attrs.field(
        init=False, repr=False, default=attrs.Factory(_rule_groups, takes_self=True)
    )
    _overrides: PolicyCache[AsyncPromptModerator] = attrs.field(
        init=False, factory=PolicyCache, repr=False
    )

    @classmethod
    def from_policy(
        cls,
        policy: ModerationPolicy | PromptPolicy,
        *,
        classifiers: Iterable[AsyncTextClassifier] = (),
        strategy: Literal["cascade", "parallel"] = "cascade",
        max_chars: int = DEFAULT_MAX_CHARS,
        **settings: Any,
    ) -> AsyncPromptModerator:
        """Build a moderator that judges prompts as *policy*'s ``[prompts]`` section says.

        As :meth:`PromptModerator.from_policy <safegen.PromptModerator.from_policy>`, with
        async classifiers (a :class:`~safegen.PolicyConfigurable` one is replaced by its copy
        judging at the policy's thresholds).

        :param settings: other keywords of the constructor (``timeout``, ``observer``, ...).
        :raises ConfigurationError: a setting is refused; the message names it.
        """
        return cls._from_policy(
            policy, classifiers=classifiers, strategy=strategy, max_chars=max_chars, **settings
        )

    @classmethod
    def from_sync(
        cls,
        moderator: PromptModerator,
        *,
        classifiers: Iterable[AsyncTextClassifier] | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> AsyncPromptModerator:
        """Build the async twin of *moderator*: its settings, and its classifiers in threads.

        :param classifiers: async classifiers to use instead of *moderator*'s own, each of
            which otherwise runs in a worker thread (:func:`in_thread`).

        :raises ConfigurationError: *moderator* is not a :class:`~safegen.PromptModerator`.
        """
        if not isinstance(moderator, PromptModerator):
            raise ConfigurationError(
                f"moderator: expected a PromptModerator, got {_checks.kind(moderator)}"
            )
        return cls(
            moderator.rules,
            [in_thread(c) for c in moderator.classifiers] if classifiers is None else classifiers,
            strategy=moderator.strategy,
            rule_action=moderator.rule_action,
            fail_open=moderator.fail_open,
            on_failure=moderator.on_failure,
            max_chars=moderator.max_chars,
            policy=moderator.policy,
            source_policy=moderator.source_policy,
            timeout=timeout,
            observer=moderator.observer,
        )

    def _carried(self) -> dict[str, Any]:
        return {"timeout": self.timeout}

    async def moderate(
        self, prompt: str, *, policy: ModerationPolicy | None = None
    ) -> PromptVerdict:
        """Moderate one prompt.

        :param policy: judge this prompt by *policy*'s ``[prompts]`` section instead (as
            :meth:`PromptModerator.moderate <safegen.PromptModerator.moderate>` does: the
            policy replaced, this moderator's own checks kept, no check opened). A policy
            not seen before is compiled in a worker thread, never on the event loop.
        :raises InvalidPromptError: *prompt* is not a string or is longer than ``max_chars``.
        :raises ConfigurationError: *policy* is not a :class:`~safegen.ModerationPolicy`.
        """
        verdict = await self._check(prompt, policy)
        tell(self._observers, "prompt_checked", verdict)
        return verdict

    async def _check(self, prompt: str, policy: ModerationPolicy | None) -> PromptVerdict:
        moderator = await self._for_policy_async(policy)
        return await moderator._moderate(prompt)

    async def _for_policy_async(self, policy: object) -> AsyncPromptModerator:
        """Return the copy for *policy*; one not compiled yet is built in a worker thread.

        Compiling a policy with its own terms takes a second or more (every shipped term is
        compiled); on the loop it would stall every other request.
        """
        override = overriding_policy(policy)
        if override is None:
            return self
        compiled: AsyncPromptModerator | None = self._compiled_for(override)
        if compiled is not None:
            return compiled
        built: AsyncPromptModerator = await asyncio.to_thread(self._for_policy, override)
        return built

    async def _moderate(self, prompt: str) -> PromptVerdict:
        self.validate(prompt)
        text = sendable(prompt)
        outcomes = self._rule_outcomes(prompt)
        skipped = self._skipped(outcomes)
        if skipped is not None:
            outcomes += skipped
        else:
            asks = functools.partial(self._ask, text=text)
            outcomes += await gather_bounded(self.classifiers, asks, max(1, len(self.classifiers)))
        return self._verdict(outcomes)

    async def _ask(self, classifier: AsyncTextClassifier, text: str) -> _Outcome:
        """Ask *classifier*; a failure, a bad answer or a timeout is its check's."""
        start = time.perf_counter()
        name = classifier.name
        result = await answer(
            functools.partial(classifier.classify, text), self.timeout, name, "classify"
        )
        if isinstance(result, BaseException):
            return self._outcome(name, start, raised(result))
        return self._outcome(name, start, lambda: self._classified(name, result))

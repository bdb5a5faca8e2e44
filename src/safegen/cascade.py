"""A cheap first look, and a paid second look only when the first is unsure.

An offline model costs nothing per image but sees little; Rekognition sees the whole taxonomy
and costs a call. A :class:`Cascade` asks the offline backend first and lets it decide when
it is sure: clearly over a block threshold, or clearly under every threshold that could apply
with nothing the policy needs beyond what it can see. Everything else goes to the second
moderator. Each verdict says which backend decided and, when the second was asked, why.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Iterator
from typing import Any, cast

import attrs

from safegen import _checks
from safegen.decision import Action, IgnoredLabel, IgnoreReason, PolicyDecision
from safegen.errors import SafegenError
from safegen.image import (
    ImageModerator,
    ImageVerdict,
    PolicyCache,
    _batch,
    _check_workers,
    _image_source,
    observer_setting,
    observers,
    overriding_policy,
    tell,
)
from safegen.labels import ContentType
from safegen.observe import Observer
from safegen.policy import ModerationPolicy
from safegen.ports import ImageBackend
from safegen.reports import ImageReport, ImageSource

__all__ = ["Cascade"]


_first = _checks.port(ImageBackend, "an image backend (name and detect)")


def _derivable(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    # Runs after every other setting was checked: build the first look now, so a first
    # policy that cannot be derived is refused at construction, not at the first image.
    instance.first_look  # noqa: B018


class CascadeRules:
    """What the sync and async cascades share: when the first look decides, and why not.

    A shell (:class:`Cascade`, :class:`safegen.aio.AsyncCascade`) asks its first look, asks
    :meth:`escalation` whether that verdict is final, and asks *then* when it is not.
    """

    first: Any
    then: Any
    first_policy: ModerationPolicy | None
    margin: float
    observer: Observer | None
    _overrides: PolicyCache[Any]

    @property
    def policy(self) -> ModerationPolicy:
        """The platform's policy: *then*'s."""
        policy: ModerationPolicy = self.then.policy
        return policy

    def _calibration_source(self) -> object:
        """Return the backend whose calibration the first policy is derived from."""
        return self.first

    def _first_look(self, moderator: type[Any]) -> Any:
        policy = self.first_policy
        if policy is None:
            policy = _derived_policy(self._calibration_source(), self.then.policy)
        return moderator(
            self.first,
            policy,
            preflight=self.then.preflight,
            min_confidence=max(0.0, policy.min_confidence - self.margin),
        )

    def _for_policy(self, policy: object) -> Any:
        """Return this cascade with *then* judging by *policy* (itself for ``None``).

        The first look's policy is derived from the override as with ``first_policy=None``:
        an explicit first policy was written against the moderator's own policy, and could
        let the first look decide what the override would have escalated.
        """
        override = overriding_policy(policy)
        if override is None:
            return self
        return self._overrides.get(
            override,
            lambda: attrs.evolve(
                cast("Any", self),
                then=self.then._for_policy(override),
                first_policy=None,
                observer=None,
            ),
        )

    def _decided(self, first: ImageVerdict) -> ImageVerdict:
        """Return the first look's verdict as final, recorded under the platform's policy."""
        return attrs.evolve(
            first, policy_sha256=self.policy.sha256, policy_version=self.policy.version
        )

    @property
    def _observers(self) -> tuple[Observer, ...]:
        return observers(self.observer, *self.then._observers)

    @property
    def _look(self) -> Any:
        raise NotImplementedError  # pragma: no cover (each shell has its first look)

    # -- the judgement, shared ---------------------------------------------------------------

    def escalation(self, verdict: ImageVerdict) -> str | None:
        """Why *first*'s verdict is not final, or ``None`` when it decides."""
        decision, report = verdict.decision, verdict.report
        if verdict.failed or decision is None or report is None:
            return f"{verdict.backend} failed: {verdict.error}"
        if _sure_block(decision, self.margin):
            return None
        try:
            return self._unsure(verdict.backend, decision, report)
        except SafegenError as error:  # a label the policy cannot place: not sure of it
            return f"{verdict.backend} is unsure: {error}"

    def _unsure(
        self, backend: str | None, decision: PolicyDecision, report: ImageReport
    ) -> str | None:
        policy, platform = self._look.policy, self.policy
        looks = list(_looks(report))
        combos = _rule_combinations(policy, looks, self.margin)
        platform_combos = _rule_combinations(platform, looks, self.margin)
        # What the platform needs, whatever the first policy excludes, against what the looks
        # see together (an ensemble's coverage is its members' union).
        if platform.not_evaluated is not Action.ALLOW and report.coverage is not None:
            for combo in platform_combos:
                reported = [ContentType(name, 100.0) for name in combo]
                blind = platform.blind_spots(report.coverage, reported)
                if blind:
                    names = ", ".join(c.name for c in blind)
                    return f"the policy needs what {backend} cannot see: {names}"
        if decision.violations:  # a REVIEW, or a BLOCK within the margin
            violation = decision.violations[0]
            return (
                f"{backend} is unsure: {violation.category.name} at "
                f"{violation.label.confidence:g} against its {violation.action.value} "
                f"threshold {violation.threshold:g}"
            )
        for judge, judge_combos in ((policy, combos), (platform, platform_combos)):
            for combo in judge_combos:
                for name in combo:
                    action = judge.content_types[name].action
                    if action is not None and action.severity > decision.action.severity:
                        return (
                            f"{backend} cannot rule out {name} content, which the policy's "
                            f"rule for it calls {action.value}"
                        )
        for look in looks:
            for ignored in policy.evaluate(
                look.labels, look.content_types, coverage=report.coverage
            ).ignored:
                reason = self._near(ignored, policy, combos)
                if reason is None and ignored.reason is IgnoreReason.EXCLUDED:
                    # The first policy may move thresholds, never drop what the platform
                    # moderates: a label only it excludes is not judged at all.
                    reason = _platform_moderates(ignored, platform, platform_combos)
                if reason is not None:
                    return f"{backend} is unsure: {reason}"
        return None

    def _near(
        self, ignored: IgnoredLabel, policy: ModerationPolicy, combos: list[tuple[str, ...]]
    ) -> str | None:
        """Why a label that did not count could count, or ``None`` when it surely cannot.

        It did not count for one reason or another (below its threshold, excluded, or
        explained by a more specific label). It surely cannot count only when it is at
        least *margin* under the lowest threshold it could meet under any rule that could
        apply, and no such rule leaves it free of an exclusion.
        """
        confidence = ignored.label.confidence
        for combo in combos:
            effective = policy.thresholds_for(ignored.category, combo)
            if effective.excluded_by is not None:
                continue
            threshold = effective.review_at
            if confidence <= threshold - self.margin:
                continue
            under = ""
            if policy.content_types:
                under = (
                    f" if the content is {', '.join(combo)}"
                    if combo
                    else " if no content-type rule applies"
                )
            name = ignored.category.name
            if confidence >= threshold:
                return (
                    f"{name} at {confidence:g} would count against its threshold "
                    f"{threshold:g}{under}"
                )
            return (
                f"{name} at {confidence:g} is within {self.margin:g} of its threshold "
                f"{threshold:g}{under}"
            )
        return None


@attrs.frozen(eq=False)
class Cascade(CascadeRules):
    """Moderate with *first*; ask *then* only when *first* is unsure or cannot see enough.

    *first* decides an image when:

    - a label is at least *margin* over its block threshold (BLOCK: no other look can make
      it stricter), or
    - every label it reported is at least *margin* under every threshold that could apply
      to it, and nothing else could make the image stricter: the policy needs nothing
      *first* cannot see (it excludes the rest, or its ``not_evaluated`` is ``"allow"``),
      and no content-type rule that *first* cannot rule out calls for a stricter action.

    A threshold *could apply* under any content-type rule *first* cannot rule out: a rule
    applies for sure when *first* reports its content type at least *margin* over the
    rule's ``min_confidence``, and for sure not when at least *margin* under it; a content
    type *first* did not report at all could be there. *first* is asked for scores down to
    *margin* under the policy's :attr:`~safegen.ModerationPolicy.min_confidence`, so a
    near miss the policy alone would not ask for is seen too.

    **The margin's edges.** A score exactly *margin* away from a threshold is sure: with a
    threshold of 50 and a margin of 10, scores of 40 and 60 are sure, any score strictly
    between them is unsure. A margin of 0 makes every score sure.

    Anything else (a near miss, a REVIEW, a blind spot that matters, a failure of *first*)
    goes to *then*, whose verdict is final, failures included. Every verdict records the
    platform's policy (*then*'s, or the per-request one).

    Frozen: ``attrs.evolve`` makes a changed copy, checked again.

    :param first: the cheap backend, e.g. :class:`safegen.local.OpenNSFW`.
    :param then: the moderator with the platform's policy, e.g. Rekognition's.
    :param first_policy: how *first*'s scores are judged. ``None`` (the default) means
        *then*'s policy, with *first*'s calibrated thresholds under it when *first* has them
        (:func:`safegen.local.recommended_policy`), so both looks moderate the same concepts.
        A first policy may move thresholds for its model but never drops what the platform
        moderates: blind spots and content-type rules are judged by *then*'s policy too, and
        a label only the first policy excludes sends the image to *then*.
    :param margin: how far (0-100) from a threshold a score must be to count as sure.
    :param observer: told about every final verdict (:mod:`safegen.observe`), as is
        *then*'s observer (one object is told once).
    :raises ConfigurationError: a setting is refused (e.g. *margin* outside 0-100); the
        message names it.
    """

    first: ImageBackend = attrs.field(validator=_first)
    then: ImageModerator = attrs.field(
        validator=_checks.instance_of(ImageModerator, what="an ImageModerator")
    )
    first_policy: ModerationPolicy | None = attrs.field(
        default=None,
        kw_only=True,
        validator=_checks.optional(_checks.instance_of(ModerationPolicy, what="a policy")),
    )
    observer: Observer | None = attrs.field(default=None, kw_only=True, validator=observer_setting)
    margin: float = attrs.field(default=10.0, kw_only=True, validator=[_checks.score, _derivable])
    _overrides: PolicyCache[Cascade] = attrs.field(init=False, factory=PolicyCache, repr=False)

    @functools.cached_property
    def first_look(self) -> ImageModerator:
        """The moderator that takes the first look: *first*, judged by the first policy.

        It asks *first* for scores down to *margin* under the policy's ``min_confidence``
        and checks images with *then*'s preflight.
        """
        look: ImageModerator = self._first_look(ImageModerator)
        return look

    @property
    def _look(self) -> ImageModerator:
        return self.first_look

    def moderate(
        self, image: ImageSource, *, policy: ModerationPolicy | None = None
    ) -> ImageVerdict:
        """Moderate one image; the verdict's ``backend`` says who decided.

        :param policy: judge this image by *policy* instead of *then*'s (see
            :meth:`ImageModerator.moderate <safegen.ImageModerator.moderate>`); the first
            look's policy is derived from it as with ``first_policy=None``.
        :raises ConfigurationError: *policy* is not a :class:`~safegen.ModerationPolicy`.
        """
        verdict = self._check(_image_source(image), policy)
        tell(self._observers, "image_checked", verdict)
        return verdict

    def _check(self, image: ImageSource, policy: ModerationPolicy | None) -> ImageVerdict:
        cascade: Cascade = self._for_policy(policy)
        verdict = cascade.first_look._check(image, None)
        reason = cascade.escalation(verdict)
        if reason is None:
            return cascade._decided(verdict)
        return _escalated(cascade.then._check(image, None), reason, verdict)

    def moderate_many(
        self,
        images: Iterable[ImageSource],
        *,
        max_workers: int = 8,
        per_second: float | None = None,
        policy: ModerationPolicy | None = None,
    ) -> list[ImageVerdict]:
        """Moderate many images: *first* on all of them, then *then* on the unsure ones.

        :param max_workers: at most this many images at a time, in each stage.
        :param per_second: the second moderator's request rate (its quota); see
            :meth:`ImageModerator.moderate_many <safegen.ImageModerator.moderate_many>`.
        :param policy: judge every image by *policy* instead (see :meth:`moderate`).
        :raises ConfigurationError: *max_workers* or *per_second* is not positive, or
            *policy* is not a :class:`~safegen.ModerationPolicy`.
        """
        verdicts = self._check_many(
            images, max_workers=max_workers, per_second=per_second, policy=policy
        )
        for verdict in verdicts:
            tell(self._observers, "image_checked", verdict)
        return verdicts

    def _check_many(
        self,
        images: Iterable[ImageSource],
        *,
        max_workers: int = 8,
        per_second: float | None = None,
        policy: ModerationPolicy | None = None,
    ) -> list[ImageVerdict]:
        _check_workers(max_workers, per_second)
        cascade: Cascade = self._for_policy(policy)
        batch = _batch(images)
        firsts = cascade.first_look._check_many(batch, max_workers=max_workers)
        reasons = [cascade.escalation(verdict) for verdict in firsts]
        unsure = [i for i, reason in enumerate(reasons) if reason is not None]
        finals = cascade.then._check_many(
            [batch[i] for i in unsure], max_workers=max_workers, per_second=per_second
        )
        verdicts = [cascade._decided(first) for first in firsts]
        for index, final in zip(unsure, finals, strict=True):
            verdicts[index] = _escalated(final, reasons[index], firsts[index])
        return verdicts


def _platform_moderates(
    ignored: IgnoredLabel, platform: ModerationPolicy, combos: list[tuple[str, ...]]
) -> str | None:
    """Why a label the first policy excluded matters to the platform, or ``None``."""
    for combo in combos:
        if platform.thresholds_for(ignored.category, combo).excluded_by is None:
            return (
                f"{ignored.category.name} at {ignored.label.confidence:g} is excluded by the "
                "first look's policy, not by the platform's"
            )
    return None


def _derived_policy(first: object, policy: ModerationPolicy) -> ModerationPolicy:
    from safegen.local.calibration import CalibratedBackend

    if isinstance(first, CalibratedBackend):
        from safegen.local import recommended_policy

        return recommended_policy(first, policy)
    return policy


def _looks(report: ImageReport) -> Iterator[ImageReport]:
    """Yield the report and, depth first, every report it combines."""
    yield report
    for part in report.parts:
        yield from _looks(part)


def _rule_combinations(
    policy: ModerationPolicy, looks: list[ImageReport], margin: float
) -> list[tuple[str, ...]]:
    """Every set of the policy's content-type rules that could apply, by what was reported.

    A rule applies for sure when its content type was reported at least *margin* over the
    rule's ``min_confidence``, and for sure not when reported at least *margin* under it;
    otherwise (near its ``min_confidence``, or not reported at all) it may apply or not.
    """
    strongest: dict[str, float] = {}
    for look in looks:
        for content_type in look.content_types:
            name = policy.taxonomy.content_type(content_type.name)
            if name is not None:
                strongest[name] = max(strongest.get(name, 0.0), content_type.confidence)
    sure: list[str] = []
    maybe: list[str] = []
    for name, rule in policy.content_types.items():
        reported = strongest.get(name)
        if reported is not None and reported >= rule.min_confidence + margin:
            sure.append(name)
        elif reported is None or reported > rule.min_confidence - margin:
            maybe.append(name)
    return [
        tuple(sorted((*sure, *chosen)))
        for size in range(len(maybe) + 1)
        for chosen in itertools.combinations(maybe, size)
    ]


def _escalated(final: ImageVerdict, reason: str | None, first: ImageVerdict) -> ImageVerdict:
    """Return *final* saying why it was asked for, counting the first look's time too."""
    return attrs.evolve(final, escalation=reason, seconds=final.seconds + first.seconds)


def _sure_block(decision: PolicyDecision, margin: float) -> bool:
    # A content-type rule's outright action can overrule the labels: then it is no sure BLOCK.
    return decision.action is Action.BLOCK and any(
        v.action is Action.BLOCK and v.label.confidence >= v.threshold + margin
        for v in decision.violations
    )

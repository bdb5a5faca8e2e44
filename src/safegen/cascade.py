"""A cheap first look, and a paid second look only when the first is unsure.

An offline model costs nothing per image but sees little; Rekognition sees the whole taxonomy
and costs a call. A :class:`Cascade` asks the offline backend first and lets it decide when
it is sure: clearly over a block threshold, or clearly under every threshold with nothing the
policy needs beyond what it can see. Everything else goes to the second moderator. Each
verdict says which backend decided and, when the second was asked, why.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from safegen.decision import Action, IgnoreReason, PolicyDecision
from safegen.errors import PolicyError
from safegen.image import ImageModerator, ImageSource, ImageVerdict
from safegen.local.calibration import CalibratedBackend
from safegen.policy import ModerationPolicy
from safegen.ports import ImageBackend

__all__ = ["Cascade"]


class Cascade:
    """Moderate with *first*; ask *then* only when *first* is unsure or cannot see enough.

    *first* decides an image when:

    - a label is at least *margin* over its block threshold (BLOCK: no other look can make
      it safer under a policy where one violation blocks), or
    - every label is more than *margin* under its thresholds, and the policy needs nothing
      *first* cannot see (it excludes the rest, or its ``not_evaluated`` is ``"allow"``).

    Anything else (a near miss, a REVIEW, a blind spot that matters, a failure of *first*)
    goes to *then*, whose verdict is final, failures included.

    :param first: the cheap backend, e.g. :class:`safegen.local.OpenNSFW`.
    :param then: the moderator with the platform's policy, e.g. Rekognition's.
    :param first_policy: how *first*'s scores are judged. By default *then*'s policy, with
        *first*'s calibrated thresholds under it when *first* has them
        (:func:`safegen.local.recommended_policy`), so both looks moderate the same concepts.
    :param margin: how far (0-100) from a threshold a score must be to count as sure.
    :raises PolicyError: *margin* is outside 0-100.
    """

    def __init__(
        self,
        first: ImageBackend,
        then: ImageModerator,
        *,
        first_policy: ModerationPolicy | None = None,
        margin: float = 10.0,
    ) -> None:
        if not 0 <= margin <= 100:
            raise PolicyError(f"margin: must be from 0 to 100, got {margin!r}")
        if first_policy is None:
            if isinstance(first, CalibratedBackend):
                from safegen.local import recommended_policy

                first_policy = recommended_policy(first, then.policy)
            else:
                first_policy = then.policy
        self.first = ImageModerator(first, first_policy, preflight=then.preflight)
        self.then = then
        self.margin = margin

    @property
    def policy(self) -> ModerationPolicy:
        """The platform's policy: *then*'s."""
        return self.then.policy

    def moderate(self, image: ImageSource) -> ImageVerdict:
        """Moderate one image; the verdict's ``backend`` says who decided."""
        verdict = self.first.moderate(image)
        reason = self.escalation(verdict)
        if reason is None:
            return verdict
        return _escalated(self.then.moderate(image), reason, verdict)

    def moderate_many(
        self,
        images: Iterable[ImageSource],
        *,
        max_workers: int = 8,
        per_second: float | None = None,
    ) -> list[ImageVerdict]:
        """Moderate many images: *first* on all of them, then *then* on the unsure ones.

        :param max_workers: at most this many images at a time, in each stage.
        :param per_second: the second moderator's request rate (its quota); see
            :meth:`ImageModerator.moderate_many <safegen.ImageModerator.moderate_many>`.
        """
        batch = list(images)
        firsts = self.first.moderate_many(batch, max_workers=max_workers)
        reasons = [self.escalation(verdict) for verdict in firsts]
        unsure = [i for i, reason in enumerate(reasons) if reason is not None]
        finals = self.then.moderate_many(
            [batch[i] for i in unsure], max_workers=max_workers, per_second=per_second
        )
        verdicts = list(firsts)
        for index, final in zip(unsure, finals, strict=True):
            verdicts[index] = _escalated(final, reasons[index], firsts[index])
        return verdicts

    def escalation(self, verdict: ImageVerdict) -> str | None:
        """Why *first*'s verdict is not final, or ``None`` when it decides."""
        decision = verdict.decision
        if verdict.failed or decision is None:
            return f"{verdict.backend} failed: {verdict.error}"
        if _sure_block(decision, self.margin):
            return None
        if decision.not_evaluated is not None and self.policy.not_evaluated is not Action.ALLOW:
            names = ", ".join(c.name for c in decision.not_evaluated.categories)
            return f"the policy needs what {verdict.backend} cannot see: {names}"
        if decision.violations:  # a REVIEW, or a BLOCK within the margin
            violation = decision.violations[0]
            return (
                f"{verdict.backend} is unsure: {violation.category.name} at "
                f"{violation.label.confidence:g} against its {violation.action.value} "
                f"threshold {violation.threshold:g}"
            )
        for ignored in decision.ignored:
            if (
                ignored.reason is IgnoreReason.BELOW_THRESHOLD
                and ignored.threshold is not None
                and ignored.label.confidence > ignored.threshold - self.margin
            ):
                return (
                    f"{verdict.backend} is unsure: {ignored.category.name} at "
                    f"{ignored.label.confidence:g} is within {self.margin:g} of its threshold "
                    f"{ignored.threshold:g}"
                )
        return None


def _escalated(final: ImageVerdict, reason: str | None, first: ImageVerdict) -> ImageVerdict:
    """Return *final* saying why it was asked for, counting the first look's time too."""
    return attrs.evolve(final, escalation=reason, seconds=final.seconds + first.seconds)


def _sure_block(decision: PolicyDecision, margin: float) -> bool:
    return any(
        v.action is Action.BLOCK and v.label.confidence >= v.threshold + margin
        for v in decision.violations
    )

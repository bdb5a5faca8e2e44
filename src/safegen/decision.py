"""What a moderation policy decides about an image, and why."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any, Literal

import attrs

from safegen.labels import ModerationLabel
from safegen.taxonomy import Category

__all__ = [
    "Action",
    "ContentTypeMatch",
    "IgnoreReason",
    "IgnoredLabel",
    "NotEvaluated",
    "PolicyDecision",
    "PolicySource",
    "Violation",
]


class Action(enum.Enum):
    """What to do with the content: from least to most severe, ALLOW, REVIEW, BLOCK."""

    ALLOW = "allow"
    REVIEW = "review"
    BLOCK = "block"

    @property
    def severity(self) -> int:
        """0 for ALLOW, 1 for REVIEW, 2 for BLOCK: compare actions with this."""
        return _SEVERITY[self]

    @classmethod
    def strictest(cls, actions: Iterable[Action]) -> Action:
        """Return the most severe of *actions* (``ALLOW`` when there are none)."""
        return max(actions, key=_SEVERITY.__getitem__, default=cls.ALLOW)


_SEVERITY = {Action.ALLOW: 0, Action.REVIEW: 1, Action.BLOCK: 2}


class IgnoreReason(enum.Enum):
    """Why a reported label did not count against the content."""

    BELOW_THRESHOLD = "below_threshold"
    """Its confidence is under the lowest threshold (review or block) that applies to it."""
    EXCLUDED = "excluded"
    """It is, or lies under, a concept the policy does not moderate."""
    EXPLAINED_BY_DESCENDANT = "explained_by_descendant"
    """A more specific label under it was reported at least as confidently, so it is judged
    through that label (excluding or loosening a specific concept is not undone by its L1)."""


@attrs.frozen
class PolicySource:
    """Where in a policy a threshold or an exclusion was set.

    :param setting: ``"block_at"``, ``"review_at"`` or ``"exclude"``.
    :param label: the configured label as the policy file spells it; ``None`` for the
        policy-wide default threshold.
    :param content_type: the content-type rule the setting belongs to; ``None`` for the
        policy's top level.

    >>> str(PolicySource("block_at", "Explicit Nudity"))
    'labels."Explicit Nudity".block_at'
    >>> str(PolicySource("exclude", "Weapons", content_type="Animated"))
    'content_types.Animated.exclude "Weapons"'
    """

    setting: Literal["block_at", "review_at", "exclude"]
    label: str | None = None
    content_type: str | None = None

    def __str__(self) -> str:
        prefix = f"content_types.{self.content_type}." if self.content_type else ""
        if self.setting == "exclude":
            return f'{prefix}exclude "{self.label}"'
        if self.label is None:
            return f"{prefix}{self.setting}"
        return f'{prefix}labels."{self.label}".{self.setting}'

    def to_dict(self) -> dict[str, Any]:
        """Return the source as plain JSON-ready data."""
        return {"setting": self.setting, "label": self.label, "content_type": self.content_type}


@attrs.frozen
class Violation:
    """A reported label that counted: its confidence met a threshold.

    :param label: the label as the backend reported it.
    :param category: where the label sits in the taxonomy.
    :param action: ``BLOCK`` or ``REVIEW``: which threshold it met.
    :param threshold: the threshold it met.
    :param source: the policy entry that set that threshold.
    """

    label: ModerationLabel
    category: Category
    action: Action
    threshold: float
    source: PolicySource

    def __str__(self) -> str:
        return (
            f"{self.action.value}: {self.category} at {self.label.confidence:g} "
            f">= {self.threshold:g} ({self.source})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the violation as plain JSON-ready data."""
        return {
            "label": self.label.to_dict(),
            "path": list(self.category.path),
            "action": self.action.value,
            "threshold": self.threshold,
            "source": self.source.to_dict(),
        }


@attrs.frozen
class IgnoredLabel:
    """A reported label that did not count, and why.

    :param label: the label as the backend reported it.
    :param category: where the label sits in the taxonomy.
    :param reason: why it did not count.
    :param threshold: for :attr:`IgnoreReason.BELOW_THRESHOLD`, the lowest threshold it
        would have had to meet.
    :param source: the policy entry behind the reason: the threshold's or the exclusion's.
    :param explained_by: for :attr:`IgnoreReason.EXPLAINED_BY_DESCENDANT`, the more
        specific label it is judged through.
    """

    label: ModerationLabel
    category: Category
    reason: IgnoreReason
    threshold: float | None = None
    source: PolicySource | None = None
    explained_by: ModerationLabel | None = None

    def __str__(self) -> str:
        what = f"ignored: {self.category} at {self.label.confidence:g}"
        if self.reason is IgnoreReason.BELOW_THRESHOLD:
            return f"{what}: below {self.threshold:g} ({self.source})"
        if self.reason is IgnoreReason.EXCLUDED:
            return f"{what}: excluded ({self.source})"
        by = self.explained_by
        detail = f"{by.name!r} at {by.confidence:g}" if by else "a more specific label"
        return f"{what}: explained by {detail}"

    def to_dict(self) -> dict[str, Any]:
        """Return the ignored label as plain JSON-ready data."""
        return {
            "label": self.label.to_dict(),
            "path": list(self.category.path),
            "reason": self.reason.value,
            "threshold": self.threshold,
            "source": None if self.source is None else self.source.to_dict(),
            "explained_by": None if self.explained_by is None else self.explained_by.to_dict(),
        }


@attrs.frozen
class ContentTypeMatch:
    """A content-type rule that applied because the backend reported its content type.

    :param name: the content type, e.g. ``"Animated"``.
    :param confidence: how confidently the backend reported it.
    :param min_confidence: the rule's own bar, which *confidence* met.
    :param action: the rule's outright action, if it has one.
    """

    name: str
    confidence: float
    min_confidence: float
    action: Action | None = None

    def __str__(self) -> str:
        outright = f", {self.action.value} outright" if self.action else ""
        return (
            f"content type {self.name} at {self.confidence:g} "
            f">= {self.min_confidence:g}: its rule applies{outright}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the match as plain JSON-ready data."""
        return {
            "name": self.name,
            "confidence": self.confidence,
            "min_confidence": self.min_confidence,
            "action": None if self.action is None else self.action.value,
        }


@attrs.frozen
class NotEvaluated:
    """Categories the policy moderates that the backend cannot see, and what that costs.

    An offline model sees a few categories (nudity, say); the rest of the taxonomy is not
    evaluated rather than safe. The policy's ``not_evaluated`` setting says what that means.

    :param categories: the largest blind subtrees the policy moderates (excluded ones are
        left out), in taxonomy order.
    :param action: what the policy does about them: its ``not_evaluated`` setting.
    """

    categories: tuple[Category, ...]
    action: Action

    def __str__(self) -> str:
        names = ", ".join(category.name for category in self.categories)
        return f"{self.action.value}: not evaluated by the backend: {names} (not_evaluated)"

    def to_dict(self) -> dict[str, Any]:
        """Return the gap as plain JSON-ready data."""
        return {
            "paths": [list(category.path) for category in self.categories],
            "action": self.action.value,
        }


def _violations(value: Iterable[Violation]) -> tuple[Violation, ...]:
    return tuple(value)


def _ignored(value: Iterable[IgnoredLabel]) -> tuple[IgnoredLabel, ...]:
    return tuple(value)


def _matches(value: Iterable[ContentTypeMatch]) -> tuple[ContentTypeMatch, ...]:
    return tuple(value)


@attrs.frozen
class PolicyDecision:
    """The action a policy takes on one moderation result, with every reason.

    :param action: what to do with the content.
    :param violations: the labels that counted, most severe first.
    :param ignored: the labels that did not count, with why.
    :param content_types: the content-type rules that applied.
    :param decided_by: when a content-type rule's outright action set ``action``, that
        content type's name.
    :param not_evaluated: what the policy moderates that the backend could not see, when the
        backend said what it covers (offline models); ``None`` when it sees everything.
    """

    action: Action
    violations: tuple[Violation, ...] = attrs.field(default=(), converter=_violations)
    ignored: tuple[IgnoredLabel, ...] = attrs.field(default=(), converter=_ignored)
    content_types: tuple[ContentTypeMatch, ...] = attrs.field(default=(), converter=_matches)
    decided_by: str | None = None
    not_evaluated: NotEvaluated | None = None

    def reasons(self) -> tuple[str, ...]:
        """Return one human-readable line per reason, in the order they matter."""
        lines = [str(match) for match in self.content_types]
        if self.decided_by is not None:
            lines.append(f"decided by the {self.decided_by} content-type rule")
        lines.extend(str(violation) for violation in self.violations)
        if self.not_evaluated is not None:
            lines.append(str(self.not_evaluated))
        lines.extend(str(ignored) for ignored in self.ignored)
        return tuple(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return the decision as plain JSON-ready data (stable keys, for audit logs)."""
        return {
            "action": self.action.value,
            "violations": [v.to_dict() for v in self.violations],
            "ignored": [i.to_dict() for i in self.ignored],
            "content_types": [m.to_dict() for m in self.content_types],
            "decided_by": self.decided_by,
            "not_evaluated": None if self.not_evaluated is None else self.not_evaluated.to_dict(),
        }

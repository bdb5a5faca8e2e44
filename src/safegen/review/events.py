"""What the review store, its audit trail and its hooks say to each other.

An uploaded image has one :class:`AssetStatus`. Each change of status is a :class:`StatusChange`
that notifiers hear about; what moderation decided is kept as a :class:`VerdictSummary`: the
labels, the action and the versions that decided it, never the image.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

if TYPE_CHECKING:
    from safegen.image import ImageVerdict
    from safegen.policy import ModerationPolicy

__all__ = ["AssetStatus", "Invalidator", "Notifier", "StatusChange", "VerdictSummary"]


class AssetStatus(enum.Enum):
    """Where an uploaded image stands."""

    APPROVED = "approved"
    """Deliverable: in the live area."""
    PENDING = "pending"
    """Waiting for a person (moderation asked for review, or could not run): not deliverable."""
    REJECTED = "rejected"
    """Blocked: moved to the backup area, never delivered until a person approves it."""


def _text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{type(instance).__name__}.{attribute.name}: must be a non-empty string")


def _optional_text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _text(instance, attribute, value)


def _pairs(value: Iterable[tuple[str, float]]) -> tuple[tuple[str, float], ...]:
    return tuple((str(name), float(confidence)) for name, confidence in value)


@attrs.frozen(kw_only=True)
class VerdictSummary:
    """What moderation decided about an image, as an audit trail may keep it (no pixels).

    :param action: ``"allow"``, ``"review"`` or ``"block"``.
    :param labels: the labels that counted, as ``(name, confidence)`` pairs.
    :param model_version: the backend's model version, when it said.
    :param adapter_version: the custom adapter that answered, if any.
    :param backend: the backend whose answer was judged.
    :param error: why the check failed, when it did.
    :param policy_version: the policy's :attr:`~safegen.ModerationPolicy.version`.
    :param policy_sha256: the policy's :attr:`~safegen.ModerationPolicy.sha256`.
    """

    action: str = attrs.field(validator=attrs.validators.in_(("allow", "review", "block")))
    labels: tuple[tuple[str, float], ...] = attrs.field(default=(), converter=_pairs)
    model_version: str | None = None
    adapter_version: str | None = None
    backend: str | None = None
    error: str | None = None
    policy_version: str | None = None
    policy_sha256: str | None = None

    @classmethod
    def of(cls, verdict: ImageVerdict, policy: ModerationPolicy | None = None) -> VerdictSummary:
        """Summarise *verdict*, judged under *policy*."""
        decision, report = verdict.decision, verdict.report
        labels = (
            ()
            if decision is None
            else tuple((str(v.category), v.label.confidence) for v in decision.violations)
        )
        return cls(
            action=verdict.action.value,
            labels=labels,
            model_version=None if report is None else report.model_version,
            adapter_version=None if report is None else report.adapter_version,
            backend=verdict.backend,
            error=verdict.error,
            policy_version=None if policy is None else policy.version,
            policy_sha256=None if policy is None else policy.sha256,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as plain JSON-ready data."""
        out = attrs.asdict(self)
        out["labels"] = [[name, confidence] for name, confidence in self.labels]
        return out


@attrs.frozen(kw_only=True)
class StatusChange:
    """An image's status changed (or was first set, when *before* is ``None``).

    :param key: the image's key in the store.
    :param before: its status before, ``None`` for a new upload.
    :param after: its status now.
    :param actor: who changed it: ``"moderation"`` for an upload, else the reviewer.
    :param reason: why, in the reviewer's words (never the image or a prompt).
    :param at: when, as an ISO 8601 UTC timestamp.
    """

    key: str = attrs.field(validator=_text)
    before: AssetStatus | None = attrs.field(
        validator=attrs.validators.optional(attrs.validators.instance_of(AssetStatus))
    )
    after: AssetStatus = attrs.field(validator=attrs.validators.instance_of(AssetStatus))
    actor: str = attrs.field(validator=_text)
    reason: str | None = attrs.field(default=None, validator=_optional_text)
    at: str = attrs.field(validator=_text)


@runtime_checkable
class Notifier(Protocol):
    """Hears about every status change (a callback, an SNS topic, an EventBridge bus)."""

    def __call__(self, change: StatusChange) -> None:
        """Deliver *change*; raise when it could not be delivered."""
        ...


@runtime_checkable
class Invalidator(Protocol):
    """Purges images no longer deliverable from a cache (CloudFront, or any callable)."""

    def __call__(self, keys: Sequence[str]) -> None:
        """Invalidate the cached copies of *keys*; raise when the request failed."""
        ...

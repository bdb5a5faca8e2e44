"""What the ports speak: image sources, and the reports image and text backends answer with.

These value types live below :mod:`safegen.ports` so that nothing imports back up the stack:
the ports, the moderators and the adapters all import them from here (the moderators'
modules re-export them, so ``from safegen.image import ImageReport`` works too).

A report is validated when it is built: a backend that answers with something that is not a
report (labels that are not labels, a score that is not a finite number from 0 to 100, a
finding that calls for nothing) raises :class:`~safegen.MalformedResponseError` while
answering, and the check that asked fails closed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import attrs

from safegen._numbers import finite, show
from safegen.decision import Action
from safegen.errors import MalformedResponseError
from safegen.labels import ContentType, ModerationLabel

if TYPE_CHECKING:
    from safegen.text import RuleMatch

__all__ = [
    "HumanLoop",
    "ImageReport",
    "ImageSource",
    "PromptFinding",
    "S3Object",
    "TextReport",
    "checked_image_report",
    "checked_text_report",
]

_T = TypeVar("_T")


def _malformed(instance: object, attribute: attrs.Attribute[Any], message: str) -> Exception:
    return MalformedResponseError(f"{type(instance).__name__}.{attribute.name}: {message}")


def _items(value: Iterable[_T] | None, owner: str) -> tuple[_T, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise MalformedResponseError(f"{owner}: expected a collection, got {type(value).__name__}")
    return tuple(value)


def _each(*types: type) -> Any:
    names = " or ".join(t.__name__ for t in types)

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, tuple):
            raise _malformed(instance, attribute, f"expected a tuple, got {type(value).__name__}")
        for item in value:
            if not isinstance(item, types):
                raise _malformed(
                    instance, attribute, f"expected {names}, got {type(item).__name__}"
                )

    return check


def _optional(*types: type) -> Any:
    names = " or ".join(t.__name__ for t in types)

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None and not isinstance(value, types):
            raise _malformed(
                instance, attribute, f"expected {names} or None, got {type(value).__name__}"
            )

    return check


def _text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise _malformed(instance, attribute, f"expected a string, got {type(value).__name__}")


@attrs.frozen
class S3Object:
    """An image stored in Amazon S3, to be read by the service where it is.

    :param bucket: the bucket's name.
    :param key: the object's key.
    :param version: the object version, if the bucket is versioned.
    """

    bucket: str
    key: str
    version: str | None = None


#: What can be moderated: the image's bytes, or where it lies in S3.
ImageSource: TypeAlias = "bytes | S3Object"


def _reasons(value: Iterable[str]) -> tuple[str, ...]:
    return _items(value, "HumanLoop.reasons")


@attrs.frozen
class HumanLoop:
    """A human review that a backend started (Amazon Augmented AI, for Rekognition).

    :param arn: the human loop's ARN.
    :param reasons: why it was started, as the service says.
    :param conditions: the service's evaluation of the activation conditions (JSON text).
    """

    arn: str | None = attrs.field(validator=_optional(str))
    reasons: tuple[str, ...] = attrs.field(default=(), converter=_reasons, validator=_each(str))
    conditions: str | None = attrs.field(default=None, validator=_optional(str))


def _labels(value: Iterable[ModerationLabel]) -> tuple[ModerationLabel, ...]:
    return _items(value, "ImageReport.labels")


def _content_types(value: Iterable[ContentType]) -> tuple[ContentType, ...]:
    return _items(value, "ImageReport.content_types")


def _warnings(value: Iterable[str]) -> tuple[str, ...]:
    return _items(value, "ImageReport.warnings")


def _coverage(value: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if value is None else _items(value, "ImageReport.coverage")


def _parts(value: Iterable[ImageReport]) -> tuple[ImageReport, ...]:
    return _items(value, "ImageReport.parts")


def _check_coverage(
    instance: object, attribute: attrs.Attribute[Any], value: tuple[object, ...] | None
) -> None:
    if value is not None:
        _each(str)(instance, attribute, value)


def _check_parts(
    instance: object, attribute: attrs.Attribute[Any], value: tuple[object, ...]
) -> None:
    _each(ImageReport)(instance, attribute, value)


@attrs.frozen
class ImageReport:
    """What an image backend reported for one image.

    :param labels: the moderation labels it found.
    :param content_types: the content types (``Animated``, ``Illustrated``) it found.
    :param model_version: the backend's model version, e.g. ``"7.0"``.
    :param adapter_version: the custom adapter that answered, if any.
    :param human_loop: the human review started, if any.
    :param warnings: what the caller should know (an expired adapter, an unknown model).
    :param coverage: the taxonomy categories (names or paths, each with its subtree) the
        backend evaluates, when that is not the whole taxonomy: an offline model sees a few.
        What a policy moderates outside them is *not evaluated*, never safe. ``None`` means
        the backend sees the whole taxonomy, as Rekognition does.
    :param parts: when this report combines several looks (an
        :class:`~safegen.local.Ensemble`'s members), each look's own report. A moderator
        judges each part on its own as well as the whole, and the strictest decision wins,
        so combining looks is never less strict than the strictest look.
    :raises MalformedResponseError: a field is not what it says (a label that is not a
        :class:`~safegen.ModerationLabel`, coverage that is not names, ...).
    """

    labels: tuple[ModerationLabel, ...] = attrs.field(
        default=(), converter=_labels, validator=_each(ModerationLabel)
    )
    content_types: tuple[ContentType, ...] = attrs.field(
        default=(), converter=_content_types, validator=_each(ContentType)
    )
    model_version: str | None = attrs.field(default=None, validator=_optional(str))
    adapter_version: str | None = attrs.field(default=None, validator=_optional(str))
    human_loop: HumanLoop | None = attrs.field(default=None, validator=_optional(HumanLoop))
    warnings: tuple[str, ...] = attrs.field(default=(), converter=_warnings, validator=_each(str))
    coverage: tuple[str, ...] | None = attrs.field(
        default=None, converter=_coverage, validator=_check_coverage
    )
    parts: tuple[ImageReport, ...] = attrs.field(
        default=(), converter=_parts, validator=_check_parts, kw_only=True
    )


def _score(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    number = finite(value)
    if number is None or not 0 <= number <= 100:
        raise _malformed(instance, attribute, f"must be a number from 0 to 100, got {show(value)}")


def _finding_action(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not Action.REVIEW and value is not Action.BLOCK:
        shown = value if isinstance(value, Action) else type(value).__name__
        raise _malformed(instance, attribute, f"must be Action.REVIEW or Action.BLOCK, got {shown}")


def _span(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not all(isinstance(i, int) and not isinstance(i, bool) for i in value)
        or not 0 <= value[0] <= value[1]
    ):
        raise _malformed(instance, attribute, "must be None or (start, end) with 0 <= start <= end")


def _match(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        from safegen.text import RuleMatch  # only prompts need the text rules

        _optional(RuleMatch)(instance, attribute, value)


#: What a finding's ``decision`` may say: the service itself decided (see :class:`PromptFinding`).
DECISIONS = ("intervened", "detected")


def _decision(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and value not in DECISIONS:
        shown = show(value)
        raise _malformed(instance, attribute, f"must be None or one of {DECISIONS}, got {shown}")


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
    :param reason: the setting that decided *action*, when a policy judged the finding
        (``prompts.categories.drugs.mild``, ``prompts.labels."INSULT".block_at``).
    :param decision: ``None`` for a score or a match the moderator judges; ``"intervened"``
        when the service itself acted (a Bedrock guardrail blocked or masked it), or
        ``"detected"`` for what it flagged without acting, as the guardrail adapters set it.
        Such a finding is the service's decision, not a score: a moderator never judges it
        below *action*, whatever policy is in force (its ``[prompts.guardrail]`` may raise it).
    :raises MalformedResponseError: a field is out of range (a score that is not a finite
        number from 0 to 100, an action other than ``REVIEW`` or ``BLOCK``, ...).
    """

    source: str = attrs.field(validator=_text)
    label: str = attrs.field(validator=_text)
    score: float = attrs.field(validator=_score)
    action: Action = attrs.field(validator=_finding_action)
    category: str | None = attrs.field(default=None, validator=_optional(str))
    span: tuple[int, int] | None = attrs.field(default=None, validator=_span)
    match: RuleMatch | None = attrs.field(default=None, validator=_match)
    reason: str | None = attrs.field(default=None, kw_only=True, validator=_optional(str))
    decision: str | None = attrs.field(default=None, kw_only=True, validator=_decision)

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
            "reason": self.reason,
            "decision": self.decision,
        }


def _findings(value: Iterable[PromptFinding]) -> tuple[PromptFinding, ...]:
    return _items(value, "TextReport.findings")


def _notes(value: Iterable[str]) -> tuple[str, ...]:
    return _items(value, "TextReport.notes")


@attrs.frozen
class TextReport:
    """What a classifier reports for one prompt.

    :param findings: what it found at or above its own thresholds.
    :param notes: what it could not fully judge, said plainly (e.g. a language it does not
        support, or a prompt split into several calls).
    :raises MalformedResponseError: a finding is not a :class:`PromptFinding`, or a note is
        not a string.
    """

    findings: tuple[PromptFinding, ...] = attrs.field(
        default=(), converter=_findings, validator=_each(PromptFinding)
    )
    notes: tuple[str, ...] = attrs.field(default=(), converter=_notes, validator=_each(str))


def checked_image_report(value: object, source: str) -> ImageReport:
    """Return *value* if it is a well-formed :class:`ImageReport`, all the way down.

    Every field is checked again, with each label, content type and part: a report built
    with attrs' validators switched off, or altered after it was built, is refused too.

    :param source: who answered (a backend's name), for the message.
    :raises MalformedResponseError: *value* is not a well-formed report.
    :raises InvalidLabelError: a label or content type has impossible values (NaN, 150).
    """
    if not isinstance(value, ImageReport):
        raise MalformedResponseError(
            f"{source} answered with {type(value).__name__}, not an ImageReport"
        )
    attrs.validate(value)
    for label in value.labels:
        attrs.validate(label)
    for content_type in value.content_types:
        attrs.validate(content_type)
    if value.human_loop is not None:
        attrs.validate(value.human_loop)
    for part in value.parts:
        checked_image_report(part, source)
    return value


def checked_text_report(value: object, source: str) -> TextReport:
    """Return *value* if it is a well-formed :class:`TextReport`, every finding included.

    :param source: who answered (a classifier's name), for the message.
    :raises MalformedResponseError: *value* is not a well-formed report.
    """
    if not isinstance(value, TextReport):
        raise MalformedResponseError(
            f"{source} answered with {type(value).__name__}, not a TextReport"
        )
    attrs.validate(value)
    for finding in value.findings:
        attrs.validate(finding)
    return value

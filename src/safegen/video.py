"""Stored-video moderation: a backend reports labels over time, a policy judges each moment.

A :class:`VideoBackend` (Amazon Rekognition's ``StartContentModeration`` job, in
:mod:`safegen.aws.video`; a fake in tests) analyses a video stored in S3 and reports
:class:`VideoDetection` s: a label seen at a timestamp, or over a segment. A
:class:`VideoModerator` judges them with a :class:`~safegen.ModerationPolicy`, moment by
moment, exactly as an image's labels are judged: the labels (and content types) seen at the
same moment are evaluated together, so exclusions and content-type rules work as they do for
images. The :class:`VideoVerdict` gives the worst action over all moments, the unsafe spans of
the timeline per label, and what was judged.

Everything here is pure: no I/O, no clock. It fails closed: a job that failed, or an answer
that cannot be read, is a failed verdict (``BLOCK``, or ``REVIEW`` if you choose), never
``ALLOW``.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Any, Literal, Protocol, runtime_checkable

import attrs

from safegen import _checks
from safegen.decision import Action, PolicyDecision
from safegen.errors import MalformedResponseError, SafegenError, ServiceError
from safegen.labels import ContentType, ModerationLabel
from safegen.policy import ModerationPolicy
from safegen.reports import S3Object

__all__ = [
    "AGGREGATIONS",
    "MAX_VIDEO_BYTES",
    "InvalidVideoError",
    "UnsafeSpan",
    "VideoBackend",
    "VideoDetection",
    "VideoJobError",
    "VideoModerator",
    "VideoMoment",
    "VideoReport",
    "VideoVerdict",
    "judge_video",
    "merge_spans",
]

#: How a backend groups what it saw: at sampled ``TIMESTAMPS``, or over ``SEGMENTS``.
AGGREGATIONS: tuple[str, ...] = ("TIMESTAMPS", "SEGMENTS")
#: The largest stored video Rekognition analyses (10 GB, read as GiB); longer than 6 hours is
#: refused by the service itself.
MAX_VIDEO_BYTES = 10 * 1024**3

Aggregation = Literal["TIMESTAMPS", "SEGMENTS"]


class InvalidVideoError(SafegenError, ValueError):
    """A video that cannot be moderated as given: over the service's limits, or not a video.

    :ivar limit: the rule it broke: ``"bytes"`` (over :data:`MAX_VIDEO_BYTES`, found before
        any job is started) or ``"service"`` (the service refused it as too large or too
        long: more than 10 GB or 6 hours).
    """

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


class VideoJobError(ServiceError):
    """A video analysis job that ran and failed, or did not finish in time.

    :ivar job_id: the job's id, for the service's own logs.
    """

    def __init__(self, message: str, *, job_id: str, code: str, operation: str) -> None:
        super().__init__(message, service="rekognition", operation=operation, code=code)
        self.job_id = job_id


def _millis(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None and attribute.name != "timestamp_ms":
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedResponseError(
            f"{type(instance).__name__}.{attribute.name}: expected milliseconds (an int >= 0), "
            f"got {_checks.kind(value)}"
        )


def _after_start(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    start, end = instance.span
    if end < start:
        raise MalformedResponseError(f"VideoDetection: the segment ends ({end}) before {start}")


def _content_types(value: Iterable[ContentType]) -> tuple[ContentType, ...]:
    return tuple(value)


def _detections(value: Iterable[VideoDetection]) -> tuple[VideoDetection, ...]:
    return tuple(value)


def _each_detection(_: object, attribute: attrs.Attribute[Any], value: tuple[object, ...]) -> None:
    for item in value:
        if not isinstance(item, VideoDetection):
            raise MalformedResponseError(f"VideoReport.{attribute.name}: {_checks.kind(item)}")


@attrs.frozen
class VideoDetection:
    """One label a backend saw in a video: at a timestamp, or over a segment.

    :param label: the moderation label (with its parent and level).
    :param timestamp_ms: when it was seen, in milliseconds from the start.
    :param start_ms: where its segment starts (``SEGMENTS`` aggregation), else ``None``.
    :param end_ms: where its segment ends, else ``None``.
    :param content_types: the content types seen with it (``Animated``, ``Illustrated``).
    :raises MalformedResponseError: times that are not non-negative ints, or a segment that
        ends before it starts.
    """

    label: ModerationLabel = attrs.field(validator=attrs.validators.instance_of(ModerationLabel))
    timestamp_ms: int = attrs.field(validator=_millis)
    start_ms: int | None = attrs.field(default=None, validator=_millis)
    end_ms: int | None = attrs.field(default=None, validator=[_millis, _after_start])
    content_types: tuple[ContentType, ...] = attrs.field(default=(), converter=_content_types)

    @property
    def span(self) -> tuple[int, int]:
        """The detection's ``(start, end)`` in milliseconds: its segment, else its timestamp."""
        start = self.timestamp_ms if self.start_ms is None else self.start_ms
        return start, start if self.end_ms is None else self.end_ms


def _warnings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _aggregation(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in AGGREGATIONS:
        raise MalformedResponseError(f"VideoReport.{attribute.name}: not one of {AGGREGATIONS}")


@attrs.frozen
class VideoReport:
    """What a video backend reported for one video.

    :param detections: every detection, in any order.
    :param aggregate: ``"TIMESTAMPS"`` or ``"SEGMENTS"``.
    :param model_version: the moderation model's version, e.g. ``"7.0"``.
    :param duration_ms: the video's length, if the backend said.
    :param job_id: the backend's job id, if it ran one.
    :param warnings: what the backend said the caller should know.
    :param etag: the analysed object's ``ETag``, if the backend read it.
    :param version_id: the analysed object's ``VersionId``, if the bucket is versioned.
    """

    detections: tuple[VideoDetection, ...] = attrs.field(
        converter=_detections, validator=_each_detection
    )
    aggregate: Aggregation = attrs.field(default="SEGMENTS", validator=_aggregation)
    model_version: str | None = None
    duration_ms: int | None = None
    job_id: str | None = None
    warnings: tuple[str, ...] = attrs.field(default=(), converter=_warnings)
    etag: str | None = attrs.field(default=None, kw_only=True)
    version_id: str | None = attrs.field(default=None, kw_only=True)


@runtime_checkable
class VideoBackend(Protocol):
    """The port a video moderator asks: analyse one stored video, report what it saw."""

    @property
    def name(self) -> str:
        """The backend's name, for verdicts."""
        ...

    def analyse(
        self, video: S3Object, *, min_confidence: float, aggregate: Aggregation
    ) -> VideoReport:
        """Analyse *video*, reporting nothing less confident than *min_confidence*.

        :raises InvalidVideoError: the video is over the service's limits.
        :raises ServiceError: the analysis could not run or failed (:class:`VideoJobError`).
        :raises MalformedResponseError: the answer is not of the documented shape.
        """
        ...


@attrs.frozen
class VideoMoment:
    """The policy's decision on what was seen at one moment of a video.

    A moment is a timestamp (``TIMESTAMPS``), or a stretch of time over which the same
    segments are present (``SEGMENTS``): ``start_ms == end_ms`` for an instant.
    """

    start_ms: int
    end_ms: int
    decision: PolicyDecision

    @property
    def action(self) -> Action:
        """The decision's action."""
        return self.decision.action

    def to_dict(self) -> dict[str, Any]:
        """Return the moment as plain JSON-ready data."""
        return {"start_ms": self.start_ms, "end_ms": self.end_ms, **self.decision.to_dict()}


@attrs.frozen(order=False)
class UnsafeSpan:
    """A stretch of the video where one label (or content type) made the policy act.

    :param label: the taxonomy category's name, or ``"content type <Name>"`` when a
        content-type rule's outright action decided.
    :param action: the most severe action the policy took where it counted in the span.
    :param start_ms: where the span starts, in milliseconds.
    :param end_ms: where it ends (equal to ``start_ms`` for one instant).
    :param confidence: the highest confidence it was seen with in the span.
    """

    label: str
    action: Action
    start_ms: int
    end_ms: int
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """Return the span as plain JSON-ready data."""
        return {
            "label": self.label,
            "action": self.action.value,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "confidence": self.confidence,
        }


@attrs.frozen
class VideoVerdict:
    """What video moderation decided about one video, and what it is based on.

    :param action: the most severe action over every moment (``ALLOW`` if nothing counted);
        on a failure, the moderator's ``on_failure`` (never ``ALLOW``).
    :param spans: the unsafe stretches of the timeline, per label, merged where they touch
        or overlap, in time order.
    :param moments: every moment the policy did not allow, in time order.
    :param aggregate: how the backend grouped what it saw.
    :param model_version: the moderation model's version.
    :param duration_ms: the video's length, if known.
    :param job_id: the backend's job id, if any.
    :param error: why the video could not be checked (``None`` when it was).
    :param backend: the backend's name.
    :param warnings: what the backend said the caller should know.
    :param policy_sha256: the judging policy's ``sha256`` (its content's fingerprint).
    :param policy_version: that policy's ``version``.
    :param etag: the ``ETag`` of the object the verdict judged (``None`` if unknown):
        which content, of all the objects that key has held, this verdict is about.
    :param version_id: the ``VersionId`` of that object, in a versioned bucket.
    """

    action: Action
    spans: tuple[UnsafeSpan, ...] = ()
    moments: tuple[VideoMoment, ...] = ()
    aggregate: str | None = None
    model_version: str | None = None
    duration_ms: int | None = None
    job_id: str | None = None
    error: str | None = None
    backend: str | None = None
    warnings: tuple[str, ...] = ()
    policy_sha256: str | None = None
    policy_version: str | None = None
    etag: str | None = attrs.field(default=None, kw_only=True)
    version_id: str | None = attrs.field(default=None, kw_only=True)

    @property
    def failed(self) -> bool:
        """Whether the video could not be checked."""
        return self.error is not None

    def to_dict(self) -> dict[str, Any]:
        """Return the verdict as plain JSON-ready data (no video content)."""
        return {
            "action": self.action.value,
            "spans": [span.to_dict() for span in self.spans],
            "moments": [moment.to_dict() for moment in self.moments],
            "aggregate": self.aggregate,
            "model_version": self.model_version,
            "duration_ms": self.duration_ms,
            "job_id": self.job_id,
            "error": self.error,
            "backend": self.backend,
            "warnings": list(self.warnings),
            "policy_sha256": self.policy_sha256,
            "policy_version": self.policy_version,
            "etag": self.etag,
            "version_id": self.version_id,
        }


# -- judging (pure) ----------------------------------------------------------------------------


def _most_confident(
    detections: Iterable[VideoDetection],
) -> tuple[list[ModerationLabel], list[ContentType]]:
    """Keep each label name's and content type's most confident report.

    The policy judges a category on its most confident report, so this never changes a
    decision; it bounds a moment's size by the number of distinct names, however many
    detections overlap.
    """
    labels: dict[str, ModerationLabel] = {}
    types: dict[str, ContentType] = {}
    for detection in detections:
        key = detection.label.name.casefold()
        if key not in labels or _label_rank(detection.label) > _label_rank(labels[key]):
            labels[key] = detection.label
        for content in detection.content_types:
            name = content.name.casefold()
            if name not in types or (content.confidence, content.name) > (
                types[name].confidence,
                types[name].name,
            ):
                types[name] = content
    return list(labels.values()), list(types.values())


def _label_rank(label: ModerationLabel) -> tuple[float, str, str, int]:
    """Order reports of one name: the most confident, ties broken on everything else.

    So which report is kept never depends on the order they came in.
    """
    return (label.confidence, label.name, label.parent or "", label.level or 0)


def _moments(
    detections: tuple[VideoDetection, ...],
) -> Iterable[tuple[int, int, list[VideoDetection]]]:
    """Yield ``(start, end, detections present)`` over the timeline, in time order.

    Between two consecutive boundaries (starts and ends of segments) the same detections are
    present throughout: that stretch is one moment. A boundary where one detection ends and
    another starts (or an instant detection lies) is a moment of its own, with everything
    present there; elsewhere a boundary belongs to the stretch beside it, which has the same
    detections. So every instant of every detection lies in a moment judged with it.
    """
    order = sorted(range(len(detections)), key=lambda i: detections[i].span)
    bounds = sorted({t for d in detections for t in d.span})
    active: dict[int, VideoDetection] = {}
    ending: list[tuple[int, int]] = []  # (end, index) of the active detections
    next_start = 0
    for position, point in enumerate(bounds):
        starting = 0
        while next_start < len(order) and detections[order[next_start]].span[0] <= point:
            index = order[next_start]
            active[index] = detections[index]
            heapq.heappush(ending, (detections[index].span[1], index))
            next_start += 1
            starting += 1
        ends_here = bool(ending) and ending[0][0] <= point
        if starting and ends_here:
            yield point, point, list(active.values())
        while ending and ending[0][0] <= point:
            active.pop(heapq.heappop(ending)[1], None)
        if active and position + 1 < len(bounds):
            yield point, bounds[position + 1], list(active.values())


def _timestamps(
    detections: tuple[VideoDetection, ...],
) -> Iterable[tuple[int, int, list[VideoDetection]]]:
    groups: dict[int, list[VideoDetection]] = {}
    for detection in detections:
        groups.setdefault(detection.timestamp_ms, []).append(detection)
    for stamp in sorted(groups):
        yield stamp, stamp, groups[stamp]


def _span_labels(decision: PolicyDecision) -> dict[str, tuple[Action, float]]:
    """Return what made *decision* act, each with the decision's action and its confidence.

    Each label that counted is named (a content-type rule's outright action may have set a
    milder or stricter action than its thresholds: the span carries what the policy did);
    when nothing is named, ``"(policy)"`` stands for the moment, so none is ever lost.
    """
    found: dict[str, tuple[Action, float]] = {}
    for violation in decision.violations:
        name = violation.category.name
        confidence = max(found.get(name, (decision.action, 0.0))[1], violation.label.confidence)
        found[name] = (decision.action, confidence)
    if decision.decided_by is not None:
        found[f"content type {decision.decided_by}"] = (decision.action, 100.0)
    if not found:
        found["(policy)"] = (decision.action, 0.0)
    return found


def merge_spans(spans: Iterable[UnsafeSpan], *, gap_ms: int = 0) -> tuple[UnsafeSpan, ...]:
    """Merge each label's spans that overlap, touch, or lie within *gap_ms* of each other.

    A merged span covers every span merged into it, with the most severe action and the
    highest confidence among them, so merging never drops an unsafe moment. The result is
    in time order (then by label).

    >>> a = UnsafeSpan("Weapons", Action.REVIEW, 0, 1000, 70.0)
    >>> b = UnsafeSpan("Weapons", Action.BLOCK, 1000, 2500, 90.0)
    >>> [(s.action.value, s.start_ms, s.end_ms, s.confidence) for s in merge_spans([b, a])]
    [('block', 0, 2500, 90.0)]
    """
    merged: list[UnsafeSpan] = []
    last: dict[str, int] = {}  # label -> index in merged of its latest span
    for span in sorted(spans, key=lambda s: (s.start_ms, s.end_ms, s.label)):
        at = last.get(span.label)
        if at is not None and span.start_ms <= merged[at].end_ms + gap_ms:
            held = merged[at]
            merged[at] = UnsafeSpan(
                span.label,
                Action.strictest((held.action, span.action)),
                held.start_ms,
                max(held.end_ms, span.end_ms),
                max(held.confidence, span.confidence),
            )
        else:
            last[span.label] = len(merged)
            merged.append(span)
    return tuple(sorted(merged, key=lambda s: (s.start_ms, s.label)))


def judge_video(policy: ModerationPolicy, report: VideoReport, *, gap_ms: int = 0) -> VideoVerdict:
    """Judge every moment of *report* with *policy*; return the verdict (pure).

    :param gap_ms: join a label's unsafe spans this close to each other (0: only those
        that overlap or touch).
    :raises SafegenError: the policy cannot read the report.
    """
    grouped = _timestamps if report.aggregate == "TIMESTAMPS" else _moments
    unsafe: list[VideoMoment] = []
    spans: list[UnsafeSpan] = []
    for start, end, present in grouped(report.detections):
        labels, content_types = _most_confident(present)
        decision = policy.evaluate(labels, content_types)
        if decision.action is Action.ALLOW:
            continue
        unsafe.append(VideoMoment(start, end, decision))
        for name, (action, confidence) in _span_labels(decision).items():
            spans.append(UnsafeSpan(name, action, start, end, confidence))
    return VideoVerdict(
        action=Action.strictest(moment.action for moment in unsafe),
        spans=merge_spans(spans, gap_ms=gap_ms),
        moments=tuple(unsafe),
        aggregate=report.aggregate,
        model_version=report.model_version,
        duration_ms=report.duration_ms,
        job_id=report.job_id,
        warnings=report.warnings,
        policy_sha256=policy.sha256,
        policy_version=policy.version,
        etag=report.etag,
        version_id=report.version_id,
    )


# -- the moderator -----------------------------------------------------------------------------


def _on_failure(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in (Action.BLOCK, Action.REVIEW):
        raise _checks.refuse(attribute, "a video that cannot be checked is BLOCK or REVIEW")


def _aggregate_setting(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in AGGREGATIONS:
        raise _checks.refuse(attribute, f"must be one of {AGGREGATIONS}, got {value!r}")


def _gap(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _checks.refuse(attribute, "must be an int >= 0 (milliseconds)")


@attrs.frozen(eq=False)
class VideoModerator:
    """Moderate stored videos: a :class:`VideoBackend` reports, the policy judges each moment.

    :param backend: the video backend (e.g. :class:`safegen.aws.video.RekognitionVideo`).
    :param policy: the moderation policy (default: the default policy); the backend is asked
        for nothing below its :attr:`~safegen.ModerationPolicy.min_confidence`.
    :param aggregate: ``"SEGMENTS"`` (default) or ``"TIMESTAMPS"``.
    :param gap_ms: join a label's unsafe spans this close together (0: touching only).
    :param on_failure: the action for a video that cannot be checked: ``BLOCK`` (default) or
        ``REVIEW``; never ``ALLOW``.
    :raises ConfigurationError: a setting that cannot be used.
    """

    backend: VideoBackend = attrs.field(validator=_checks.port(VideoBackend, "a VideoBackend"))
    policy: ModerationPolicy = attrs.field(
        factory=ModerationPolicy,
        validator=_checks.instance_of(ModerationPolicy, what="a ModerationPolicy"),
    )
    aggregate: Aggregation = attrs.field(default="SEGMENTS", validator=_aggregate_setting)
    gap_ms: int = attrs.field(default=0, validator=_gap)
    on_failure: Action = attrs.field(default=Action.BLOCK, validator=_on_failure)

    def moderate(self, video: S3Object) -> VideoVerdict:
        """Analyse *video* and judge it; a failure is a failed verdict, never ``ALLOW``.

        :raises InvalidVideoError: the video is over the service's limits (a clear refusal,
            before or from the service, not a verdict).
        """
        if not isinstance(video, S3Object):
            raise InvalidVideoError(
                f"video: expected an S3Object, got {_checks.kind(video)}", limit="type"
            )
        try:
            report = self.backend.analyse(
                video, min_confidence=self.policy.min_confidence, aggregate=self.aggregate
            )
            if not isinstance(report, VideoReport):
                raise MalformedResponseError(f"the backend answered {_checks.kind(report)}")
            return attrs.evolve(self.judge(report), backend=self.backend.name)
        except InvalidVideoError:
            raise
        except Exception as error:  # a backend that raises anything is a failed check
            return self.failed(error)

    def judge(self, report: VideoReport) -> VideoVerdict:
        """Judge a report with this moderator's policy (pure: no backend call)."""
        return judge_video(self.policy, report, gap_ms=self.gap_ms)

    def failed(self, error: Exception) -> VideoVerdict:
        """Return the verdict on a video that could not be checked because of *error*."""
        code = getattr(error, "code", None)
        return VideoVerdict(
            action=self.on_failure,
            aggregate=self.aggregate,
            job_id=getattr(error, "job_id", None),
            error=f"{type(error).__name__}" + (f" ({code})" if code else "") + f": {error}",
            backend=self.backend.name,
            policy_sha256=self.policy.sha256,
            policy_version=self.policy.version,
        )

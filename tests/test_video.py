"""Video moderation's pure core: moments, spans, the verdict, and failing closed."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest

from safegen import Action, ModerationLabel, ModerationPolicy
from safegen.errors import ConfigurationError, MalformedResponseError, ServiceUnavailableError
from safegen.labels import ContentType
from safegen.reports import S3Object
from safegen.video import (
    InvalidVideoError,
    UnsafeSpan,
    VideoDetection,
    VideoJobError,
    VideoModerator,
    VideoReport,
    judge_video,
    merge_spans,
)

VIDEO = S3Object("videos", "clip.mp4")
WEAPONS = ModerationLabel("Weapons", 93.1, parent="Violence", level=2)
KISSING = ModerationLabel(
    "Kissing on the Lips", 97.0, parent="Non-Explicit Nudity of Intimate parts and Kissing", level=2
)
KISSING_L1 = ModerationLabel("Non-Explicit Nudity of Intimate parts and Kissing", 97.0, level=1)


def seg(label: ModerationLabel, start: int, end: int, *types: ContentType) -> VideoDetection:
    return VideoDetection(label, start, start, end, types)


def report(*detections: VideoDetection, aggregate: Any = "SEGMENTS") -> VideoReport:
    return VideoReport(detections, aggregate, "7.0", 15020, "job-1")


@attrs.frozen
class Backend:
    """A video backend that answers with a report, or raises."""

    answer: Any
    name: str = "fake"
    asked: list[dict[str, Any]] = attrs.field(factory=list)

    def analyse(self, video: S3Object, *, min_confidence: float, aggregate: Any) -> VideoReport:
        self.asked.append(
            {"video": video, "min_confidence": min_confidence, "aggregate": aggregate}
        )
        if isinstance(self.answer, BaseException):
            raise self.answer
        result: VideoReport = self.answer
        return result


def test_a_weapon_segment_blocks_and_is_one_span() -> None:
    """One segment over the threshold: BLOCK, a single Weapons span with its times."""
    verdict = judge_video(ModerationPolicy(), report(seg(WEAPONS, 1500, 4500)))
    assert verdict.action is Action.BLOCK
    assert verdict.spans == (UnsafeSpan("Weapons", Action.BLOCK, 1500, 4500, 93.1),)
    assert [(m.start_ms, m.end_ms) for m in verdict.moments] == [(1500, 4500)]
    assert (verdict.model_version, verdict.duration_ms, verdict.job_id) == ("7.0", 15020, "job-1")


def test_a_label_exactly_at_its_threshold_counts_and_just_below_does_not() -> None:
    """The boundary is inclusive, as for images."""
    policy = ModerationPolicy(labels={"Weapons": 93.1})
    assert judge_video(policy, report(seg(WEAPONS, 0, 10))).action is Action.BLOCK
    below = attrs.evolve(WEAPONS, confidence=93.09)
    assert judge_video(policy, report(seg(below, 0, 10))).action is Action.ALLOW


def test_labels_seen_together_are_judged_together_so_exclusions_hold() -> None:
    """An excluded L2 explains its L1 reported over the same segment: allowed, as for images."""
    policy = ModerationPolicy(exclude=["Kissing on the Lips"])
    both = report(seg(KISSING, 0, 2000), seg(KISSING_L1, 0, 2000))
    assert judge_video(policy, both).action is Action.ALLOW
    # ... but where the L1 is seen without its excluded child, it counts there only.
    longer = report(seg(KISSING, 0, 2000), seg(KISSING_L1, 0, 3000))
    verdict = judge_video(policy, longer)
    assert verdict.action is Action.BLOCK
    assert [(s.label, s.start_ms, s.end_ms) for s in verdict.spans] == [
        ("Non-Explicit Nudity of Intimate parts and Kissing", 2000, 3000)
    ]


def test_content_type_rules_apply_only_where_the_content_type_is_seen() -> None:
    """An Animated exemption allows the animated segment; the live-action weapon still blocks."""
    policy = ModerationPolicy(content_types={"Animated": {"exclude": ["Violence"]}})
    animated = ContentType("Animated", 99.0)
    verdict = judge_video(policy, report(seg(WEAPONS, 0, 1000, animated), seg(WEAPONS, 5000, 6000)))
    assert verdict.action is Action.BLOCK
    assert [(s.start_ms, s.end_ms) for s in verdict.spans] == [(5000, 6000)]


def test_an_outright_content_type_rule_names_itself_in_the_span() -> None:
    """A rule blocking Illustrated content outright is the span's label."""
    policy = ModerationPolicy(content_types={"Illustrated": {"action": "block"}})
    low = ModerationLabel("Alcohol", 10.0, level=1)
    verdict = judge_video(policy, report(seg(low, 0, 500, ContentType("Illustrated", 90.0))))
    assert verdict.action is Action.BLOCK
    assert [s.label for s in verdict.spans] == ["content type Illustrated"]


def test_touching_and_overlapping_spans_merge_per_label_and_gaps_do_not() -> None:
    """0-1000 and 1000-2000 merge, 2500-3000 stays apart unless gap_ms covers 500."""
    spans = [
        UnsafeSpan("Weapons", Action.REVIEW, 1000, 2000, 60.0),
        UnsafeSpan("Weapons", Action.BLOCK, 0, 1000, 90.0),
        UnsafeSpan("Weapons", Action.BLOCK, 2500, 3000, 91.0),
        UnsafeSpan("Smoking", Action.BLOCK, 500, 700, 80.0),
    ]
    merged = merge_spans(spans)
    assert [(s.label, s.start_ms, s.end_ms, s.action) for s in merged] == [
        ("Weapons", 0, 2000, Action.BLOCK),
        ("Smoking", 500, 700, Action.BLOCK),
        ("Weapons", 2500, 3000, Action.BLOCK),
    ]
    assert len(merge_spans(spans, gap_ms=499)) == 3
    assert len(merge_spans(spans, gap_ms=500)) == 2


def test_timestamps_are_moments_of_their_own() -> None:
    """TIMESTAMPS: labels at the same timestamp are one moment, each an instant span."""
    detections = (
        VideoDetection(KISSING, 1000),
        VideoDetection(KISSING_L1, 1000),
        VideoDetection(WEAPONS, 2000),
    )
    policy = ModerationPolicy(exclude=["Kissing on the Lips"])
    verdict = judge_video(policy, report(*detections, aggregate="TIMESTAMPS"))
    assert [(m.start_ms, m.end_ms) for m in verdict.moments] == [(2000, 2000)]
    assert verdict.aggregate == "TIMESTAMPS"


def test_a_safe_video_is_allowed_and_the_verdict_is_json() -> None:
    """No detections: ALLOW; the verdict's dict is JSON and names the policy."""
    policy = ModerationPolicy(version="v1")
    verdict = judge_video(policy, report())
    assert verdict.action is Action.ALLOW
    data = json.loads(json.dumps(verdict.to_dict()))
    assert data["policy_sha256"] == policy.sha256
    assert data["policy_version"] == "v1"
    blocked = judge_video(policy, report(seg(WEAPONS, 0, 1)))
    assert json.loads(json.dumps(blocked.to_dict()))["spans"][0]["label"] == "Weapons"


def test_the_moderator_asks_for_the_policys_floor_and_aggregation() -> None:
    """MinConfidence comes from the policy; the aggregation is the moderator's."""
    backend = Backend(report())
    policy = ModerationPolicy(review_at=40, block_at=70)
    verdict = VideoModerator(backend, policy, aggregate="TIMESTAMPS").moderate(VIDEO)
    assert backend.asked == [{"video": VIDEO, "min_confidence": 40.0, "aggregate": "TIMESTAMPS"}]
    assert verdict.backend == "fake"


@pytest.mark.parametrize(
    "error",
    [
        VideoJobError("job j failed: bad codec", job_id="j", code="FAILED", operation="Get"),
        MalformedResponseError("no ModerationLabels list"),
        ServiceUnavailableError("down", service="rekognition", operation="Get", code="Internal"),
        RuntimeError("a backend with a bug"),
    ],
)
def test_a_job_that_failed_or_an_unreadable_answer_is_a_failed_verdict(error: Exception) -> None:
    """Fail closed: BLOCK (or REVIEW if chosen), the error named, never ALLOW."""
    verdict = VideoModerator(Backend(error)).moderate(VIDEO)
    assert verdict.action is Action.BLOCK
    assert verdict.failed
    assert type(error).__name__ in (verdict.error or "")
    review = VideoModerator(Backend(error), on_failure=Action.REVIEW).moderate(VIDEO)
    assert review.action is Action.REVIEW
    if isinstance(error, VideoJobError):
        assert verdict.job_id == "j"


def test_a_backend_answering_something_else_fails_closed() -> None:
    """A backend that returns a non-report is a failed verdict, not an allow."""
    verdict = VideoModerator(Backend({"ModerationLabels": []})).moderate(VIDEO)
    assert verdict.action is Action.BLOCK
    assert verdict.failed


def test_allow_on_failure_and_bad_settings_are_refused() -> None:
    """A video that cannot be checked can never be allowed; settings are validated."""
    with pytest.raises(ConfigurationError, match="on_failure"):
        VideoModerator(Backend(report()), on_failure=Action.ALLOW)
    with pytest.raises(ConfigurationError, match="aggregate"):
        VideoModerator(Backend(report()), aggregate="FRAMES")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="gap_ms"):
        VideoModerator(Backend(report()), gap_ms=-1)
    with pytest.raises(ConfigurationError, match="backend"):
        VideoModerator(object())  # type: ignore[arg-type]


def test_a_video_over_the_limits_is_an_error_not_a_verdict() -> None:
    """InvalidVideoError passes through: the caller gave a video that cannot be analysed."""
    backend = Backend(InvalidVideoError("too large", limit="bytes"))
    with pytest.raises(InvalidVideoError):
        VideoModerator(backend).moderate(VIDEO)
    with pytest.raises(InvalidVideoError, match="S3Object"):
        VideoModerator(backend).moderate("s3://videos/clip.mp4")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "fields",
    [
        {"timestamp_ms": -1},
        {"timestamp_ms": 1.5},
        {"timestamp_ms": True},
        {"timestamp_ms": 5, "start_ms": 10, "end_ms": 5},
    ],
)
def test_impossible_times_are_malformed(fields: dict[str, Any]) -> None:
    """Negative, fractional, boolean times and backwards segments are refused."""
    with pytest.raises(MalformedResponseError):
        VideoDetection(WEAPONS, **fields)

"""Properties of video moderation.

The worst moment decides; label order and page boundaries never matter; merging spans never
drops an unsafe moment.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from safegen import Action, ModerationPolicy
from safegen.aws.video import RekognitionVideo
from safegen.video import VideoDetection, VideoReport, judge_video, merge_spans
from tests.strategies import policies, unsafe_spans, video_detections


def at(detections: list[VideoDetection], start: int, end: int) -> list[VideoDetection]:
    """The detections present over the whole of [start, end] (brute force)."""
    return [d for d in detections if d.span[0] <= start and end <= d.span[1]]


def oracle(policy: ModerationPolicy, detections: list[VideoDetection]) -> Action:
    """The worst decision over every boundary instant and every stretch between boundaries."""
    bounds = sorted({t for d in detections for t in d.span})
    pieces = [(b, b) for b in bounds] + list(itertools.pairwise(bounds))
    actions = []
    for start, end in pieces:
        present = at(detections, start, end)
        labels = [d.label for d in present]
        types = [t for d in present for t in d.content_types]
        actions.append(policy.evaluate(labels, types).action)
    return Action.strictest(actions)


@given(policies(), video_detections())
def test_the_overall_action_is_the_worst_over_the_timeline(
    policy: ModerationPolicy, detections: list[VideoDetection]
) -> None:
    """Against brute force: every instant and stretch evaluated on its own, the worst wins."""
    verdict = judge_video(policy, VideoReport(detections, "SEGMENTS"))
    assert verdict.action is oracle(policy, detections)
    assert verdict.action is Action.strictest(m.action for m in verdict.moments)


@given(policies(), video_detections())
def test_timestamps_judge_each_timestamp_on_its_own(
    policy: ModerationPolicy, detections: list[VideoDetection]
) -> None:
    """TIMESTAMPS: the worst over the groups of detections sharing a timestamp."""
    verdict = judge_video(policy, VideoReport(detections, "TIMESTAMPS"))
    stamps = {d.timestamp_ms for d in detections}
    worst = Action.strictest(
        policy.evaluate(
            [d.label for d in detections if d.timestamp_ms == t],
            [c for d in detections if d.timestamp_ms == t for c in d.content_types],
        ).action
        for t in stamps
    )
    assert verdict.action is worst


@given(policies(), video_detections(), st.randoms(use_true_random=False))
def test_label_order_never_changes_the_verdict(
    policy: ModerationPolicy, detections: list[VideoDetection], random: Any
) -> None:
    """Any permutation of the detections: the same verdict, spans and moments included."""
    shuffled = list(detections)
    random.shuffle(shuffled)
    for aggregate in ("SEGMENTS", "TIMESTAMPS"):
        one = judge_video(policy, VideoReport(detections, aggregate))
        other = judge_video(policy, VideoReport(shuffled, aggregate))
        assert one == other


@given(policies(), video_detections())
def test_merging_never_drops_an_unsafe_moment(
    policy: ModerationPolicy, detections: list[VideoDetection]
) -> None:
    """Each unsafe moment lies inside a span of each label that made it act, as severe."""
    verdict = judge_video(policy, VideoReport(detections, "SEGMENTS"))
    for moment in verdict.moments:
        assert moment.action is not Action.ALLOW
        named = {v.category.name for v in moment.decision.violations}
        if moment.decision.decided_by is not None:
            named.add(f"content type {moment.decision.decided_by}")
        for label in named or {"(policy)"}:
            assert any(
                s.label == label
                and s.start_ms <= moment.start_ms <= moment.end_ms <= s.end_ms
                and s.action.severity >= moment.action.severity
                for s in verdict.spans
            ), (label, moment)


@given(st.lists(unsafe_spans(), max_size=20), st.integers(0, 1_000))
def test_merged_spans_cover_their_inputs_and_stay_apart(spans: list[Any], gap: int) -> None:
    """Every span is inside a merged one of its label; a label's merged spans are > gap apart."""
    merged = merge_spans(spans, gap_ms=gap)
    for span in spans:
        assert any(
            m.label == span.label
            and m.start_ms <= span.start_ms <= span.end_ms <= m.end_ms
            and m.action.severity >= span.action.severity
            and m.confidence >= span.confidence
            for m in merged
        )
    for label in {m.label for m in merged}:
        mine = sorted((m for m in merged if m.label == label), key=lambda m: m.start_ms)
        assert all(b.start_ms > a.end_ms + gap for a, b in itertools.pairwise(mine))
    starts = {s.start_ms for s in spans}
    assert all(m.start_ms in starts for m in merged)  # nothing invented


class Pages:
    """A fake rekognition client answering GetContentModeration in pages of drawn sizes."""

    def __init__(self, items: list[dict[str, Any]], cuts: list[int]) -> None:
        self.pages: list[list[dict[str, Any]]] = []
        rest = list(items)
        for cut in cuts:
            self.pages.append(rest[:cut])
            rest = rest[cut:]
        self.pages.append(rest)

    def get_content_moderation(self, **params: Any) -> dict[str, Any]:
        index = int(params.get("NextToken", "0"))
        page: dict[str, Any] = {
            "JobStatus": "SUCCEEDED",
            "ModerationModelVersion": "7.0",
            "ModerationLabels": self.pages[index],
            "VideoMetadata": {"DurationMillis": 60_000},
        }
        if index + 1 < len(self.pages):
            page["NextToken"] = str(index + 1)
        return page


def wire(detection: VideoDetection) -> dict[str, Any]:
    label = detection.label
    return {
        "Timestamp": detection.timestamp_ms,
        "StartTimestampMillis": detection.span[0],
        "EndTimestampMillis": detection.span[1],
        "ModerationLabel": {"Name": label.name, "Confidence": label.confidence,
                            "ParentName": label.parent or "", "TaxonomyLevel": label.level},
        "ContentTypes": [{"Name": c.name, "Confidence": c.confidence}
                         for c in detection.content_types],
    }  # fmt: skip


@settings(max_examples=50)
@given(policies(), video_detections(), st.lists(st.integers(0, 6), max_size=5))
def test_page_boundaries_never_change_the_verdict(
    policy: ModerationPolicy, detections: list[VideoDetection], cuts: list[int]
) -> None:
    """The adapter reads every page: however the answer is paged, the same verdict."""
    items = [wire(d) for d in detections]
    paged = RekognitionVideo(Pages(items, cuts)).results("job", aggregate="SEGMENTS")
    whole = RekognitionVideo(Pages(items, [])).results("job", aggregate="SEGMENTS")
    assert len(paged.detections) == len(detections)
    assert judge_video(policy, paged) == judge_video(policy, whole)
    assert judge_video(policy, paged).action is oracle(policy, detections)

"""Properties of the offline side (issue 12): policies derived for a backend, the skin test."""

from __future__ import annotations

import functools
from collections.abc import Mapping

import attrs
from hypothesis import example, given, settings
from hypothesis import strategies as st

from safegen import (
    Action,
    ImageModerator,
    ImageReport,
    ModerationPolicy,
    PromptModerator,
    Thresholds,
)
from safegen.local import Ensemble, NudeNet, OpenNSFW, recommended_policy
from safegen.prompt_policy import PromptPolicy
from safegen.reports import ImageSource
from safegen.taxonomy import REKOGNITION_V7
from tests.photographs import RECOLOURINGS, _png, recolour, shaded_body
from tests.strategies import CATEGORIES, policies, prompt_policy_tables, thresholds

# -- recommended_policy carries every field it does not mean to change ------------------------


@attrs.frozen
class _Calibrated:
    """A calibrated backend that is only its thresholds: all recommended_policy reads."""

    thresholds: Mapping[str, Thresholds]
    name: str = "calibrated"

    def detect(self, image: ImageSource, *, min_confidence: float) -> ImageReport:
        raise AssertionError("recommended_policy never looks at a picture")


_LEAVES = [c for c in CATEGORIES if c.level == 3]


@st.composite
def _policies_with_prompts(draw: st.DrawFn) -> ModerationPolicy:
    """Any valid policy, with any valid ``[prompts]`` section."""
    base = draw(policies())
    if draw(st.booleans()):
        return base
    return attrs.evolve(base, prompts=PromptPolicy.from_mapping(draw(prompt_policy_tables())))


@settings(max_examples=150, deadline=None)
@given(
    base=_policies_with_prompts(),
    calibrated=st.dictionaries(st.sampled_from(_LEAVES).map(lambda c: c.name), thresholds()),
)
def test_the_recommended_policy_changes_only_the_backends_label_entries(
    base: ModerationPolicy, calibrated: dict[str, Thresholds]
) -> None:
    """Every field but ``labels`` is the base's own; labels gain only entries the base lacks."""
    policy = recommended_policy(_Calibrated(calibrated), base)
    for field in attrs.fields(ModerationPolicy):
        # Every other setting, including ones added later (derived fields follow the labels).
        if field.name != "labels" and field.init:
            assert getattr(policy, field.name) == getattr(base, field.name), field.name
    assert policy.taxonomy is base.taxonomy
    expected = {base.taxonomy.lookup(name): t for name, t in calibrated.items()}
    expected.update(base.labels)  # the base's own entry wins over the calibrated one
    assert dict(policy.labels) == expected
    assert ModerationPolicy.from_mapping(policy.to_mapping()) == policy


def test_the_recommended_policy_keeps_a_presets_prompt_section() -> None:
    """The strict preset's prompt rules (a bikini is BLOCKED) survive calibration."""
    strict = ModerationPolicy.preset("strict")
    policy = recommended_policy(_Calibrated(NudeNet.THRESHOLDS), strict)
    assert policy.prompts == strict.prompts
    verdict = PromptModerator.from_policy(policy).moderate("a girl in a bikini")
    assert verdict.action is Action.BLOCK


# -- Colour never turns a detection into ALLOW (red team 12-1) ---------------------------------


@functools.cache
def _detectors() -> tuple[NudeNet, NudeNet, OpenNSFW]:
    """The raw detector (no skin test), the shipped one, and OpenNSFW for the ensemble."""
    return NudeNet(min_skin=0), NudeNet(), OpenNSFW()


@functools.cache
def _bases() -> tuple[ModerationPolicy, ...]:
    """Every base a shipped offline configuration puts its calibrated thresholds over."""
    presets = tuple(
        ModerationPolicy.preset(n) for n in ("offline", "general", "strict", "explicit")
    )
    return (ModerationPolicy(), ModerationPolicy(not_evaluated="allow"), *presets)


def _unallowed_detections(picture: bytes) -> list[str]:
    """Name each (configuration, base, label) that misses a raw detection.

    Missed: the raw detector puts the label at or over the policy's review threshold, and
    the shipped configuration reports no violation on its path.
    """
    raw_nudenet, nudenet, opennsfw = _detectors()
    raw = {
        label.name: label.confidence
        for label in raw_nudenet.detect(picture, min_confidence=0).labels
        if label.name in NudeNet.THRESHOLDS
    }
    missed = []
    once = _Once(nudenet, picture)
    for backend in (once, Ensemble([_Once(opennsfw, picture), once])):
        for base in _bases():
            policy = recommended_policy(backend, base)
            decision = ImageModerator(backend, policy).moderate(picture).decision
            assert decision is not None
            for name, confidence in raw.items():
                judged = policy.thresholds_for(name)
                if judged.excluded_by is not None or confidence < judged.review_at:
                    continue
                path = set(REKOGNITION_V7.lookup(name).path)
                if not any(v.category.name in path for v in decision.violations):
                    missed.append(f"{backend.name} over {base.to_mapping()}: {name} {confidence}")
    return missed


class _Once:
    """A calibrated backend that looked at one picture once, and answers that every time."""

    def __init__(self, backend: NudeNet | OpenNSFW, picture: bytes) -> None:
        self.name, self.thresholds = backend.name, backend.thresholds
        self._report = backend.detect(picture, min_confidence=0)

    def detect(self, image: ImageSource, *, min_confidence: float) -> ImageReport:
        return self._report


_recolourings = st.tuples(st.sampled_from(RECOLOURINGS), st.floats(0, 1), st.floats(0, 1))


@settings(max_examples=40, deadline=None)
@example(seed=2, how=("permute", 0.9, 0.0))  # channels reversed: raw 69, was weighed to 0
@example(seed=3, how=("hue", 0.5, 0.0))  # hues turned half way round the wheel
@example(seed=2, how=("rainbow", 1.0, 0.0))  # many hues: no single rotation undoes it
@given(seed=st.integers(0, 10_000), how=_recolourings)
def test_no_recolouring_turns_a_detection_into_allow(
    seed: int, how: tuple[str, float, float]
) -> None:
    """Whatever the colours, a raw score at or over its review threshold is at least reviewed."""
    assert _unallowed_detections(_png(recolour(shaded_body(seed), how))) == []

"""Static checks of the public API's types: mypy reads this file; nothing ever runs it.

If a change to a signature breaks code written against the documented API, mypy fails here.
"""

from __future__ import annotations

from typing import assert_type

import attrs

from safegen import (
    REKOGNITION_V7,
    Action,
    Cascade,
    Category,
    ContentType,
    ContentTypeRule,
    IgnoredLabel,
    ImageModerator,
    ImageReport,
    ImageVerdict,
    ModerationLabel,
    ModerationPolicy,
    Pipeline,
    PolicyDecision,
    PromptModerator,
    RuleFilter,
    Thresholds,
    Violation,
)
from safegen.aws import ModerationResponse, parse_moderation_response
from safegen.local import Ensemble, OpenNSFW
from safegen.testing import FakeGenerator, FakeImageBackend


def _never_called() -> None:
    policy = ModerationPolicy(
        block_at=50,
        review_at=40.5,
        labels={"Explicit Nudity": 60, "Weapons": {"block_at": 70}, "Alcohol": Thresholds(80)},
        exclude=["Kissing on the Lips"],
        content_types={
            "Animated": {"min_confidence": 80, "labels": {"Violence": 95}},
            "Illustrated": ContentTypeRule(action="review", exclude="Weapons"),
        },
    )
    assert_type(ModerationPolicy.from_toml("policy.toml"), ModerationPolicy)
    assert_type(ModerationPolicy.from_mapping(policy.to_mapping()), ModerationPolicy)
    assert_type(policy.min_confidence, float)

    response = parse_moderation_response({"ModerationLabels": []})
    assert_type(response, ModerationResponse)
    decision = policy.evaluate(response.labels, response.content_types)
    assert_type(decision, PolicyDecision)
    assert_type(
        policy.evaluate([ModerationLabel("Weapons", 80.0)], [ContentType("Animated", 90)]),
        PolicyDecision,
    )
    assert_type(decision.action, Action)
    assert_type(decision.violations, tuple[Violation, ...])
    assert_type(decision.ignored, tuple[IgnoredLabel, ...])
    assert_type(decision.reasons(), tuple[str, ...])
    assert_type(REKOGNITION_V7.lookup("Weapons"), Category)
    assert_type(REKOGNITION_V7.get("Weapons"), Category | None)


def _services_never_called() -> None:
    # The constructor call forms the docs and examples use: positional backend and policy.
    moderator = ImageModerator(FakeImageBackend(), ModerationPolicy(), on_failure=Action.REVIEW)
    assert_type(moderator.moderate(b"image"), ImageVerdict)
    assert_type(moderator.judge(ImageReport()), PolicyDecision)
    assert_type(attrs.evolve(moderator, fail_open=True), ImageModerator)
    prompts = PromptModerator(RuleFilter(["gore"]), [], strategy="parallel", fail_open={"rules"})
    assert_type(prompts.fail_open, frozenset[str])
    cascade = Cascade(OpenNSFW(), moderator, margin=5)
    assert_type(cascade.first_look, ImageModerator)
    assert_type(Ensemble([OpenNSFW()]).backends[0].name, str)
    pipeline = Pipeline(prompts, FakeGenerator(), cascade, redaction="pixelate")
    assert_type(attrs.evolve(pipeline, max_attempts=2), Pipeline)

"""The cascade: the first look decides when sure, the second otherwise, and says why."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from safegen import (
    REKOGNITION_V7,
    Action,
    Cascade,
    ConfigurationError,
    ContentType,
    ImageModerator,
    ModerationLabel,
    ModerationPolicy,
    Thresholds,
)
from safegen.errors import LocalModelError
from safegen.image import ImageReport, ImageSource
from safegen.testing import FakeImageBackend
from tests.strategies import content_types, coverages, policies, rekognition_labels

EXPLICIT_ONLY = ("Explicit",)
# Every top-level category but Explicit: a platform that moderates explicit content only.
NOT_EXPLICIT = [c.name for c in REKOGNITION_V7 if c.level == 1 and c.name != "Explicit"]


class Local(FakeImageBackend):
    """A fake offline model: one Explicit score per image, calibrated thresholds."""

    thresholds: ClassVar = {"Explicit": Thresholds(block_at=75, review_at=65)}

    def __init__(self, scores: dict[bytes, float]) -> None:
        super().__init__(name="local", coverage=EXPLICIT_ONLY, respond=self._score)
        self.scores = scores

    def _score(self, image: ImageSource) -> ImageReport:
        assert isinstance(image, bytes)
        label = ModerationLabel("Explicit", self.scores[image], level=1)
        return ImageReport(labels=(label,), coverage=EXPLICIT_ONLY)


def remote(policy: ModerationPolicy) -> tuple[FakeImageBackend, ImageModerator]:
    backend = FakeImageBackend(
        labels=[ModerationLabel("Weapons", 90.0, parent="Violence", level=2)], name="rekognition"
    )
    return backend, ImageModerator(backend, policy)


SCORES = {b"clear": 2.0, b"near": 58.0, b"review": 70.0, b"edge": 80.0, b"sure": 97.0}


def test_a_policy_needing_only_what_the_local_model_sees_saves_the_calls() -> None:
    rekognition, then = remote(ModerationPolicy(exclude=NOT_EXPLICIT))
    cascade = Cascade(Local(SCORES), then)
    verdicts = {image: cascade.moderate(image) for image in SCORES}
    assert verdicts[b"clear"].action is Action.ALLOW
    assert verdicts[b"clear"].backend == "local"
    assert verdicts[b"sure"].action is Action.BLOCK
    assert verdicts[b"sure"].backend == "local"
    for unsure in (b"near", b"review", b"edge"):
        assert verdicts[unsure].backend == "rekognition", unsure
        assert "local is unsure: Explicit" in str(verdicts[unsure].escalation)
    assert [call.image for call in rekognition.calls] == [b"near", b"review", b"edge"]


def test_blind_spots_the_policy_needs_go_to_the_second_look() -> None:
    rekognition, then = remote(ModerationPolicy())  # moderates everything
    cascade = Cascade(Local(SCORES), then)
    clear = cascade.moderate(b"clear")
    assert clear.backend == "rekognition"
    assert clear.action is Action.BLOCK  # the weapon only Rekognition can see
    assert clear.escalation is not None
    assert clear.escalation.startswith("the policy needs what local cannot see: Non-Explicit")
    # A sure block needs no second look: nothing can make it safer.
    assert cascade.moderate(b"sure").backend == "local"
    assert len(rekognition.calls) == 1


def test_a_policy_accepting_blind_spots_lets_the_first_look_decide() -> None:
    rekognition, then = remote(ModerationPolicy(not_evaluated="allow"))
    verdict = Cascade(Local(SCORES), then).moderate(b"clear")
    assert verdict.backend == "local"
    assert verdict.action is Action.ALLOW
    assert rekognition.calls == ()


def test_a_failing_first_look_falls_to_the_second_and_a_failing_second_fails_closed() -> None:
    broken = FakeImageBackend(name="local", error=LocalModelError("model missing"))
    _, then = remote(ModerationPolicy(exclude=NOT_EXPLICIT))
    verdict = Cascade(broken, then).moderate(b"clear")
    assert verdict.backend == "rekognition"
    assert verdict.escalation == "local failed: local: model missing"
    down = FakeImageBackend(name="rekognition", error=LocalModelError("down"))
    final = Cascade(broken, ImageModerator(down)).moderate(b"clear")
    assert final.action is Action.BLOCK
    assert final.failed


def test_moderate_many_asks_the_second_only_for_the_unsure_in_order() -> None:
    rekognition, then = remote(ModerationPolicy(exclude=NOT_EXPLICIT))
    cascade = Cascade(Local(SCORES), then)
    images = list(SCORES) * 3
    verdicts = cascade.moderate_many(images, max_workers=4)
    assert [v.backend for v in verdicts] == [cascade.moderate(i).backend for i in images]
    assert sorted(call.image for call in rekognition.calls) == sorted(
        [b"near", b"review", b"edge"] * 3 * 2  # once in moderate_many, once above
    )


def test_margin_is_checked_and_widens_what_counts_as_unsure() -> None:
    with pytest.raises(ConfigurationError, match="margin"):
        Cascade(Local(SCORES), remote(ModerationPolicy())[1], margin=-1)
    _, then = remote(ModerationPolicy(exclude=NOT_EXPLICIT))
    assert Cascade(Local(SCORES), then, margin=30).moderate(b"sure").backend == "rekognition"
    assert Cascade(Local(SCORES), then, margin=0).moderate(b"edge").backend == "local"


def test_the_pipeline_takes_a_cascade() -> None:
    from safegen import Pipeline
    from safegen.pipeline import ImageStatus
    from safegen.testing import FakeGenerator
    from tests.strategies import make_image

    image = make_image()
    rekognition, then = remote(ModerationPolicy(exclude=NOT_EXPLICIT))
    cascade = Cascade(Local({image: 97.0}), then)
    result = Pipeline(None, FakeGenerator([image]), cascade, on_unsafe_image="withhold").run("x")
    assert [i.status for i in result.images] == [ImageStatus.WITHHELD]
    assert result.images[0].verdict.backend == "local"
    assert rekognition.calls == ()


# -- the margin: what the first look saw, near any threshold that could apply ---------------

EXPLICIT_POLICY = ModerationPolicy(exclude=NOT_EXPLICIT)  # block_at 50, no review band


def first_look(*labels: ModerationLabel, content_types: tuple[ContentType, ...] = ()) -> Any:
    """A plain (uncalibrated) offline look that sees Explicit only, filtering like Rekognition."""
    return FakeImageBackend(
        labels, content_types, name="local", coverage=EXPLICIT_ONLY, model_version=None
    )


def explicit(confidence: float) -> ModerationLabel:
    return ModerationLabel("Explicit", confidence, level=1)


def test_the_first_look_is_asked_for_scores_below_the_policys_min_confidence() -> None:
    """A near miss the policy alone would not ask for (45 against 50) is seen and escalated."""
    local = first_look(explicit(45.0))
    _, then = remote(EXPLICIT_POLICY)
    verdict = Cascade(local, then, margin=10).moderate(b"x")
    assert local.calls[0].min_confidence == 40.0
    assert verdict.backend == "rekognition"
    assert "Explicit at 45 is within 10 of its threshold 50" in str(verdict.escalation)


@pytest.mark.parametrize(
    ("score", "decider"),
    [
        pytest.param(40.0, "local", id="exactly margin under: sure"),
        pytest.param(math.nextafter(40.0, 100.0), "rekognition", id="just inside under: unsure"),
        pytest.param(math.nextafter(40.0, 0.0), "local", id="just outside under: sure"),
        pytest.param(50.0, "rekognition", id="at the threshold: unsure"),
        pytest.param(math.nextafter(60.0, 0.0), "rekognition", id="just inside over: unsure"),
        pytest.param(60.0, "local", id="exactly margin over: sure block"),
    ],
)
def test_the_margins_edges_are_pinned(score: float, decider: str) -> None:
    """A score exactly *margin* from a threshold is sure; anything strictly closer is not."""
    _, then = remote(EXPLICIT_POLICY)
    verdict = Cascade(first_look(explicit(score)), then, margin=10).moderate(b"x")
    assert verdict.backend == decider
    if decider == "local":
        assert verdict.action is (Action.BLOCK if score >= 50 else Action.ALLOW)


@pytest.mark.parametrize(
    ("score", "decider"),
    [
        (55.0, "local"),
        (math.nextafter(55.0, 100.0), "rekognition"),
        (70.0, "rekognition"),
        (math.nextafter(85.0, 0.0), "rekognition"),
        (85.0, "local"),
    ],
)
def test_a_review_band_has_both_thresholds_as_edges(score: float, decider: str) -> None:
    """Review at 65, block at 75, margin 10: sure at or under 55, and at or over 85 only."""
    labels = {"Explicit": {"review_at": 65, "block_at": 75}}
    _, then = remote(ModerationPolicy(exclude=NOT_EXPLICIT, labels=labels))
    verdict = Cascade(first_look(explicit(score)), then, margin=10).moderate(b"x")
    assert verdict.backend == decider


def test_a_content_type_near_its_rules_confidence_leaves_the_first_look_unsure() -> None:
    """A rule that exempts Explicit for animations, with Animated reported within the margin."""
    policy = ModerationPolicy(
        exclude=NOT_EXPLICIT,
        content_types={"Animated": {"min_confidence": 80, "exclude": ["Explicit"]}},
    )
    _, then = remote(policy)
    near = first_look(explicit(95.0), content_types=(ContentType("Animated", 85.0),))
    verdict = Cascade(near, then, margin=10).moderate(b"x")
    assert verdict.backend == "rekognition"
    assert "Explicit at 95 would count against its threshold 50 if no content-type rule" in str(
        verdict.escalation
    )
    sure = first_look(explicit(95.0), content_types=(ContentType("Animated", 90.0),))
    assert Cascade(sure, then, margin=10).moderate(b"x").backend == "local"


def test_a_rule_the_first_look_cannot_rule_out_is_asked_about() -> None:
    """Animated content is blocked outright; a look that reports no content types cannot say."""
    policy = ModerationPolicy(exclude=NOT_EXPLICIT, content_types={"Animated": {"action": "block"}})
    _, then = remote(policy)
    verdict = Cascade(first_look(explicit(2.0)), then, margin=10).moderate(b"x")
    assert verdict.backend == "rekognition"
    assert "cannot rule out Animated" in str(verdict.escalation)
    not_animated = first_look(explicit(2.0), content_types=(ContentType("Animated", 5.0),))
    assert Cascade(not_animated, then, margin=10).moderate(b"x").backend == "local"


def test_a_label_explained_away_by_an_excluded_descendant_is_not_sure() -> None:
    """Explicit at 80 does not count next to an excluded Explicit Nudity at 85: a near call."""
    policy = ModerationPolicy(exclude=[*NOT_EXPLICIT, "Explicit Nudity"])
    _, then = remote(policy)
    local = first_look(
        explicit(80.0), ModerationLabel("Explicit Nudity", 85.0, parent="Explicit", level=2)
    )
    verdict = Cascade(local, then, margin=10).moderate(b"x")
    assert verdict.backend == "rekognition"
    assert "Explicit at 80" in str(verdict.escalation)


def _perturbed(
    report: ImageReport, nudges: list[float], margin: float, extra: list[ContentType]
) -> ImageReport:
    """Move each score by less than *margin*; add content types the look did not report."""
    moves = iter(nudges * 12)

    def nudge(confidence: float) -> float:
        return min(100.0, max(0.0, confidence + next(moves) * margin))

    labels = tuple(attrs.evolve(lab, confidence=nudge(lab.confidence)) for lab in report.labels)
    kinds = tuple(attrs.evolve(c, confidence=nudge(c.confidence)) for c in report.content_types)
    reported = {c.name.casefold() for c in report.content_types}
    return attrs.evolve(
        report,
        labels=labels,
        content_types=kinds + tuple(c for c in extra if c.name.casefold() not in reported),
    )


NUDGES = st.lists(
    st.floats(-1, 1, exclude_min=True, exclude_max=True, allow_subnormal=False),
    min_size=12,
    max_size=12,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    policy=policies(),
    labels=rekognition_labels(max_size=5),
    kinds=st.lists(content_types, max_size=2),
    coverage=st.one_of(st.none(), st.none(), coverages),
    margin=st.floats(0.5, 30),
    nudges=NUDGES,
    extra=st.lists(content_types, max_size=2),
)
@example(  # an ancestor explained away by a descendant judged more leniently
    policy=ModerationPolicy(labels={"Explicit Nudity": 90}),
    labels=[explicit(80.0), ModerationLabel("Explicit Nudity", 80.0, parent="Explicit", level=2)],
    kinds=[],
    coverage=None,
    margin=10.0,
    nudges=[0.5, -0.5, 0.0],
    extra=[],
)
@example(  # a content type reported just over its rule's confidence, exempting a label
    policy=ModerationPolicy(
        content_types={"Animated": {"min_confidence": 80, "exclude": ["Explicit"]}}
    ),
    labels=[explicit(95.0)],
    kinds=[ContentType("Animated", 85.0)],
    coverage=None,
    margin=10.0,
    nudges=[0.0, -0.9, 0.0],
    extra=[],
)
def test_a_first_look_that_decides_is_sure_of_every_score_it_saw(
    policy: ModerationPolicy,
    labels: list[ModerationLabel],
    kinds: list[ContentType],
    coverage: tuple[str, ...] | None,
    margin: float,
    nudges: list[float],
    extra: list[ContentType],
) -> None:
    """A first look that decides short of BLOCK is sure: nothing within the margin is stricter.

    No score it saw, moved by less than the margin, and no content type it could not rule out
    makes the policy's decision stricter than the first look's.
    """
    report = ImageReport(labels=labels, content_types=kinds, coverage=coverage)
    local = FakeImageBackend(name="local", respond=lambda image: report)
    then = ImageModerator(FakeImageBackend(name="rekognition"), policy)
    cascade = Cascade(local, then, margin=margin)
    verdict = cascade.first_look.moderate(b"x")
    if cascade.escalation(verdict) is not None or verdict.action is Action.BLOCK:
        return
    moved = _perturbed(report, nudges, margin, extra)
    decision = policy.evaluate(moved.labels, moved.content_types, coverage=moved.coverage)
    assert decision.action.severity <= verdict.action.severity


# -- frozen and validated ----------------------------------------------------------------------


def test_a_cascade_is_frozen_and_evolves_checked() -> None:
    """No setting changes in place; evolve re-checks the margin and rebuilds the first look."""
    _, then = remote(EXPLICIT_POLICY)
    cascade = Cascade(first_look(), then)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        cascade.margin = 0.0  # type: ignore[misc]
    narrower = attrs.evolve(cascade, margin=5.0)
    assert narrower.first_look.min_confidence == 45.0
    assert cascade.first_look.min_confidence == 40.0
    with pytest.raises(ConfigurationError, match="margin"):
        attrs.evolve(cascade, margin=math.nan)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("first", object()),
        ("first", None),
        ("then", FakeImageBackend()),
        ("first_policy", {"block_at": 50}),
        ("margin", -1),
        ("margin", 100.5),
        ("margin", math.inf),
        ("margin", "10"),
        ("margin", True),
    ],
)
def test_each_bad_setting_is_refused_naming_it(setting: str, value: Any) -> None:
    """At construction and on evolve, a ConfigurationError that starts with the setting's name."""
    _, then = remote(EXPLICIT_POLICY)
    good = Cascade(first_look(), then)
    with pytest.raises(ConfigurationError, match=f"^{setting}: "):
        attrs.evolve(good, **{setting: value})
    settings_: dict[str, Any] = {"first": first_look(), "then": then, setting: value}
    with pytest.raises(ConfigurationError, match=f"^{setting}: "):
        Cascade(**settings_)


class TestALooserFirstPolicy:
    """A first policy may move thresholds for its model; it never drops what the platform needs."""

    WEAPONS = ModerationLabel("Weapons", 99.0, parent="Violence", level=2)

    def test_its_exclusions_do_not_hide_a_blind_spot_the_platform_moderates(self) -> None:
        """The red team's case: the first policy excludes all its model cannot see."""
        first = FakeImageBackend(coverage=["Explicit"], name="offline")
        then = ImageModerator(FakeImageBackend([self.WEAPONS]), ModerationPolicy())
        blind_elsewhere = [c.name for c in REKOGNITION_V7 if c.level == 1 and c.name != "Explicit"]
        cascade = Cascade(first, then, first_policy=ModerationPolicy(exclude=blind_elsewhere))
        verdict = cascade.moderate(b"image")
        assert verdict.escalation is not None
        assert verdict.action is Action.BLOCK

    def test_a_label_only_it_excludes_is_not_a_sure_allow(self) -> None:
        """A label the first look saw but its policy excludes goes to the platform's look."""
        first = FakeImageBackend([self.WEAPONS], coverage=["Violence"], name="offline")
        then = ImageModerator(
            FakeImageBackend([self.WEAPONS]), ModerationPolicy(not_evaluated="allow")
        )
        cascade = Cascade(first, then, first_policy=ModerationPolicy(exclude=["Weapons"]))
        verdict = cascade.moderate(b"image")
        assert verdict.escalation is not None
        assert "excluded by the first look's policy" in verdict.escalation
        assert verdict.action is Action.BLOCK

    def test_an_exclusion_both_share_lets_the_first_look_decide(self) -> None:
        """Where the platform excludes the label too, the first look is sure."""
        first = FakeImageBackend([self.WEAPONS], coverage=["Violence"], name="offline")
        policy = ModerationPolicy(exclude=["Weapons"], not_evaluated="allow")
        then = ImageModerator(FakeImageBackend([self.WEAPONS]), policy)
        verdict = Cascade(first, then, first_policy=policy).moderate(b"image")
        assert verdict.escalation is None
        assert verdict.action is Action.ALLOW

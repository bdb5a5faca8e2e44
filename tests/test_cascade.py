"""The cascade: the first look decides when sure, the second otherwise, and says why."""

from __future__ import annotations

from typing import ClassVar

import pytest

from safegen import (
    REKOGNITION_V7,
    Action,
    Cascade,
    ImageModerator,
    ModerationLabel,
    ModerationPolicy,
    PolicyError,
    Thresholds,
)
from safegen.errors import LocalModelError
from safegen.image import ImageReport, ImageSource
from safegen.testing import FakeImageBackend

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
    with pytest.raises(PolicyError, match="margin"):
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

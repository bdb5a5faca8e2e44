"""NudeNet, offline: a body-part detector whose exposed parts map onto the v7 nudity labels.

**Licence: AGPL-3.0.** The ``nudenet`` wheel's LICENSE file and its model's metadata say
AGPL-3.0, whatever its PyPI classifier says. safegen never installs it by default: ask for it
with ``pip install 'safegen[nudenet]'``, and check what the AGPL asks of your application
before you ship it.

NudeNet reports 18 classes with boxes. The exposed ones map onto Rekognition v7 L3 labels;
covered parts, faces, feet, armpits and bellies are not moderation concepts in v7 and are
dropped. Each label carries the boxes it was seen in, so region redaction works, and each
reported L3 brings its L2 and L1 with the confidence of their most confident child, as
Rekognition reports them.

A detection is believed as far as its box is coloured like skin (see docs/local.rst):
below ``NudeNet.min_skin`` of skin-like colour among the box's coloured pixels, its score
is scaled down in proportion, but never below its label's calibrated review threshold (or
the detector's own score, if lower). Colour is evidence an adversary controls (swap two
channels, rotate the hues, invert the picture), so it may turn a BLOCK into a REVIEW, never
a detection into an ALLOW: a colour chart's "exposed buttocks" (83) falls to the review
line, 65, and is looked at by a person rather than blocked. Grey and sepia pictures, which
carry no colour evidence, keep the detector's score.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from safegen.errors import ConfigurationError, LocalModelError
from safegen.image import ImageReport
from safegen.labels import Box, ModerationLabel
from safegen.local import _model, _picture, _skin
from safegen.policy import Thresholds
from safegen.taxonomy import REKOGNITION_V7

if TYPE_CHECKING:
    from safegen.image import ImageSource

__all__ = ["NudeNet"]

#: NudeNet class -> the v7 L3 label it is evidence of.
CLASS_LABELS: Mapping[str, str] = {
    "FEMALE_GENITALIA_EXPOSED": "Exposed Female Genitalia",
    "MALE_GENITALIA_EXPOSED": "Exposed Male Genitalia",
    "BUTTOCKS_EXPOSED": "Exposed Buttocks or Anus",
    "ANUS_EXPOSED": "Exposed Buttocks or Anus",
    "FEMALE_BREAST_EXPOSED": "Exposed Female Nipple",
    "MALE_BREAST_EXPOSED": "Exposed Male Nipple",
}
_NAME = "NudeNet"
_CLASSES = 18  # the detector's classes; each anchor is [x, y, w, h, *class scores]


def _check(outputs: Sequence[Any]) -> None:
    array = _model.finite(outputs[0], model=_NAME, shape=(1, 4 + _CLASSES, None))
    _model.probabilities(array[:, 4:, :], model=_NAME)


def _path_or_none(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigurationError(f"{attribute.name}: a file path, got {value!r}")


def _share(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigurationError(f"{attribute.name}: a share from 0 to 1, got {value!r}")


def _load(backend: NudeNet) -> Any:
    path = backend.model_path or _model.bundled_file("nudenet", "320n.onnx", extra="nudenet")
    try:
        from nudenet import NudeDetector

        detector: Any = NudeDetector(model_path=path)
    except ImportError:
        raise LocalModelError("NudeNet needs its package: pip install 'safegen[nudenet]'") from None
    except Exception as error:  # onnxruntime's own error types: a corrupt or foreign file
        raise LocalModelError(f"NudeNet model {path} cannot be loaded: {error}") from None
    # Every answer is checked before NudeNet reads it: its own post-processing would read a
    # NaN score as "below its cut-off", i.e. nothing found.
    detector.onnx_session = _model.CheckedSession(detector.onnx_session, _check, _NAME)
    return detector


@attrs.frozen(kw_only=True)
class NudeNet:
    """An :class:`~safegen.ImageBackend` running NudeNet's detector on this machine, offline.

    AGPL-3.0: see this module's documentation before you ship it. A picture with transparent
    pixels is looked at over a black and over a white background, and what either view shows
    is reported (see :doc:`/local`).

    :param model_path: the ONNX model; by default the ``320n.onnx`` inside the installed
        ``nudenet`` package.
    :param min_skin: the share (0-1) of a detection's coloured pixels that must be
        skin-like for its score to count in full; below it the score is scaled by
        ``share / min_skin``, but never below ``min(score, review_at)`` with its label's
        calibrated ``review_at`` (:attr:`THRESHOLDS`): colour can stop a BLOCK, never
        allow a detection. ``0`` believes the detector whatever the colours. The shipped
        :attr:`THRESHOLDS` are calibrated with the default.
    :raises LocalModelError: the package or its model is missing or cannot be loaded.
    :raises ConfigurationError: *model_path* is not a path, or *min_skin* not a share.
    """

    #: What the model sees: explicit nudity (its four L3s) and exposed male nipples.
    COVERAGE: ClassVar[tuple[str, ...]] = ("Explicit/Explicit Nudity", "Exposed Male Nipple")
    #: Calibrated thresholds (``benchmarks/calibrate_local.py``; see docs/local.rst).
    THRESHOLDS: ClassVar[Mapping[str, Thresholds]] = {
        "Exposed Female Genitalia": Thresholds(block_at=60, review_at=40),
        "Exposed Male Genitalia": Thresholds(block_at=60, review_at=40),
        "Exposed Buttocks or Anus": Thresholds(block_at=90, review_at=65),
        "Exposed Female Nipple": Thresholds(block_at=85, review_at=40),
        "Exposed Male Nipple": Thresholds(block_at=60, review_at=40),
    }

    model_path: str | None = attrs.field(default=None, validator=_path_or_none)
    min_skin: float = attrs.field(default=0.3, validator=_share)
    _detector: Any = attrs.field(
        init=False, repr=False, eq=False, default=attrs.Factory(_load, takes_self=True)
    )
    _version: str = attrs.field(
        init=False, repr=False, eq=False, factory=lambda: f"nudenet {_model.version('nudenet')}"
    )

    @property
    def name(self) -> str:
        """``"nudenet"``."""
        return "nudenet"

    @property
    def thresholds(self) -> Mapping[str, Thresholds]:
        """:attr:`THRESHOLDS`: what :func:`~safegen.local.recommended_policy` uses."""
        return self.THRESHOLDS

    def detect(self, image: ImageSource, *, min_confidence: float) -> ImageReport:
        """Detect exposed body parts in *image*, reported as v7 labels with their boxes.

        :raises InvalidImageError: the image cannot be read.
        :raises LocalModelError: the model failed to run, or answered anything but finite
            scores of its own shape.
        """
        import numpy as np

        pictures = _picture.views(image)
        detections: list[Mapping[str, Any]] = []
        for picture in pictures:
            # NudeNet converts what it is given from RGBA to BGR itself: hand it RGBA.
            pixels = np.asarray(picture.convert("RGBA"))
            try:
                found = self._detector.detect(pixels)
            except LocalModelError:
                raise
            except Exception as error:  # onnxruntime and OpenCV raise their own types
                raise LocalModelError(f"NudeNet failed: {error}") from None
            detections.extend(self._weighed(detection, pixels) for detection in found)
        labels = labels_from_detections(detections, pictures[0].size, min_confidence=min_confidence)
        return ImageReport(labels=labels, model_version=self._version, coverage=self.COVERAGE)

    def _weighed(self, detection: Mapping[str, Any], pixels: Any) -> Mapping[str, Any]:
        """Scale an exposed part's score by the skin-like colour in its box (see the module).

        Never below ``min(score, floor)``, *floor* being its label's review threshold: colour
        is evidence an adversary controls, so it may demote a detection to the review band,
        never out of it.
        """
        name = CLASS_LABELS.get(str(detection.get("class")))
        if self.min_skin == 0 or name is None:
            return detection
        score, box = float(detection["score"]), detection["box"]
        if not 0.0 <= score <= 1.0 or not all(math.isfinite(float(v)) for v in box):
            return detection  # never made plausible: labels_from_detections refuses it
        share = _skin.evidence(pixels, box)
        floor = min(score, _review_floor(self.thresholds[name]))
        return {**detection, "score": max(score * min(1.0, share / self.min_skin), floor)}


def _review_floor(thresholds: Thresholds) -> float:
    """Return the lowest 0-1 score that, times 100, meets *thresholds*' review threshold.

    (Its block threshold when it has no review band; ``1``, no demotion at all, when it
    has neither.) Computed so that ``floor * 100`` is never below the threshold by a
    rounding error: ``0.29 * 100`` is ``28.999999999999996``.
    """
    lines = [at for at in (thresholds.review_at, thresholds.block_at) if at is not None]
    if not lines:
        return 1.0
    at = min(lines)
    floor = at / 100
    while floor * 100 < at:
        floor = math.nextafter(floor, math.inf)
    return min(floor, 1.0)


def labels_from_detections(
    detections: Iterable[Mapping[str, Any]], size: tuple[int, int], *, min_confidence: float
) -> tuple[ModerationLabel, ...]:
    """Turn NudeNet's detections into v7 labels: L3s with their boxes, then their ancestors.

    A label's confidence is its most confident detection; an ancestor's is its most
    confident child's, and it carries all of their boxes.

    :param detections: ``{"class": ..., "score": 0-1, "box": [x, y, w, h]}`` in pixels.
    :param size: the image's ``(width, height)``, to turn pixel boxes into fractions.
    :raises LocalModelError: a score that is not a probability, or a box that is not finite.
    """
    width, height = size
    found: dict[tuple[str, ...], tuple[float, list[Box]]] = {}
    for detection in detections:
        name = CLASS_LABELS.get(str(detection["class"]))
        if name is None:
            continue
        score = float(detection["score"])
        if not 0.0 <= score <= 1.0:  # NaN fails this too
            raise LocalModelError(f"NudeNet reported a score of {score!r}, not a probability")
        confidence = score * 100
        if confidence < min_confidence:
            continue
        box = _fraction_box(detection["box"], width, height)
        path = REKOGNITION_V7.lookup(name).path
        for depth in range(1, len(path) + 1):  # the L3 and each ancestor
            best, boxes = found.get(path[:depth], (0.0, []))
            found[path[:depth]] = (max(best, confidence), [*boxes, box])
    return tuple(
        ModerationLabel(
            path[-1],
            confidence,
            parent=path[-2] if len(path) > 1 else None,
            level=len(path),
            boxes=boxes,
        )
        for path, (confidence, boxes) in sorted(found.items())
    )


def _fraction_box(box: Iterable[float], width: int, height: int) -> Box:
    x, y, w, h = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise LocalModelError("NudeNet reported a box that is not finite numbers")
    left = min(1.0, max(0.0, x / width))
    top = min(1.0, max(0.0, y / height))
    return Box(
        left, top, min(1.0 - left, max(0.0, w / width)), min(1.0 - top, max(0.0, h / height))
    )
